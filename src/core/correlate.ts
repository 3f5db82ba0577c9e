/**
 * Correlation: the counters that moved in an interval, joined with the drop
 * points that explain them. "Udp:RcvbufErrors +120" and "120 x SOCKET_RCVBUFF
 * at __udp_enqueue_schedule_skb" are the same 120 datagrams; the knowledge
 * base says which counter pairs with which reason. A drop counter that moved
 * with no drop event behind it is a blind spot of the tracer: NIC ring
 * overruns never become an skb, and some kernel paths free what they refuse
 * with consume_skb(), which no drop tracepoint sees.
 *
 * Counters pair with drops of their own network namespace (core/netns.ts):
 * Udp:RcvbufErrors of one container says nothing of the drops of another.
 */
import type { CounterDelta } from './counter.js';
import type { BlindSpot, CorrelatedGroup, Correlation, DropPoint } from './interval.js';
import type { CounterKnowledge, KnowledgeView } from './knowledge-view.js';
import { counterNetns, mayBeSameNetns, pointNetns, sameNetns } from './netns.js';

/** Counters worth correlating: totals that count drops (or errors with known drop reasons). */
function relevant(d: CounterDelta, kb: KnowledgeView): boolean {
  if (d.gauge || d.delta <= 0) return false;
  const k = kb.counter(d.name);
  return k !== undefined && (k.drop === true || kb.reasonsForCounter(d.name).length > 0);
}

/**
 * Join counter deltas with the interval's drop points. `watchedReasons`, when
 * given, are the reasons a filter let through: counters whose reasons were
 * filtered out are not called blind spots. `ownNetns` is the inode of
 * dropmon's own namespace, where counters without a namespace were read (when
 * unknown, those pair with drops of any namespace).
 */
export function correlate(
  points: readonly DropPoint[],
  deltas: readonly CounterDelta[],
  kb: KnowledgeView,
  watchedReasons?: ReadonlySet<string>,
  ownNetns?: number,
): Correlation {
  const pointsByReason = new Map<string, DropPoint[]>();
  for (const p of points) {
    if (!p.reasonName) continue;
    const list = pointsByReason.get(p.reasonName);
    if (list) list.push(p);
    else pointsByReason.set(p.reasonName, [p]);
  }
  const groups = new Map<string, { reasons: string[]; counters: CounterDelta[]; points: Set<DropPoint>; netns: number | undefined }>();
  const blindSpots: BlindSpot[] = [];
  for (const d of deltas) {
    if (!relevant(d, kb)) continue;
    const reasons = kb.reasonsForCounter(d.name);
    const matched = matchingPoints(d, reasons, pointsByReason, ownNetns);
    if (matched.length) {
      const seen = reasons.filter((r) => matched.some((p) => p.reasonName === r));
      const netns = commonNetns(matched);
      const key = `${netns ?? ''}|${seen.slice().sort().join(',')}`;
      const g = groups.get(key);
      if (g) {
        g.counters.push(d);
        for (const p of matched) g.points.add(p);
      } else groups.set(key, { reasons: seen, counters: [d], points: new Set(matched), netns });
      continue;
    }
    const k = kb.counter(d.name);
    if (!k?.drop) continue; // an error counter without events is not a lost drop
    if (watchedReasons && reasons.length && !reasons.some((r) => watchedReasons.has(r))) continue;
    blindSpots.push({ counter: d, why: blindSpotReason(k, reasons) });
  }
  const out: CorrelatedGroup[] = [];
  for (const g of groups.values()) {
    // In the interval's order (most drops first), whichever counter found them first.
    const ps = points.filter((p) => g.points.has(p));
    out.push({ reasons: g.reasons, counters: g.counters, points: ps, drops: ps.reduce((n, p) => n + p.count, 0), ...(g.netns !== undefined ? { netns: g.netns } : {}) });
  }
  out.sort((a, b) => b.drops - a.drops);
  blindSpots.sort((a, b) => b.counter.delta - a.counter.delta);
  return { groups: out, blindSpots };
}

/**
 * The drop points a counter counted: of its reasons, those in its namespace,
 * else those whose namespace nobody knows; a host-wide counter's, anywhere.
 */
function matchingPoints(d: CounterDelta, reasons: readonly string[], pointsByReason: ReadonlyMap<string, readonly DropPoint[]>, own: number | undefined): DropPoint[] {
  const all = reasons.flatMap((r) => pointsByReason.get(r) ?? []);
  if (d.hostWide) return all;
  const netns = counterNetns(d, own);
  const exact = all.filter((p) => sameNetns(pointNetns(p), netns));
  return exact.length ? exact : all.filter((p) => mayBeSameNetns(pointNetns(p), netns));
}

/** The namespace all these points were in, when it is one known namespace. */
function commonNetns(points: readonly DropPoint[]): number | undefined {
  const first = pointNetns(points[0]);
  return first !== undefined && points.every((p) => pointNetns(p) === first) ? first : undefined;
}

function blindSpotReason(k: CounterKnowledge, reasons: readonly string[]): string {
  if (k.blindSpot) return 'these drops never reach kfree_skb, so no drop event can show them';
  if (reasons.length === 0) return 'no drop reason is known to pair with this counter';
  return `no ${reasons.join('/')} drop event in this interval: the kernel may free these packets without a drop event, or they happened in another namespace`;
}
