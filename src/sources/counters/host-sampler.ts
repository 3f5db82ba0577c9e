/**
 * The counters of every network namespace of the host, each interval, within
 * a budget.
 *
 * dropmon's own namespace is read in full every interval, as the
 * single-namespace sampler does (snapshot.ts); it alone reads the counters
 * the kernel keeps per host (softnet, the neighbour tables). Every other
 * namespace the registry holds (kernel/netns-registry.ts) is read by its own
 * NamespaceReader (a cheap probe, a full read when something moved), in this
 * order:
 *   1. namespaces where the closing interval's drops happened (the drop
 *      points' netns), and namespaces that went away (their final read);
 *   2. the others, longest unread first (round-robin);
 * until the per-interval budget is spent: at most `budget.namespaces`
 * namespaces and `budget.ms` milliseconds of CPU (CPU, not elapsed time: on
 * a loaded host the reads take longer without costing more, and the budget
 * is about what dropmon costs the host). Namespaces left over are read in a
 * later interval (their deltas then span the longer time) and counted in the
 * snapshot's `skipped`, which the annotator tells. A namespace read the first
 * time gives its baseline, no deltas. Readings and deltas of other
 * namespaces carry the namespace's inode (`netns`); the own namespace's none.
 *
 * A namespace that cannot be read (entering it is refused) is one error line;
 * it never stops the others or the interval.
 */
import type { CounterDelta, CounterReading } from '../../core/counter.js';
import type { IntervalReport } from '../../core/interval.js';
import type { IntervalCounters } from '../../core/annotate.js';
import type { Attribution } from '../../core/attribution.js';
import { NetnsRegistry, type HeldNetns } from '../../kernel/netns-registry.js';
import { releaseNetns, type NetnsTarget } from '../../kernel/setns.js';
import { CounterSampler, type CounterInterval, type CounterSnapshot, type SamplerOptions } from './snapshot.js';
import { NamespaceReader, type NamespaceReaderOptions } from './namespace-reader.js';

export interface HostBudget {
  /** Other namespaces read per interval, at most. */
  readonly namespaces: number;
  /** CPU time spent reading other namespaces per interval, at most, ms. */
  readonly ms: number;
  /** The same for the baseline, when every namespace is read in full once (ms). */
  readonly baselineMs: number;
}

/**
 * The default budget for an interval: 256 namespaces, and 5 % of the interval
 * (at least 5 ms, at most 250 ms). Idle namespaces cost a probe each (~10 µs),
 * so the time bound matters only when many namespaces are busy at once.
 */
export function defaultBudget(intervalMs: number): HostBudget {
  const ms = Math.min(250, Math.max(5, intervalMs * 0.05));
  return { namespaces: 256, ms, baselineMs: Math.max(1000, ms) };
}

export interface HostSamplerOptions extends NamespaceReaderOptions {
  /** The namespaces; default a new registry of this host's (closed with the sampler). */
  readonly registry?: NetnsRegistry;
  /** How dropmon's own namespace is read. */
  readonly own?: SamplerOptions;
  readonly budget?: Partial<HostBudget>;
}

export interface HostCounterSnapshot extends CounterSnapshot {
  /** Namespaces (besides the own) left for a later interval, of how many. */
  readonly skipped: { readonly namespaces: number; readonly of: number };
  /** Namespaces (besides the own) read this time, in full or by their probe. */
  readonly namespacesRead: number;
}

export interface HostCounterInterval extends CounterInterval {
  readonly snapshot: HostCounterSnapshot;
}

export class HostCounterSampler implements IntervalCounters<HostCounterSnapshot> {
  readonly registry: NetnsRegistry;
  private readonly ownsRegistry: boolean;
  private readonly own: CounterSampler;
  private readonly readers = new Map<number, NamespaceReader>();
  /** The sample each namespace was last read at. */
  private readonly lastRead = new Map<number, number>();
  private samples = 0;
  private readonly budget: HostBudget;

  constructor(private readonly o: HostSamplerOptions = {}) {
    this.registry = o.registry ?? new NetnsRegistry();
    this.ownsRegistry = o.registry === undefined;
    this.own = new CounterSampler(o.own ?? {});
    this.budget = { ...defaultBudget(1000), ...o.budget };
  }

  baseline(): HostCounterSnapshot {
    const own = this.own.baseline();
    this.registry.refresh({ force: true });
    return this.readOthers(own, undefined, this.budget.baselineMs).snapshot;
  }

  sample(closing?: IntervalReport): HostCounterInterval {
    const own = this.own.sample();
    const want = new Set<number>();
    if (closing) for (const p of [...closing.points, ...(closing.benignPoints ?? [])]) if (p.netns !== undefined) want.add(p.netns);
    this.registry.refresh({ want });
    const others = this.readOthers(own.snapshot, want, this.budget.ms);
    return { deltas: [...own.deltas, ...others.deltas], seconds: own.seconds, snapshot: others.snapshot };
  }

  private readOthers(own: CounterSnapshot, want: ReadonlySet<number> | undefined, ms: number): { deltas: CounterDelta[]; snapshot: HostCounterSnapshot } {
    const t0 = performance.now();
    const cpu0 = cpuMs();
    const sample = this.samples++;
    const ownInode = this.registry.ownInode;
    const held = this.registry.list().filter((n) => n.inode !== ownInode);
    const urgent = (n: HeldNetns) => n.gone !== undefined || (want?.has(n.inode) ?? false);
    const order = held
      .map((n) => ({ n, urgent: urgent(n), last: this.lastRead.get(n.inode) ?? -1 }))
      .sort((a, b) => Number(b.urgent) - Number(a.urgent) || a.last - b.last || a.n.firstSeen - b.n.firstSeen);
    const deltas: CounterDelta[] = [];
    const errors: string[] = [...own.errors];
    let read = 0;
    for (const { n, urgent } of order) {
      // At least one namespace a time, however small the time budget: every namespace gets its turn.
      if (read >= this.budget.namespaces || (read > 0 && cpuMs() - cpu0 >= ms)) break;
      read++;
      const reader = this.readerOf(n);
      try {
        const r = reader.read(urgent);
        for (const d of r.deltas) deltas.push(d);
        for (const e of r.errors) errors.push(e);
      } catch (err) {
        errors.push(`${labelOf(n)}: cannot be read (${(err as Error).message})`);
      }
      this.lastRead.set(n.inode, sample);
      this.registry.sampled(n.inode);
    }
    // Namespaces the registry let go of (gone, and read a last time).
    for (const [inode, reader] of this.readers) {
      if (this.registry.get(inode)) continue;
      reader.close();
      this.readers.delete(inode);
      this.lastRead.delete(inode);
    }
    if (this.registry.notHeld > 0) errors.push(`${this.registry.notHeld} network namespaces not read: more than the ${this.registry.maxHeld} held at most`);
    const readings: CounterReading[] = own.readings.slice();
    for (const reader of this.readers.values()) for (const r of reader.readings()) readings.push(r);
    const snapshot: HostCounterSnapshot = {
      ...own,
      readings,
      errors,
      tookMs: own.tookMs + (performance.now() - t0),
      skipped: { namespaces: held.length - read, of: held.length },
      namespacesRead: read,
    };
    return { deltas, snapshot };
  }

  private readerOf(n: HeldNetns): NamespaceReader {
    let r = this.readers.get(n.inode);
    if (!r) this.readers.set(n.inode, (r = new NamespaceReader(n.inode, n.target, labelOf(n), this.o)));
    return r;
  }

  /** Let go of every namespace (and the registry, when the sampler made it). */
  close(): void {
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
    if (this.ownsRegistry) this.registry.close();
  }
}

/** CPU time of this process, ms. */
function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

function labelOf(n: HeldNetns): string {
  return `netns ${n.name ?? n.inode}`;
}

/** Whose counters a command reads: the whole host's, dropmon's own namespace's, or one namespace's (--netns). */
export type CounterScope = 'host' | 'own';

export interface CounterChoice {
  readonly sampler: IntervalCounters<CounterSnapshot> & { close?(): void };
  /** Namespace names (and when one went away) for the outputs, when counters are read host-wide. */
  readonly attribution?: Attribution;
  /** The namespaces held, when counters are read host-wide. */
  readonly registry?: NetnsRegistry;
  /** Let go of the namespaces held. */
  close(): void;
}

/**
 * The counter sampler a command or the service uses: one namespace when
 * `netns` is given (held by its descriptor), dropmon's own for scope "own",
 * every namespace of the host otherwise, with the budget of `intervalMs`.
 */
export function chooseCounterSampler(o: {
  readonly netns?: NetnsTarget;
  readonly scope: CounterScope;
  readonly intervalMs: number;
  readonly own: SamplerOptions;
  /** The namespaces, when the caller keeps them beyond this sampler (released at close, held again by the next). */
  readonly registry?: NetnsRegistry;
}): CounterChoice {
  if (o.netns !== undefined || o.scope === 'own') {
    const sampler = new CounterSampler({ ...o.own, ...(o.netns ? { netns: o.netns } : {}) });
    return { sampler, close: () => releaseNetns(o.netns) };
  }
  const sampler = new HostCounterSampler({ own: o.own, budget: defaultBudget(o.intervalMs), ...(o.registry ? { registry: o.registry } : {}) });
  return {
    sampler,
    attribution: sampler.registry,
    registry: sampler.registry,
    close: () => {
      sampler.close();
      o.registry?.close();
    },
  };
}
