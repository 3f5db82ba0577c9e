/**
 * The state behind `dropmon top`: every drop point seen since the start (or
 * the last clear) with its total, its rate in the last interval and its
 * history over the last minute; the counters that moved; and the operator's
 * choices (sort, grouping, filter, benign drops shown or hidden, pause).
 * Pure data: no terminal, no clock of its own, testable on fixed intervals.
 */
import type { LiveCounter, LiveInterval, LivePoint } from '../../core/live.js';

export type SortKey = 'rate' | 'total' | 'name';
export const SORT_KEYS: readonly SortKey[] = ['rate', 'total', 'name'];
export type GroupKey = 'point' | 'reason' | 'function' | 'netns' | 'interface';
export const GROUP_KEYS: readonly GroupKey[] = ['point', 'reason', 'function', 'netns', 'interface'];

/** Points remembered at most; the idlest go first (a storm over many locations keeps memory flat). */
const MAX_POINTS = 5000;
/** Intervals kept while paused; older ones are applied at once, so totals stay exact. */
const MAX_PAUSED = 600;

/** One drop point over time. */
export interface PointStat {
  readonly key: string;
  /** The point as last reported. */
  point: LivePoint;
  total: number;
  /** Drops per second in the last interval (0 when it had none). */
  rate: number;
  firstSeen: number;
  lastSeen: number;
  /** Counts per interval, a ring indexed by the model's tick. */
  readonly history: number[];
  /** The last tick written into `history`. */
  lastTick: number;
}

/** A line of the table: one point, or the points of a group. */
export interface Row {
  readonly key: string;
  readonly reason: string;
  readonly function: string;
  readonly netns: string;
  readonly container: string;
  readonly ifname: string;
  readonly protocol: string;
  readonly rate: number;
  readonly total: number;
  /** Drops per second per interval over the last minute, oldest first. */
  readonly spark: readonly number[];
  /** Usually benign (every member, for a group). */
  readonly benign: boolean;
  /** Seen in the latest interval. */
  readonly active: boolean;
  readonly members: readonly PointStat[];
}

export function pointKey(p: LivePoint): string {
  return [p.reason, p.location || p.function, p.protocol, p.origin, p.netns, p.ifname].join('\u0000');
}

export class TopModel {
  readonly points = new Map<string, PointStat>();
  /** Counters that moved in the latest interval, drop counters and blind spots first. */
  counters: readonly LiveCounter[] | undefined;
  /** Blind spots and moves summed since the start, by counter instance. */
  readonly counterTotals = new Map<string, { counter: LiveCounter; total: number }>();
  correlated: LiveInterval['correlated'];
  /** Whole-host figures. */
  totalDrops = 0;
  totalLost = 0;
  intervals = 0;
  lastDrops = 0;
  lastSeconds = 0;
  lastLost = 0;
  lastLostByCause: Readonly<Record<string, number>> = {};
  lastOverflow = { drops: 0, points: 0 };
  lastEnd = 0;
  sort: SortKey = 'rate';
  group: GroupKey = 'point';
  filter = '';
  hideBenign = false;
  private paused_ = false;
  private readonly waiting: LiveInterval[] = [];
  private tick = 0;
  /** Seconds of each interval, ring like a point's history. */
  private readonly seconds: number[];

  constructor(
    /** Intervals in the sparkline's window (a minute of them). */
    readonly historyLength = 60,
  ) {
    this.seconds = new Array<number>(historyLength).fill(0);
  }

  get paused(): boolean {
    return this.paused_;
  }

  get waitingIntervals(): number {
    return this.waiting.length;
  }

  /** Pause: intervals wait (the screen holds still); resume applies them in order. */
  setPaused(on: boolean): void {
    this.paused_ = on;
    if (!on) for (const r of this.waiting.splice(0)) this.apply(r);
  }

  add(r: LiveInterval): void {
    if (this.paused_) {
      this.waiting.push(r);
      if (this.waiting.length > MAX_PAUSED) this.apply(this.waiting.shift()!);
      return;
    }
    this.apply(r);
  }

  /** Forget every total and history (the operator's `c`); choices stay. */
  clear(): void {
    this.points.clear();
    this.counterTotals.clear();
    this.counters = undefined;
    this.correlated = undefined;
    this.totalDrops = 0;
    this.totalLost = 0;
    this.intervals = 0;
    this.lastDrops = 0;
    this.lastLost = 0;
    this.lastLostByCause = {};
    this.lastOverflow = { drops: 0, points: 0 };
    this.waiting.length = 0;
  }

  private apply(r: LiveInterval): void {
    const seconds = Math.max((r.end - r.start) / 1000, 0.001);
    const t = ++this.tick;
    const n = this.historyLength;
    this.seconds[t % n] = seconds;
    this.intervals++;
    this.totalDrops += r.drops;
    this.totalLost += r.lost;
    this.lastDrops = r.drops;
    this.lastSeconds = seconds;
    this.lastLost = r.lost;
    this.lastLostByCause = r.lostByCause;
    this.lastOverflow = r.overflow;
    this.lastEnd = r.end;
    for (const s of this.points.values()) if (s.lastTick < t) s.rate = 0;
    for (const p of r.points) {
      if (p.count <= 0) continue;
      const key = pointKey(p);
      let s = this.points.get(key);
      if (!s) {
        if (this.points.size >= MAX_POINTS) this.evictIdlest();
        s = { key, point: p, total: 0, rate: 0, firstSeen: r.end, lastSeen: r.end, history: new Array<number>(n).fill(0), lastTick: t - 1 };
        this.points.set(key, s);
      }
      // Slots of the intervals this point missed are zero.
      if (s.lastTick < t) {
        for (let k = Math.max(s.lastTick + 1, t - n + 1); k <= t; k++) s.history[k % n] = 0;
        s.lastTick = t;
      }
      s.history[t % n] += p.count;
      s.total += p.count;
      s.rate = s.history[t % n] / seconds;
      s.point = p;
      s.lastSeen = r.end;
    }
    if (r.counters) {
      this.counters = [...r.counters].sort((a, b) => Number(!!b.blindSpot) - Number(!!a.blindSpot) || Number(b.class === 'drop') - Number(a.class === 'drop') || b.delta - a.delta);
      for (const c of r.counters) {
        const k = c.scope ? `${c.name}@${c.scope}` : c.name;
        const e = this.counterTotals.get(k);
        if (e) {
          e.counter = c;
          e.total += c.delta;
        } else if (this.counterTotals.size < MAX_POINTS) this.counterTotals.set(k, { counter: c, total: c.delta });
      }
    } else this.counters = undefined;
    this.correlated = r.correlated;
  }

  private evictIdlest(): void {
    let idlest: PointStat | undefined;
    for (const s of this.points.values()) if (!idlest || s.lastSeen < idlest.lastSeen || (s.lastSeen === idlest.lastSeen && s.total < idlest.total)) idlest = s;
    if (idlest) this.points.delete(idlest.key);
  }

  /** Drops per second per interval of a point over the window, oldest first. */
  spark(s: PointStat): number[] {
    const n = this.historyLength;
    const out: number[] = [];
    for (let t = this.tick - n + 1; t <= this.tick; t++) {
      if (t < 1) {
        out.push(0);
        continue;
      }
      const secs = this.seconds[t % n] || 1;
      out.push(t > s.lastTick || t <= s.lastTick - n ? 0 : s.history[t % n] / secs);
    }
    return out;
  }

  /** Namespaces with drops in the latest interval ("" excluded: sources that do not attribute). */
  activeNamespaces(): number {
    const seen = new Set<string>();
    for (const s of this.points.values()) if (s.lastTick === this.tick && s.point.netns) seen.add(s.point.netns);
    return seen.size;
  }

  /** The table's rows under the current grouping, filter, benign choice and sort. */
  rows(): Row[] {
    const f = this.filter.trim().toLowerCase();
    const groups = new Map<string, PointStat[]>();
    for (const s of this.points.values()) {
      if (this.hideBenign && s.point.benign === 'usually') continue;
      if (f && !matchesFilter(s.point, f)) continue;
      const k = groupValue(s.point, this.group, s.key);
      const g = groups.get(k);
      if (g) g.push(s);
      else groups.set(k, [s]);
    }
    const rows: Row[] = [];
    for (const [key, members] of groups) rows.push(this.row(key, members));
    const byName = (a: Row, b: Row) => nameOf(a, this.group).localeCompare(nameOf(b, this.group)) || a.key.localeCompare(b.key);
    rows.sort(
      this.sort === 'rate'
        ? (a, b) => b.rate - a.rate || b.total - a.total || byName(a, b)
        : this.sort === 'total'
          ? (a, b) => b.total - a.total || b.rate - a.rate || byName(a, b)
          : byName,
    );
    return rows;
  }

  private row(key: string, members: PointStat[]): Row {
    const one = <K extends keyof LivePoint>(k: K): string => {
      const vs = new Set(members.map((m) => String(m.point[k])));
      return vs.size === 1 ? [...vs][0] : `(${vs.size})`;
    };
    let spark: number[] | undefined;
    for (const m of members) {
      const s = this.spark(m);
      if (!spark) spark = s;
      else for (let i = 0; i < s.length; i++) spark[i] += s[i];
    }
    return {
      key,
      reason: one('reason'),
      function: one('function'),
      netns: one('netns'),
      container: one('container'),
      ifname: one('ifname'),
      protocol: one('protocol'),
      rate: members.reduce((n, m) => n + m.rate, 0),
      total: members.reduce((n, m) => n + m.total, 0),
      spark: spark ?? [],
      benign: members.every((m) => m.point.benign === 'usually'),
      active: members.some((m) => m.lastTick === this.tick),
      members,
    };
  }
}

function groupValue(p: LivePoint, g: GroupKey, key: string): string {
  switch (g) {
    case 'point':
      return key;
    case 'reason':
      return p.reason;
    case 'function':
      return p.function;
    case 'netns':
      return `${p.netns}\u0000${p.container}`;
    case 'interface':
      return `${p.netns}\u0000${p.ifname}`;
  }
}

function nameOf(r: Row, g: GroupKey): string {
  switch (g) {
    case 'function':
      return r.function;
    case 'netns':
      return r.netns;
    case 'interface':
      return r.ifname;
    default:
      return r.reason || '~';
  }
}

function matchesFilter(p: LivePoint, f: string): boolean {
  for (const v of [p.reason, p.function, p.symbol, p.netns, p.container, p.ifname, p.protocol, p.location])
    if (v.toLowerCase().includes(f)) return true;
  return false;
}
