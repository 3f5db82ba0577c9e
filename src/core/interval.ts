/**
 * The interval model: what a closed interval holds (its drop points, losses,
 * the counters that moved and their correlation with the drops). Every
 * stage after the aggregator reads it: the annotator, the outputs, the
 * recorder, the service. It sits apart from the code that builds it
 * (aggregator.ts) and the code that correlates (correlate.ts), so that both
 * depend on the model and not on each other.
 */
import type { CounterDelta } from './counter.js';
import type { DropOrigin, TrapInfo } from './drop.js';

/** One drop point in a closed interval. */
export interface DropPoint {
  readonly location: bigint;
  readonly reason: number;
  readonly reasonName: string;
  readonly protocol: number;
  readonly origin: DropOrigin;
  readonly stack?: readonly bigint[];
  readonly trap?: TrapInfo;
  readonly ifindex?: number;
  readonly netns?: number;
  count: number;
}

export interface IntervalReport {
  /** Wall-clock start and end, ms since the epoch. */
  readonly start: number;
  readonly end: number;
  /** Sequence number, from 1. */
  readonly seq: number;
  /** Drop points, most drops first. */
  readonly points: readonly DropPoint[];
  /** Drops at points past the bound, and how many distinct points they were. */
  readonly overflow: { readonly drops: number; readonly points: number; readonly pointsCapped: boolean };
  /** All drops of the interval, kept and overflowed. */
  readonly drops: number;
  /** Events the source lost in the interval, by cause. */
  readonly lost: ReadonlyMap<string, number>;
  readonly lostTotal: number;
  /** Counters that moved in the interval, when counters are sampled beside the drops. */
  readonly counters?: readonly CounterDelta[];
  /** Those counters joined with the drop points that explain them. */
  readonly correlation?: Correlation;
  /**
   * Drop points set apart as usually benign (the noise policy of `watch`):
   * not in `points`, still counted in `drops`.
   */
  readonly benignPoints?: readonly DropPoint[];
}

/** Counters and drop points that count the same packets. */
export interface CorrelatedGroup {
  /** The drop reasons that tie them together. */
  readonly reasons: readonly string[];
  readonly counters: readonly CounterDelta[];
  readonly points: readonly DropPoint[];
  /** Drops at those points. */
  readonly drops: number;
  /** The network namespace (inode) they were in, when known (see core/netns.ts). */
  readonly netns?: number;
}

export interface BlindSpot {
  readonly counter: CounterDelta;
  /** Why no drop event matched, in plain words. */
  readonly why: string;
}

export interface Correlation {
  readonly groups: readonly CorrelatedGroup[];
  readonly blindSpots: readonly BlindSpot[];
}
