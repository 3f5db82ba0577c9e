/**
 * `dropmon watch`: live drop points per interval. Thin wiring only:
 * flags → source + filter + pipeline + output.
 */
import { join } from 'node:path';
import { DropmonError, UsageError } from '../core/errors.js';
import { parseProtocol } from '../core/drop.js';
import { resolveReasons, type DropFilter } from '../core/filter.js';
import { Pipeline, type IntervalOutput, type PacketOutput } from '../core/pipeline.js';
import { PacketJsonOutput, PacketTextOutput } from '../outputs/packets.js';
import { PcapWriter, type PcapFormat } from '../outputs/pcap.js';
import { describeDrop } from '../outputs/packets.js';
import { type KallsymsTable, Symbolizer } from '../kernel/kallsyms.js';
import { loadKallsymsInBackground } from '../kernel/kallsyms-loader.js';
import { TracefsDropSource, readLayout } from '../sources/tracefs/source.js';
import { findTracefs } from '../sources/tracefs/tracefs.js';
import { NetdmDropSource } from '../sources/netdm/source.js';
import { BpfDropSource, reasonNamesFromBtf } from '../sources/bpf/source.js';
import { interfaceIndex, resolveNetnsSpec } from '../kernel/namespaces.js';
import type { AlertMode, Origins } from '../sources/netdm/protocol.js';
import { chooseSource, type SourceName } from '../sources/select.js';
import type { DropSource } from '../core/drop.js';
import { TextOutput } from '../outputs/text.js';
import { CorrelationJsonOutput, CorrelationTextOutput } from '../outputs/correlation.js';
import { annotateWithCounters } from '../core/annotate.js';
import { loadKnowledge } from '../core/knowledge.js';
import { CounterSampler } from '../sources/counters/snapshot.js';
import { JsonOutput } from '../outputs/json.js';
import { listValues, parseCount, parseSeconds, parseCommandArgs } from './args.js';
import { onCleanup, onStopSignal } from './lifecycle.js';
import { currentNetnsInode } from '../kernel/setns.js';

export const WATCH_HELP = `Usage: dropmon watch [options]

Show every packet the kernel drops, live: one line per drop point (where,
why, protocol) per interval, from the skb:kfree_skb tracepoint read through
a private tracefs instance. Needs root (CAP_SYS_ADMIN for tracefs).

Output:
      --json              JSON lines: one "drop" object per drop point per
                          interval and one "interval" object with totals and
                          lost events (fields: see README)
      --timestamps        a "# <time> interval N" line before each interval
      --stack             aggregate by kernel call stack too, and print it
                          (costs more per drop: use for diagnosis, not storms)

Counters (beside the drops, every interval; see 'dropmon counters'):
      --no-counters       do not read the kernel's drop counters
      --counters-netns NS read the counters of this network namespace (default:
                          --netns when given, else dropmon's own)
      --quiet-benign      leave out drops that are usually benign (a socket
                          closed with data queued, TCP teardown, ...); by
                          default they are summed on one "~ usually benign" line
      --all               no noise policy: every drop point on its own line

Timing:
  -i, --interval SEC      length of an interval (default 1)
  -d, --duration SEC      stop after SEC seconds (default: until Ctrl-C)
  -n, --count N           stop after N drops (like dropwatch's alert limit)
      --max-points N      distinct drop points kept per interval (default 64);
                          the rest are summed in one "other locations" line

Filters (in the kernel where tracefs can, else in dropmon):
  -r, --reason NAME       only these drop reasons (repeat or comma-separate;
                          e.g. NO_SOCKET, NETFILTER_DROP, or a number)
  -p, --protocol P        only this EtherType: ipv4, ipv6, arp, or a number
  -l, --location WHERE    only drops inside a kernel function (name), or at an
                          exact address (0xffffffff81abcdef or func+0x4bc)
      --list-reasons      print this kernel's drop reasons and exit

Source:
      --source NAME       auto (default), bpf, tracefs or netdm. auto uses
                          bpf where it can run (root, kernel BTF, 5.17+), else
                          tracefs; netdm only for the NET_DM options below;
                          it says which and why
      --sw, --hw          software drops (default) and/or hardware drops that
                          devices report through devlink traps (every source:
                          the devlink_trap_report tracepoint, or NET_DM's
                          hardware alerts); --hw alone: hardware only
      --buffer-kb KB      tracefs: ring buffer per CPU (default: 64 MiB shared
                          by the CPUs, 4-16 MiB each)

BPF (--source bpf): drops counted in the kernel, with interface and namespace
      --netns NS          only drops in this network namespace: an ip netns
                          name, a process id, an inode number or a path
      --interface NAME    only drops on this interface (of --netns, else of
                          dropmon's own namespace); both filters run in the kernel
      --packets           also one line per dropped packet (its first 128
                          bytes; at most 1000 per second per CPU), with --pcap

NET_DM (--source netdm):
      --mode MODE         summary (default: the kernel batches drops per
                          location, no reasons) or packet (every dropped
                          packet with its reason, interface and bytes)
      --trunc BYTES       packet mode: bytes of each packet to receive (0: all)
      --queue N           packet mode: the kernel's per-CPU queue (default 1000)
      --force             take over NET_DM monitoring started by another
                          program (NET_DM is one global state per host)
      --passive           only listen to the alerts of a NET_DM that another
                          program (dropwatch, dwdump) configured and started
      --pcap FILE         packet mode: write the dropped packets to FILE (- for
                          stdout) as pcapng, each with a comment naming the
                          drop location and reason (tshark -r FILE -V)
      --pcap-format F     pcapng (default) or netlink (dwdump's format: the
                          whole NET_DM message, Wireshark's net_dm dissector)

Exit status: 0 when stopped by --duration, --count or a signal; 1 on a
runtime error; 2 on bad usage. Lost events are reported every interval,
never silently.
`;

function parsePcapFormat(v: string | undefined): PcapFormat {
  if (v === undefined || v === 'pcapng') return 'pcapng';
  if (v === 'netlink') return 'netlink';
  throw new UsageError(`unknown --pcap-format ${JSON.stringify(v)}; use pcapng or netlink`);
}

interface WatchFlags {
  json: boolean;
  timestamps: boolean;
  stack: boolean;
  intervalMs: number;
  durationMs?: number;
  count?: number;
  maxPoints: number;
  reasons: string[];
  protocols: number[];
  locations: string[];
  bufferKb?: number;
  listReasons: boolean;
  source: SourceName | 'auto';
  mode?: AlertMode;
  origins: Origins;
  trunc?: number;
  queue?: number;
  force: boolean;
  passive: boolean;
  pcap?: string;
  pcapFormat: PcapFormat;
  netns?: string;
  interface?: string;
  counters: boolean;
  countersNetns?: string;
  quietBenign: boolean;
  all: boolean;
  packets: boolean;
  /** Options given that only NET_DM has. */
  netdmOnly: boolean;
}

function parseWatchFlags(argv: string[]): WatchFlags | 'help' {
  const parsed = parseCommandArgs('watch', argv, {
    help: { type: 'boolean', short: 'h' },
    json: { type: 'boolean' },
    timestamps: { type: 'boolean' },
    stack: { type: 'boolean' },
    interval: { type: 'string', short: 'i' },
    duration: { type: 'string', short: 'd' },
    count: { type: 'string', short: 'n' },
    'max-points': { type: 'string' },
    reason: { type: 'string', short: 'r', multiple: true },
    protocol: { type: 'string', short: 'p', multiple: true },
    location: { type: 'string', short: 'l', multiple: true },
    'list-reasons': { type: 'boolean' },
    'buffer-kb': { type: 'string' },
    source: { type: 'string' },
    mode: { type: 'string' },
    sw: { type: 'boolean' },
    hw: { type: 'boolean' },
    trunc: { type: 'string' },
    queue: { type: 'string' },
    force: { type: 'boolean' },
    passive: { type: 'boolean' },
    pcap: { type: 'string' },
    'pcap-format': { type: 'string' },
    netns: { type: 'string' },
    interface: { type: 'string' },
    'no-counters': { type: 'boolean' },
    'counters-netns': { type: 'string' },
    'quiet-benign': { type: 'boolean' },
    all: { type: 'boolean' },
    packets: { type: 'boolean' },
  });
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.source !== undefined && v.source !== 'tracefs' && v.source !== 'netdm' && v.source !== 'bpf' && v.source !== 'auto')
    throw new UsageError(`unknown --source ${JSON.stringify(v.source)}; use auto, bpf, tracefs or netdm`);
  if (v.mode !== undefined && v.mode !== 'summary' && v.mode !== 'packet')
    throw new UsageError(`unknown --mode ${JSON.stringify(v.mode)}; use summary or packet`);
  const protocols = listValues(v.protocol).map((p) => {
    const n = parseProtocol(p);
    if (n === undefined) throw new UsageError(`unknown --protocol ${JSON.stringify(p)}; use ipv4, ipv6, arp or an EtherType like 0x88b5`);
    return n;
  });
  const interval = parseSeconds('--interval', v.interval, 0.1, 3600) ?? 1;
  const duration = parseSeconds('--duration', v.duration, 0.1, 10 * 365 * 86400);
  return {
    json: v.json ?? false,
    timestamps: v.timestamps ?? false,
    stack: v.stack ?? false,
    intervalMs: Math.round(interval * 1000),
    ...(duration !== undefined ? { durationMs: Math.round(duration * 1000) } : {}),
    ...(v.count !== undefined ? { count: parseCount('--count', v.count, 1, Number.MAX_SAFE_INTEGER) } : {}),
    maxPoints: parseCount('--max-points', v['max-points'], 1, 100_000) ?? 64,
    reasons: listValues(v.reason),
    protocols,
    locations: listValues(v.location),
    ...(v['buffer-kb'] !== undefined ? { bufferKb: parseCount('--buffer-kb', v['buffer-kb'], 64, 4 * 1024 * 1024) } : {}),
    listReasons: v['list-reasons'] ?? false,
    source: (v.source ?? 'auto') as WatchFlags['source'],
    ...(v.mode !== undefined ? { mode: v.mode as AlertMode } : {}),
    origins: { sw: v.sw ?? !v.hw, hw: v.hw ?? false },
    ...(v.trunc !== undefined ? { trunc: parseCount('--trunc', v.trunc, 0, 65535) } : {}),
    ...(v.queue !== undefined ? { queue: parseCount('--queue', v.queue, 1, 1_000_000) } : {}),
    force: v.force ?? false,
    passive: v.passive ?? false,
    ...(v.pcap !== undefined ? { pcap: v.pcap } : {}),
    pcapFormat: parsePcapFormat(v['pcap-format']),
    ...(v.netns !== undefined ? { netns: v.netns } : {}),
    ...(v.interface !== undefined ? { interface: v.interface } : {}),
    counters: !v['no-counters'],
    ...(v['counters-netns'] !== undefined ? { countersNetns: v['counters-netns'] } : {}),
    quietBenign: v['quiet-benign'] ?? false,
    all: v.all ?? false,
    packets: v.packets ?? false,
    netdmOnly:
      v.mode !== undefined || v.trunc !== undefined || v.queue !== undefined || v.force === true || v.passive === true || (v.pcap !== undefined && !v.packets),
  };
}

/** Resolve --location values to address ranges with kallsyms. */
export function resolveLocations(specs: readonly string[], table: KallsymsTable): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  for (const spec of specs) {
    if (/^0x[0-9a-f]{1,16}$/i.test(spec)) {
      const a = BigInt(spec);
      out.push([a, a + 1n]);
      continue;
    }
    const m = /^([\w.$]+)(?:\+(0x[0-9a-f]+|\d+))?$/i.exec(spec);
    if (!m) throw new UsageError(`--location ${JSON.stringify(spec)}: expected a function name, func+0xOFF or 0xADDRESS`);
    if (table.hidden)
      throw new DropmonError('--location needs kernel addresses, which kptr_restrict hides', 'run as root, or: sysctl kernel.kptr_restrict=0');
    const ranges = table.ranges(m[1]);
    if (ranges.length === 0) throw new UsageError(`--location: no kernel function named ${JSON.stringify(m[1])} in /proc/kallsyms`);
    for (const [a, b] of ranges) {
      if (m[2] === undefined) out.push([a, b]);
      else out.push([a + BigInt(m[2]), a + BigInt(m[2]) + 1n]);
    }
  }
  return out;
}

/** Outputs that replace the console's, for commands built on watch (record). */
export type WatchOutputsFactory = (context: { source: DropSource; symbols: Symbolizer; intervalMs: number }) => {
  outputs: IntervalOutput[];
  packetOutputs: PacketOutput[];
};

export async function watchCommand(argv: string[], ownOutputs?: WatchOutputsFactory): Promise<number> {
  const flags = parseWatchFlags(argv);
  if (flags === 'help') {
    process.stdout.write(WATCH_HELP);
    return 0;
  }
  const warn = (m: string) => process.stderr.write(`dropmon: warning: ${m}\n`);
  const choice = chooseSource(flags.source, {
    stack: flags.stack,
    netdmOnly: flags.netdmOnly,
    hardware: flags.origins.hw,
    tracefsOnly: flags.bufferKb !== undefined,
    bpfOnly: flags.netns !== undefined || flags.interface !== undefined || flags.packets,
    filtersByReasonOrProtocol: flags.reasons.length > 0 || flags.protocols.length > 0,
  });
  if (choice.name !== 'netdm' && flags.netdmOnly) throw new UsageError('--mode, --trunc, --queue, --force and --passive need --source netdm');
  if (flags.packets && !flags.origins.sw) throw new UsageError('--packets records software drops: add --sw to --hw');
  if (choice.name !== 'bpf' && (flags.netns !== undefined || flags.interface !== undefined || flags.packets))
    throw new UsageError('--netns, --interface and --packets need --source bpf');
  if (choice.name !== 'tracefs' && flags.stack) throw new UsageError('--stack needs --source tracefs');
  if (flags.pcap !== undefined && flags.mode !== 'packet' && !flags.packets) throw new UsageError('--pcap needs --mode packet (NET_DM) or --packets (BPF)');
  if (flags.source === 'auto') process.stderr.write(`dropmon: source ${choice.name}: ${choice.why}\n`);
  // The tracefs event format holds this kernel's reason table: used by both sources to check --reason.
  let root: string | undefined;
  let layout: ReturnType<typeof readLayout> | undefined;
  try {
    root = findTracefs();
    layout = readLayout(join(root, 'events'));
  } catch (err) {
    if (choice.name === 'tracefs' || flags.listReasons) throw err;
  }
  let reasonTable = layout?.kfree.symbolic.get('reason') ?? new Map<number, string>();
  if (reasonTable.size === 0 && choice.name === 'bpf') reasonTable = reasonNamesFromBtf();
  if (flags.listReasons) {
    if (reasonTable.size === 0) process.stdout.write('this kernel reports no drop reasons (before Linux 5.17)\n');
    for (const [n, name] of [...reasonTable].sort((a, b) => a[0] - b[0])) process.stdout.write(`${n}\t${name}\n`);
    return 0;
  }
  if (flags.reasons.length && layout && !layout.kfree.fields.has('reason'))
    throw new DropmonError('--reason: this kernel reports no drop reasons (they appeared in Linux 5.17)');
  if (flags.reasons.length && choice.name === 'netdm' && (flags.mode ?? 'summary') === 'summary')
    throw new UsageError('--reason: NET_DM summary mode reports no reasons; use --mode packet or --source tracefs');

  // kallsyms is loaded on a worker thread while tracing starts (parsing it on
  // this thread would stall the ring-buffer reads for ~0.1 s); only
  // --location, which needs it for the filter, waits for it.
  const symbols = new Symbolizer();
  const kallsyms = loadKallsymsInBackground().then(
    (table) => {
      symbols.setTable(table);
      if (table.hidden)
        warn('kernel addresses are hidden (kernel.kptr_restrict): drop locations will not be symbolized; run as root or sysctl kernel.kptr_restrict=0');
      return table;
    },
    (err: unknown) => {
      warn(`cannot read /proc/kallsyms (${err instanceof Error ? err.message : String(err)}): drop locations will not be symbolized`);
      return undefined;
    },
  );
  let locations: Array<[bigint, bigint]> = [];
  if (flags.locations.length) {
    const table = await kallsyms;
    if (!table) throw new DropmonError('--location needs /proc/kallsyms, which cannot be read');
    locations = resolveLocations(flags.locations, table);
  }
  let reasons: number[] = [];
  try {
    if (reasonTable.size) reasons = resolveReasons(flags.reasons, reasonTable);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const filter: DropFilter = {
    reasons,
    reasonNames: flags.reasons.map((r) => r.trim().toUpperCase().replace(/^SKB_DROP_REASON_/, '')).concat(reasons.map((n) => reasonTable.get(n) ?? '')).filter(Boolean),
    protocols: flags.protocols,
    locations,
  };

  const netnsTarget = flags.netns !== undefined ? resolveNetnsSpec(flags.netns) : undefined;
  const source: DropSource =
    choice.name === 'bpf'
      ? new BpfDropSource({
          ...(netnsTarget ? { netns: netnsTarget.inode } : {}),
          ...(flags.interface !== undefined ? { ifindex: interfaceIndex(flags.interface, netnsTarget) } : {}),
          // --interface alone means dropmon's namespace: filter on it too, ifindexes repeat across namespaces.
          ...(flags.interface !== undefined && !netnsTarget ? { netns: currentNetnsInode() } : {}),
          ...(flags.packets ? { packets: {} } : {}),
          software: flags.origins.sw,
          hardware: flags.origins.hw,
          warn,
        })
      : choice.name === 'tracefs'
      ? new TracefsDropSource({
          ...(root ? { root } : {}),
          ...(layout ? { layout } : {}),
          filter,
          stack: flags.stack,
          ...(flags.bufferKb !== undefined ? { bufferKb: flags.bufferKb } : {}),
          software: flags.origins.sw,
          hardware: flags.origins.hw,
          warn,
        })
      : new NetdmDropSource({
          ...(flags.mode ? { mode: flags.mode } : {}),
          origins: flags.origins,
          ...(flags.trunc !== undefined ? { truncLen: flags.trunc } : {}),
          ...(flags.queue !== undefined ? { queueLen: flags.queue } : {}),
          force: flags.force,
          passive: flags.passive,
          keepRaw: flags.pcap !== undefined,
          warn,
        });
  onCleanup(() => source.close());
  // With the pcap on stdout, the lines go to stderr.
  const toStderr = flags.pcap === '-';
  const write = (t: string) => {
    (toStderr ? process.stderr : process.stdout).write(t);
  };
  const pcap = flags.pcap !== undefined ? new PcapWriter(flags.pcap, flags.pcapFormat, (s) => describeDrop(s, symbols), warn) : undefined;
  if (pcap) onCleanup(() => pcap.close());
  const perPacket = (choice.name === 'netdm' && flags.mode === 'packet') || (choice.name === 'bpf' && flags.packets);
  const outputs: IntervalOutput[] = [
    flags.json ? new JsonOutput(write, symbols, source.name) : new TextOutput(write, symbols, flags.timestamps, perPacket),
  ];
  const packetOutputs: PacketOutput[] = [];
  if (perPacket) packetOutputs.push(flags.json ? new PacketJsonOutput(write, symbols, source.name) : new PacketTextOutput(write, symbols));
  if (pcap) packetOutputs.push(pcap);
  // Counters beside the drops: sampled at each interval's close, joined with its drop points.
  const kb = loadKnowledge();
  const countersSpec = flags.countersNetns ?? flags.netns;
  const sampler = flags.counters
    ? new CounterSampler({ ...(countersSpec !== undefined ? { netns: resolveNetnsSpec(countersSpec) } : {}), sockets: 'drops' })
    : undefined;
  const annotate = annotateWithCounters({
    kb,
    sampler,
    symbolName: (a) => symbols.lookup(a)?.name,
    noise: flags.all ? 'flat' : flags.quietBenign ? 'hide' : flags.json ? 'mark' : 'apart',
    ...(flags.reasons.length ? { watchedReasons: new Set(filter.reasonNames) } : {}),
    warn,
  });
  const own = ownOutputs?.({ source, symbols, intervalMs: flags.intervalMs });
  if (!own && !perPacket) {
    if (flags.json) outputs.push(new CorrelationJsonOutput(write, symbols, source.name));
    else outputs.push(new CorrelationTextOutput(write, symbols));
  }
  const pipeline = new Pipeline({
    source,
    outputs: own ? own.outputs : outputs,
    annotate,
    packetOutputs: own ? [...own.packetOutputs, ...(pcap ? [pcap] : [])] : packetOutputs,
    intervalMs: flags.intervalMs,
    maxPoints: flags.maxPoints,
    filter,
    outputsReady: kallsyms,
    ...(flags.durationMs !== undefined ? { durationMs: flags.durationMs } : {}),
    ...(flags.count !== undefined ? { countLimit: flags.count } : {}),
    onStarted: () => {
      if (source instanceof NetdmDropSource) pcap?.family(source.familyMessage);
      process.stderr.write(`dropmon: watching ${source.describe()}; Ctrl-C to stop\n`);
    },
  });
  onStopSignal(() => pipeline.stop('signal'));
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') pipeline.stop('output-closed');
  });
  await pipeline.run();
  source.close();
  if (pipeline.lost > 0) warn(`${pipeline.lost} events were lost in all (see the "lost" lines)`);
  return 0;
}
