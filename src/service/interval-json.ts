/**
 * An interval as the API shows it (SSE `event: interval`, GET
 * /api/v1/intervals): every drop point with its symbol, reason, protocol and
 * count, the reason's one-line explanation and whether it is usually benign,
 * the events lost, the counters that moved, and their correlation with the
 * points. Built once per interval and shared by every client, so its cost
 * does not grow with the number of dashboards open.
 */
import type { Correlation, DropPoint, IntervalReport } from '../core/interval.js';
import type { KnowledgeView } from '../core/knowledge-view.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';
import { describePoint } from '../outputs/describe.js';
import { selectDeltas } from '../outputs/counters.js';

export interface PointJson {
  readonly symbol: string;
  readonly function: string | null;
  readonly module: string | null;
  readonly location: string;
  /** Reason name; "" when the kernel gave none. */
  readonly reason: string;
  readonly protocol: string;
  readonly origin: string;
  readonly count: number;
  /** Drops per second over the interval. */
  readonly rate: number;
  /** The reason's one-line explanation from the knowledge base; "" when unknown. */
  readonly summary: string;
  /** false when the reason is not in this version's knowledge base (the summary says so). */
  readonly known?: boolean;
  readonly benign: 'no' | 'usually' | 'sometimes';
  readonly trap?: string;
  readonly ifindex?: number;
  /** Attribution (BPF source): interface name, namespace inode, its name ("init" for the initial one), container. */
  readonly ifname?: string;
  readonly netns?: number;
  readonly netnsName?: string;
  readonly container?: string;
}

export interface CounterMovedJson {
  readonly name: string;
  readonly scope: string;
  readonly layer: string;
  readonly delta: number;
  readonly rate: number;
  readonly value: number;
  readonly class: string;
  readonly meaning: string;
}

export interface IntervalJson {
  readonly seq: number;
  readonly start: number;
  readonly end: number;
  readonly durationMs: number;
  readonly drops: number;
  readonly lost: number;
  readonly lostByCause: Readonly<Record<string, number>>;
  readonly points: readonly PointJson[];
  readonly overflow: { readonly drops: number; readonly points: number };
  /** Drop-related counters that moved; absent when counters are off. */
  readonly counters?: readonly CounterMovedJson[];
  readonly correlation?: {
    readonly groups: readonly { reasons: readonly string[]; counters: readonly string[]; drops: number }[];
    readonly blindSpots: readonly { counter: string; scope: string; delta: number; why: string }[];
  };
}

/** Counters listed per interval at most (the largest moves). */
const MAX_COUNTERS = 100;

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function pointJson(p: DropPoint, seconds: number, symbols: Symbolizer | undefined, attribution: Attribution | undefined, kb: KnowledgeBase): PointJson {
  const d = describePoint(p, symbols, attribution);
  const entry = d.reason ? kb.explainReason(d.reason, d.function ?? undefined) : undefined;
  return {
    symbol: d.symbol,
    function: d.function,
    module: d.module,
    location: d.address,
    reason: d.reason,
    protocol: d.protocol,
    origin: p.origin,
    count: p.count,
    rate: seconds > 0 ? round(p.count / seconds) : p.count,
    summary: entry?.summary ?? '',
    ...(entry ? { known: entry.known !== false } : {}),
    benign: d.reason ? kb.benign(d.reason, d.function ?? undefined) : 'no',
    ...(p.trap ? { trap: p.trap.group ? `${p.trap.group}/${p.trap.name}` : p.trap.name } : {}),
    ...(p.ifindex !== undefined ? { ifindex: p.ifindex } : {}),
    ...(d.ifname !== null ? { ifname: d.ifname } : {}),
    ...(d.netns !== null ? { netns: d.netns, netnsName: d.initNetns ? 'init' : (d.netnsName ?? String(d.netns)) } : {}),
    ...(d.container !== null ? { container: d.container } : {}),
  };
}

function correlationJson(c: Correlation): IntervalJson['correlation'] {
  return {
    groups: c.groups.map((g) => ({ reasons: g.reasons, counters: g.counters.map((d) => (d.scope ? `${d.name}@${d.scope}` : d.name)), drops: g.drops })),
    blindSpots: c.blindSpots.map((b) => ({ counter: b.counter.name, scope: b.counter.scope, delta: b.counter.delta, why: b.why })),
  };
}

/** `view` answers the per-counter questions (a cached view of `kb`, see knowledge/views.ts). */
export function intervalJson(r: IntervalReport, symbols: Symbolizer | undefined, attribution: Attribution | undefined, kb: KnowledgeBase, view: KnowledgeView = kb): IntervalJson {
  const seconds = (r.end - r.start) / 1000;
  const counters = r.counters
    ? selectDeltas(r.counters, view, false)
        .sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta))
        .slice(0, MAX_COUNTERS)
        .map((c) => ({ name: c.name, scope: c.scope, layer: c.layer, delta: c.delta, rate: round(c.rate), value: c.value, class: c.class, meaning: c.meaning }))
    : undefined;
  return {
    seq: r.seq,
    start: r.start,
    end: r.end,
    durationMs: r.end - r.start,
    drops: r.drops,
    lost: r.lostTotal,
    lostByCause: Object.fromEntries(r.lost),
    points: r.points.map((p) => pointJson(p, seconds, symbols, attribution, kb)),
    overflow: { drops: r.overflow.drops, points: r.overflow.points },
    ...(counters ? { counters } : {}),
    ...(r.correlation ? { correlation: correlationJson(r.correlation) } : {}),
  };
}
