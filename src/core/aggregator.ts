/**
 * Part B of the original design: per-interval aggregation of drop samples by
 * drop point, with a hard bound on the number of distinct points so memory
 * stays flat in a drop storm that hits many locations. Points beyond the
 * bound are folded into one overflow line: "N drops at M other locations".
 */
import type { DropSample, LossSample } from './drop.js';
import type { DropPoint, IntervalReport } from './interval.js';

/** The number of distinct overflowed points tracked before saying "at least". */
const OVERFLOW_KEYS_MAX = 10_000;

function pointKey(s: DropSample): string {
  const t = s.trap;
  const trap = t ? `${t.name}:${t.group ?? ''}:${t.type ?? ''}:${t.action ?? ''}:${t.device ?? ''}:${t.inputName ?? ''}` : '';
  const base = `${s.location}:${s.reason}:${s.reasonName}:${s.protocol}:${s.origin}:${trap}:${s.ifindex ?? ''}:${s.netns ?? ''}`;
  return s.stack ? `${base}:${s.stack.join(',')}` : base;
}

export class IntervalAggregator {
  private points = new Map<string, DropPoint>();
  private overflowKeys = new Set<string>();
  private overflowDrops = 0;
  private drops = 0;
  private lost = new Map<string, number>();
  private lostTotal = 0;
  private start: number;
  private seq = 0;

  constructor(
    /** Bound on distinct drop points per interval (the original design used 64). */
    readonly maxPoints = 64,
    now = Date.now(),
  ) {
    this.start = now;
  }

  /** Drops seen in the current interval so far. */
  get currentDrops(): number {
    return this.drops;
  }

  add(s: DropSample): void {
    this.drops += s.count;
    const key = pointKey(s);
    const p = this.points.get(key);
    if (p) {
      p.count += s.count;
    } else if (this.points.size < this.maxPoints) {
      this.points.set(key, {
        location: s.location,
        reason: s.reason,
        reasonName: s.reasonName,
        protocol: s.protocol,
        origin: s.origin,
        count: s.count,
        ...(s.stack ? { stack: s.stack } : {}),
        ...(s.trap ? { trap: s.trap } : {}),
        ...(s.ifindex !== undefined ? { ifindex: s.ifindex } : {}),
        ...(s.netns !== undefined ? { netns: s.netns } : {}),
      });
    } else {
      this.overflowDrops += s.count;
      if (this.overflowKeys.size < OVERFLOW_KEYS_MAX) this.overflowKeys.add(key);
    }
  }

  addLoss(l: LossSample): void {
    if (l.lost <= 0) return;
    this.lost.set(l.cause, (this.lost.get(l.cause) ?? 0) + l.lost);
    this.lostTotal += l.lost;
  }

  /** Discard the current interval and start a new one at `now` (sequence unchanged). */
  reset(now = Date.now()): void {
    this.close(now);
    this.seq--;
  }

  /** Close the current interval and start the next one at `now`. */
  close(now = Date.now()): IntervalReport {
    const points = [...this.points.values()].sort((a, b) => b.count - a.count || (a.location < b.location ? -1 : 1));
    const report: IntervalReport = {
      start: this.start,
      end: now,
      seq: ++this.seq,
      points,
      overflow: { drops: this.overflowDrops, points: this.overflowKeys.size, pointsCapped: this.overflowKeys.size >= OVERFLOW_KEYS_MAX },
      drops: this.drops,
      lost: this.lost,
      lostTotal: this.lostTotal,
    };
    this.points = new Map();
    this.overflowKeys = new Set();
    this.overflowDrops = 0;
    this.drops = 0;
    this.lost = new Map();
    this.lostTotal = 0;
    this.start = now;
    return report;
  }
}
