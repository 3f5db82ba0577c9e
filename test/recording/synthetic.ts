/**
 * Synthetic interval reports for recorder tests: our own data structure, fed
 * to the recorder directly (the kernel-facing path is tested with real drops
 * in record-drops.test.ts).
 */
import type { DropPoint, IntervalReport } from '../../src/core/interval.js';

export const BASE_ADDR = 0xffffffff81000000n;

export interface SyntheticOptions {
  /** Distinct points in the interval. */
  readonly points?: number;
  /** Location offset of the first point: a different one each interval makes new dictionary rows (a storm over many places). */
  readonly firstPoint?: number;
  readonly countPerPoint?: number;
  readonly reasons?: readonly string[];
  readonly lost?: ReadonlyMap<string, number>;
  readonly overflowDrops?: number;
}

/** Interval number `seq` (from 1), `ms` long, starting at `t0 + (seq-1)*ms`. */
export function syntheticInterval(seq: number, t0: number, ms: number, o: SyntheticOptions = {}): IntervalReport {
  const n = o.points ?? 3;
  const reasons = o.reasons ?? ['NO_SOCKET', 'NETFILTER_DROP', 'SOCKET_RCVBUFF'];
  const points: DropPoint[] = [];
  for (let i = 0; i < n; i++) {
    const k = (o.firstPoint ?? 0) + i;
    points.push({
      location: BASE_ADDR + BigInt(k * 16),
      reason: (k % reasons.length) + 2,
      reasonName: reasons[k % reasons.length],
      protocol: 0x0800,
      origin: 'software',
      count: o.countPerPoint ?? 10,
    });
  }
  const lost = o.lost ?? new Map<string, number>();
  const overflow = o.overflowDrops ?? 0;
  return {
    start: t0 + (seq - 1) * ms,
    end: t0 + seq * ms,
    seq,
    points,
    overflow: { drops: overflow, points: overflow ? 1 : 0, pointsCapped: false },
    drops: points.reduce((s, p) => s + p.count, 0) + overflow,
    lost,
    lostTotal: [...lost.values()].reduce((s, v) => s + v, 0),
  };
}
