/**
 * What `watch` (and the commands built on it) add to each interval as it
 * closes: the counters that moved, their correlation with the drop points,
 * and the noise policy that sets usually-benign drops apart.
 */
import type { DropPoint, IntervalReport } from './interval.js';
import { correlate } from './correlate.js';
import type { KnowledgeView } from './knowledge-view.js';
import type { CounterDelta } from './counter.js';

/**
 * flat: every point on its own, nothing marked; apart: benign points moved to
 * `benignPoints` (text prints them on one line); mark: points kept, benign ones
 * also listed in `benignPoints` (JSON); hide: benign points left out.
 */
/**
 * What annotation needs of a counter sampler (src/sources/counters/snapshot.ts):
 * a baseline, then the deltas of each interval, with the families not read.
 */
export interface IntervalCounters {
  baseline(): { readonly errors: readonly string[] };
  sample(): { readonly deltas: readonly CounterDelta[]; readonly snapshot: { readonly errors: readonly string[] } };
}

export type NoisePolicy = 'flat' | 'apart' | 'mark' | 'hide';

export interface AnnotateOptions {
  readonly kb: KnowledgeView;
  readonly sampler?: IntervalCounters;
  /** The kernel function a drop location is in, when symbols are loaded. */
  readonly symbolName: (location: bigint) => string | undefined;
  readonly noise: NoisePolicy;
  /** Reasons a --reason filter lets through (counters of other reasons are not blind spots). */
  readonly watchedReasons?: ReadonlySet<string>;
  readonly warn: (message: string) => void;
}

export function annotateWithCounters(o: AnnotateOptions): (r: IntervalReport) => IntervalReport {
  const warned = new Set<string>();
  let samplerFailed = false;
  if (o.sampler) {
    try {
      const first = o.sampler.baseline();
      for (const e of first.errors) {
        warned.add(e);
        o.warn(`counters not read: ${e}`);
      }
    } catch (err) {
      samplerFailed = true;
      o.warn(`counters disabled: ${(err as Error).message}`);
    }
  }
  const isBenign = (p: DropPoint) => !p.trap && p.reasonName !== '' && o.kb.benign(p.reasonName, o.symbolName(p.location)) === 'usually';
  return (r) => {
    let out: IntervalReport = r;
    if (o.sampler && !samplerFailed) {
      try {
        const s = o.sampler.sample();
        for (const e of s.snapshot.errors) {
          if (warned.has(e)) continue;
          warned.add(e);
          o.warn(`counters not read: ${e}`);
        }
        out = { ...out, counters: s.deltas, correlation: correlate(r.points, s.deltas, o.kb, o.watchedReasons) };
      } catch (err) {
        // A counter family failing must never stop the drop monitor.
        samplerFailed = true;
        o.warn(`counters disabled: ${(err as Error).message}`);
      }
    }
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
