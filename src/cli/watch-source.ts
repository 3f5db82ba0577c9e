/**
 * From watch's flags to a running setup: the drop source (chosen, checked
 * and built by the source plan, src/sources/plan.ts), the filter, the
 * symbolizer loading in the background, and the counters annotated at each
 * interval's close. Shared by `watch` (and so `record`) and `top`; each adds
 * only its outputs. Here flags become a request, and the plan's problems are
 * worded as flags.
 */
import { DropmonError, UsageError } from '../core/errors.js';
import type { DropFilter } from '../core/filter.js';
import type { DropSource } from '../core/drop.js';
import { annotateWithCounters, troubleAsWarnings, type NoisePolicy } from '../core/annotate.js';
import type { IntervalReport } from '../core/interval.js';
import { loadKnowledge } from '../knowledge/load.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import { type KallsymsTable, Symbolizer } from '../kernel/kallsyms.js';
import { loadKallsymsInBackground } from '../kernel/kallsyms-loader.js';
import { attribution, resolveNetnsSpec } from '../kernel/namespaces.js';
import type { Attribution } from '../core/attribution.js';
import { readKernelReasons } from '../sources/kernel-reasons.js';
import { planSource, SourceProblem, type SourceRequest } from '../sources/plan.js';
import { chooseSource, type SourceName } from '../sources/select.js';
import { chooseCounterSampler } from '../sources/counters/host-sampler.js';
import { onCleanup } from './lifecycle.js';
import type { WatchFlags } from './watch-flags.js';
import { terminalSafe } from '../core/terminal-safe.js';

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
  /** Namespace and interface names for the outputs (with host-wide counters, also of namespaces that went away). */
  readonly attribution: Attribution;
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

/** What watch's flags ask of a drop source. */
function watchRequest(flags: WatchFlags): SourceRequest {
  return {
    software: flags.origins.sw,
    hardware: flags.origins.hw,
    reasons: flags.reasons,
    protocols: flags.protocols,
    locations: flags.locations,
    ...(flags.netns !== undefined ? { netns: flags.netns } : {}),
    ...(flags.interface !== undefined ? { interface: flags.interface } : {}),
    packets: flags.packets,
    packetBytes: flags.pcap !== undefined,
    stack: flags.stack,
    ...(flags.bufferKb !== undefined ? { bufferKb: flags.bufferKb } : {}),
    netdm: { mode: flags.mode, trunc: flags.trunc, queue: flags.queue, force: flags.force, passive: flags.passive },
  };
}

/** The source plan's problems, in the flags' words (an unknown one as the plan words it). */
const FLAG_WORDING: Record<string, (p: SourceProblem) => Error> = {
  'needs-netdm': () => new UsageError('--mode, --trunc, --queue, --force and --passive need --source netdm'),
  'packets-need-software': () => new UsageError('--packets records software drops: add --sw to --hw'),
  'hardware-scope': () =>
    new UsageError('--netns and --interface filter software drops only; hardware drops (--hw) are reported for every port: run them separately'),
  'needs-bpf': () => new UsageError('--netns, --interface and --packets need --source bpf'),
  'needs-tracefs': () => new UsageError('--stack needs --source tracefs'),
  'packet-bytes': () => new UsageError('--pcap needs --mode packet (NET_DM) or --packets (BPF)'),
  'no-reasons': (p) => new DropmonError(`--reason: ${p.message}`),
  'reasons-unseen': () => new UsageError('--reason: NET_DM summary mode reports no reasons; use --mode packet or --source tracefs'),
  'unknown-reason': (p) => new UsageError(p.message),
  'no-kallsyms': () => new DropmonError('--location needs /proc/kallsyms, which cannot be read'),
  'bad-location': (p) => p.cause as Error,
};

/** Run a step of the source plan, turning its problems into errors that name the flags. */
export function inFlagTerms<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    const word = err instanceof SourceProblem ? FLAG_WORDING[err.code] : undefined;
    throw word ? word(err as SourceProblem) : err;
  }
}

/** kallsyms, loaded on a worker thread while tracing starts (parsing it on this thread would stall the ring-buffer reads for ~0.1 s). */
function loadSymbols(symbols: Symbolizer, warn: (m: string) => void): Promise<KallsymsTable | undefined> {
  return loadKallsymsInBackground().then(
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
}

/**
 * Choose, check and build the source (its close() registered as a cleanup).
 * Returns 'listed' when --list-reasons printed the table instead.
 */
export async function setUpWatch(flags: WatchFlags, warn: (m: string) => void): Promise<WatchSetup | 'listed'> {
  const request = watchRequest(flags);
  const choice = inFlagTerms(() => chooseSource(request, flags.source));
  if (flags.source === 'auto') process.stderr.write(`dropmon: source ${choice.name}: ${choice.why}\n`);
  const kernel = readKernelReasons();
  if (flags.listReasons) {
    if (kernel.tracefsProblem !== undefined) throw kernel.tracefsProblem;
    // The whole table, subsystems too (a BTF parse).
    const table = kernel.namer.table();
    if (table.size === 0) process.stdout.write('this kernel reports no drop reasons (before Linux 5.17)\n');
    for (const [n, name] of [...table].sort((a, b) => a[0] - b[0])) process.stdout.write(`${n}\t${terminalSafe(name)}\n`);
    return 'listed';
  }
  const symbols = new Symbolizer();
  const kallsyms = loadSymbols(symbols, warn);
  // Only --location, which needs kallsyms for the filter, waits for it.
  const table = flags.locations.length ? await kallsyms : undefined;
  const plan = inFlagTerms(() => planSource(choice, request, kernel, table));
  const filter = plan.filter;
  const source = plan.create(warn);
  onCleanup(() => source.close());
  const kb = loadKnowledge();
  // Every namespace's counters, unless one is named.
  const countersSpec = flags.countersNetns ?? flags.netns;
  const counters = flags.counters
    ? chooseCounterSampler({
        ...(countersSpec !== undefined ? { netns: resolveNetnsSpec(countersSpec) } : {}),
        scope: 'host',
        intervalMs: flags.intervalMs,
        own: { sockets: 'drops' },
      })
    : undefined;
  if (counters) onCleanup(() => counters.close());
  const sampler = counters?.sampler;
  return {
    sourceName: choice.name,
    source,
    symbols,
    kallsyms,
    filter,
    kb,
    perPacket: plan.perPacket,
    attribution: counters?.attribution ?? attribution(),
    annotate: (noise) =>
      annotateWithCounters({
        kb,
        ownNetns: (counters?.attribution ?? attribution()).ownInode,
        sampler,
        symbolName: (a) => symbols.lookup(a)?.name,
        noise,
        ...(flags.reasons.length ? { watchedReasons: new Set(filter.reasonNames) } : {}),
        trouble: troubleAsWarnings(warn),
      }),
  };
}
