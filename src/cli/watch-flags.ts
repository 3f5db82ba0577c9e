/**
 * The flags of `watch` that pick and tune the drop source, the filters, the
 * timing and the counters: one definition (options, help text, validation)
 * shared by `watch`, `record` (through watch) and `top`, so the same
 * command line means the same thing on every live view.
 */
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors.js';
import { parseProtocol } from '../core/drop.js';
import type { PcapFormat } from '../outputs/pcap.js';
import type { AlertMode, Origins } from '../sources/netdm/protocol.js';
import type { SourceName } from '../sources/select.js';
import { listValues, parseChoice, parseCount, parseSeconds, parseCommandArgs } from './args.js';

export const COUNTERS_HELP = `Counters (beside the drops, every interval; see 'dropmon counters'):
      --no-counters       do not read the kernel's drop counters
      --counters-netns NS read the counters of this network namespace only
                          (default: --netns when given, else every namespace
                          of the host)
`;

export const TIMING_HELP = `Timing:
  -i, --interval SEC      length of an interval (default 1)
  -d, --duration SEC      stop after SEC seconds (default: until Ctrl-C)
  -n, --count N           stop after N drops (like dropwatch's alert limit)
      --max-points N      distinct drop points kept per interval (default 64);
                          the rest are summed in one "other locations" line
`;

export const SOURCE_HELP = `Filters (in the kernel where tracefs can, else in dropmon):
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
      --stack             tracefs: aggregate by kernel call stack too (costs
                          more per drop: use for diagnosis, not storms)

BPF (--source bpf): drops counted in the kernel, with interface and namespace
      --netns NS          only drops in this network namespace: an ip netns
                          name, a process id, an inode number or /proc/PID/ns/net
      --interface NAME    only drops on this interface (of --netns, else of
                          dropmon's own namespace); both filters run in the kernel

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
`;

/** Every option of watch; output options included, so `top` can name them when it refuses them. */
export const WATCH_OPTIONS = {
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
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export interface WatchFlags {
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

type ExtraOptions = NonNullable<ParseArgsConfig['options']>;
export type ExtraValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Parse watch's flags, plus a command's own `extra` options (returned
 * apart, as node:util gives them). The names given, for commands that
 * accept only some of watch's options, are in `given`.
 */
export function parseWatchFlags(
  command: string,
  argv: string[],
  extra: ExtraOptions = {},
): { flags: WatchFlags | 'help'; extra: ExtraValues; given: Set<string> } {
  const parsed = parseCommandArgs(command, argv, { ...extra, ...WATCH_OPTIONS });
  const all = parsed.values as ExtraValues;
  const given = new Set(Object.keys(all).filter((k) => all[k] !== undefined));
  const extraValues: ExtraValues = {};
  for (const k of Object.keys(extra)) if (!(k in WATCH_OPTIONS)) extraValues[k] = all[k];
  const v = parsed.values;
  if (v.help) return { flags: 'help', extra: extraValues, given };
  const source = parseChoice('--source', v.source, ['auto', 'bpf', 'tracefs', 'netdm'] satisfies WatchFlags['source'][]);
  const mode = parseChoice('--mode', v.mode, ['summary', 'packet'] satisfies AlertMode[]);
  const protocols = listValues(v.protocol).map((p) => {
    const n = parseProtocol(p);
    if (n === undefined) throw new UsageError(`unknown --protocol ${JSON.stringify(p)}; use ipv4, ipv6, arp or an EtherType like 0x88b5`);
    return n;
  });
  const interval = parseSeconds('--interval', v.interval, 0.1, 3600) ?? 1;
  const duration = parseSeconds('--duration', v.duration, 0.1, 10 * 365 * 86400);
  const flags: WatchFlags = {
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
    source: source ?? 'auto',
    ...(mode !== undefined ? { mode } : {}),
    origins: { sw: v.sw ?? !v.hw, hw: v.hw ?? false },
    ...(v.trunc !== undefined ? { trunc: parseCount('--trunc', v.trunc, 0, 65535) } : {}),
    ...(v.queue !== undefined ? { queue: parseCount('--queue', v.queue, 1, 1_000_000) } : {}),
    force: v.force ?? false,
    passive: v.passive ?? false,
    ...(v.pcap !== undefined ? { pcap: v.pcap } : {}),
    pcapFormat: parseChoice('--pcap-format', v['pcap-format'], ['pcapng', 'netlink'] satisfies PcapFormat[]) ?? 'pcapng',
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
  return { flags, extra: extraValues, given };
}
