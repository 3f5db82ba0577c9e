/**
 * From watch's flags to a running setup: the drop source (chosen and
 * checked), the filter (reasons against this kernel's table, locations
 * through kallsyms), the symbolizer loading in the background, and the
 * counters annotated at each interval's close. Shared by `watch` (and so
 * `record`) and `top`; each adds only its outputs.
 */
import { join } from 'node:path';
import { DropmonError, UsageError } from '../core/errors.js';
import { resolveReasons, type DropFilter } from '../core/filter.js';
import type { DropSource } from '../core/drop.js';
import { annotateWithCounters, troubleAsWarnings, type NoisePolicy } from '../core/annotate.js';
import type { IntervalReport } from '../core/aggregator.js';
import { loadKnowledge, type KnowledgeBase } from '../core/knowledge.js';
import { type KallsymsTable, Symbolizer, resolveLocations } from '../kernel/kallsyms.js';
import { loadKallsymsInBackground } from '../kernel/kallsyms-loader.js';
import { interfaceIndex, resolveNetnsSpec } from '../kernel/namespaces.js';
import { currentNetnsInode } from '../kernel/setns.js';
import { TracefsDropSource, readLayout } from '../sources/tracefs/source.js';
import { findTracefs } from '../sources/tracefs/tracefs.js';
import { NetdmDropSource } from '../sources/netdm/source.js';
import { BpfDropSource, dropReasonsFromBtf } from '../sources/bpf/source.js';
import { DropReasons } from '../kernel/drop-reasons.js';
import { chooseSource, type SourceName } from '../sources/select.js';
import { CounterSampler } from '../sources/counters/snapshot.js';
import { onCleanup } from './lifecycle.js';
import type { WatchFlags } from './watch-flags.js';

export interface WatchSetup {
  readonly sourceName: SourceName;
  readonly source: DropSource;
  readonly symbols: Symbolizer;
  /** Settles when kallsyms is loaded (undefined when it cannot be read). */
  readonly kallsyms: Promise<KallsymsTable | undefined>;
  readonly filter: DropFilter;
  readonly kb: KnowledgeBase;
  /** Drops come one packet at a time (NET_DM packet mode, BPF --packets). */
  readonly perPacket: boolean;
  /** The counters beside the drops, and the given noise policy, added at each interval's close. */
  annotate(noise: NoisePolicy): (r: IntervalReport) => IntervalReport;
}

/** The pipeline options watch and top take from the same flags and set-up: timing, bounds, filter, stop conditions. */
export function pipelineLimits(flags: WatchFlags, setup: WatchSetup) {
  return {
    intervalMs: flags.intervalMs,
    maxPoints: flags.maxPoints,
    filter: setup.filter,
    outputsReady: setup.kallsyms,
    ...(flags.durationMs !== undefined ? { durationMs: flags.durationMs } : {}),
    ...(flags.count !== undefined ? { countLimit: flags.count } : {}),
  };
}

/**
 * Choose, check and build the source (its close() registered as a cleanup).
 * Returns 'listed' when --list-reasons printed the table instead.
 */
export async function setUpWatch(flags: WatchFlags, warn: (m: string) => void): Promise<WatchSetup | 'listed'> {
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
  // The trap counters are not filtered by namespace or port: say so rather than print every port's.
  if (flags.origins.hw && (flags.netns !== undefined || flags.interface !== undefined))
    throw new UsageError('--netns and --interface filter software drops only; hardware drops (--hw) are reported for every port: run them separately');
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
  // One namer for the source and the filters: core reasons from the format's
  // table (else BTF), subsystem reasons (OPENVSWITCH/...) from BTF.
  const coreTable = layout?.kfree.symbolic.get('reason');
  // (The BPF source shares its parsed vmlinux BTF with the namer.)
  const reasonNamer = choice.name === 'bpf' ? dropReasonsFromBtf(coreTable) : new DropReasons(coreTable?.size ? { core: coreTable } : {});
  // The whole table (subsystems too) costs a BTF parse: only for --list-reasons and --reason.
  let reasonTable: ReadonlyMap<number, string> = coreTable ?? new Map<number, string>();
  if (flags.listReasons || flags.reasons.length) reasonTable = reasonNamer.table();
  if (flags.listReasons) {
    if (reasonTable.size === 0) process.stdout.write('this kernel reports no drop reasons (before Linux 5.17)\n');
    for (const [n, name] of [...reasonTable].sort((a, b) => a[0] - b[0])) process.stdout.write(`${n}\t${name}\n`);
    return 'listed';
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
          reasons: reasonNamer,
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
          reasons: reasonNamer,
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
          reasons: reasonNamer,
          warn,
        });
  onCleanup(() => source.close());
  const kb = loadKnowledge();
  const countersSpec = flags.countersNetns ?? flags.netns;
  const sampler = flags.counters
    ? new CounterSampler({ ...(countersSpec !== undefined ? { netns: resolveNetnsSpec(countersSpec) } : {}), sockets: 'drops' })
    : undefined;
  return {
    sourceName: choice.name,
    source,
    symbols,
    kallsyms,
    filter,
    kb,
    perPacket: (choice.name === 'netdm' && flags.mode === 'packet') || (choice.name === 'bpf' && flags.packets),
    annotate: (noise) =>
      annotateWithCounters({
        kb,
        sampler,
        symbolName: (a) => symbols.lookup(a)?.name,
        noise,
        ...(flags.reasons.length ? { watchedReasons: new Set(filter.reasonNames) } : {}),
        trouble: troubleAsWarnings(warn),
      }),
  };
}
