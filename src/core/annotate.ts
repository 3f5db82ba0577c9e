/**
 * What every command and the service add to each interval as it closes: the
 * counters that moved, their correlation with the drop points, and the noise
 * policy that sets usually-benign drops apart.
 *
 * Counters are beside the drops, never in their way. The one policy for
 * trouble reading them:
 *   - a family the sampler could not read (one interface's ethtool, a /proc
 *     file) is told once; the sampler tries every family again each interval;
 *   - a whole read that fails (a namespace that went away) is told once, the
 *     interval goes on without counters, and the next interval reads again;
 *     when that works, it is told once that counters can be read again.
 *   - namespaces a host-wide read left for a later interval (its budget) are
 *     told once, with how many.
 * Nothing here is fatal and nothing is silent. A family is not told when it
 * recovers: its absence from one read does not mean it was read (device
 * statistics are read every few intervals only).
 */
import type { DropPoint, IntervalReport } from './interval.js';
import { correlate } from './correlate.js';
import type { KnowledgeView } from './knowledge-view.js';
import type { CounterDelta } from './counter.js';

/** What the annotator needs of a counter snapshot: the families not read. */
export interface CounterSnapshotErrors {
  readonly errors: readonly string[];
  /** A host-wide read: namespaces left for a later interval by the per-interval budget, of how many. */
  readonly skipped?: { readonly namespaces: number; readonly of: number };
}

/**
 * What annotation needs of a counter sampler (src/sources/counters/snapshot.ts,
 * host-sampler.ts): a baseline, then the deltas of each interval, with the
 * families not read. `closing` is the interval the deltas are for: a
 * host-wide sampler reads the namespaces its drops happened in first.
 */
export interface IntervalCounters<S extends CounterSnapshotErrors = CounterSnapshotErrors> {
  baseline(): S;
  sample(closing?: IntervalReport): { readonly deltas: readonly CounterDelta[]; readonly snapshot: S };
}

/**
 * How trouble reading counters is told; each is called once per occurrence
 * as the policy above says.
 */
export interface CounterTrouble {
  /** A family could not be read (the sampler's message, which names it). */
  notRead(message: string): void;
  /** Reading failed as a whole: the interval goes on without counters. */
  failed(message: string): void;
  /** Counters could be read again after failing. */
  recovered(): void;
}

/** The usual telling: warnings (and a plain message for the recovery). */
export function troubleAsWarnings(warn: (message: string) => void, info: (message: string) => void = warn): CounterTrouble {
  return {
    notRead: (e) => warn(`counters not read: ${e}`),
    failed: (e) => warn(`counters cannot be read (${e}); intervals go on without them`),
    recovered: () => info('counters can be read again'),
  };
}

/**
 * flat: every point on its own, nothing marked; apart: benign points moved to
 * `benignPoints` (text prints them on one line); mark: points kept, benign ones
 * also listed in `benignPoints` (JSON); hide: benign points left out.
 */
export type NoisePolicy = 'flat' | 'apart' | 'mark' | 'hide';

export interface AnnotateOptions<S extends CounterSnapshotErrors = CounterSnapshotErrors> {
  readonly kb: KnowledgeView;
  readonly sampler?: IntervalCounters<S>;
  /** The kernel function a drop location is in, when symbols are loaded. */
  readonly symbolName: (location: bigint) => string | undefined;
  readonly noise: NoisePolicy;
  /** Reasons a --reason filter lets through (counters of other reasons are not blind spots). */
  readonly watchedReasons?: ReadonlySet<string>;
  /** The inode of the namespace whose counters carry no netns mark (dropmon's own): they pair with its drops. */
  readonly ownNetns?: number;
  readonly trouble: CounterTrouble;
  /** Every snapshot read, the baseline first (the service keeps the latest for its API and metrics). */
  readonly onSnapshot?: (snapshot: S) => void;
}

/** Reads the counters each interval, telling trouble as the policy says. */
class CounterReader<S extends CounterSnapshotErrors> {
  private readonly told = new Set<string>();
  private failing = false;
  private toldSkipped = false;

  constructor(
    private readonly sampler: IntervalCounters<S>,
    private readonly o: AnnotateOptions<S>,
  ) {
    this.read(() => ({ snapshot: sampler.baseline() }));
  }

  /** The deltas since the last read, or undefined when reading failed. */
  sample(closing: IntervalReport): readonly CounterDelta[] | undefined {
    return this.read(() => this.sampler.sample(closing))?.deltas;
  }

  private read<T extends { readonly snapshot: S }>(step: () => T): T | undefined {
    let s: T;
    try {
      s = step();
    } catch (err) {
      if (!this.failing) this.o.trouble.failed(err instanceof Error ? err.message : String(err));
      this.failing = true;
      return undefined;
    }
    if (this.failing) this.o.trouble.recovered();
    this.failing = false;
    for (const e of s.snapshot.errors) {
      if (this.told.has(e)) continue;
      this.told.add(e);
      this.o.trouble.notRead(e);
    }
    const skipped = s.snapshot.skipped;
    if (skipped && skipped.namespaces > 0 && !this.toldSkipped) {
      this.o.trouble.notRead(`${skipped.namespaces} of ${skipped.of} network namespaces left for a later interval (over the per-interval budget); each is read in turn`);
      this.toldSkipped = true;
    }
    this.o.onSnapshot?.(s.snapshot);
    return s;
  }
}

/** The annotation of each closing interval; the baseline is read now. */
export function annotateWithCounters<S extends CounterSnapshotErrors>(o: AnnotateOptions<S>): (r: IntervalReport) => IntervalReport {
  const counters = o.sampler ? new CounterReader(o.sampler, o) : undefined;
  const isBenign = (p: DropPoint) => !p.trap && p.reasonName !== '' && o.kb.benign(p.reasonName, o.symbolName(p.location)) === 'usually';
  return (r) => {
    let out: IntervalReport = r;
    const deltas = counters?.sample(r);
    if (deltas) out = { ...out, counters: deltas, correlation: correlate(r.points, deltas, o.kb, o.watchedReasons, o.ownNetns) };
    if (o.noise === 'flat') return out;
    const benign = r.points.filter(isBenign);
    if (benign.length === 0) return out;
    const rest = r.points.filter((p) => !isBenign(p));
    switch (o.noise) {
      case 'apart':
        return { ...out, points: rest, benignPoints: benign };
      case 'mark':
        return { ...out, benignPoints: benign };
      case 'hide':
        return { ...out, points: rest };
    }
  };
}
