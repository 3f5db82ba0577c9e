/**
 * Questions over a time range, for the API: the top drop points, drops by
 * reason over time, and the diagnosis. They are answered from the recording
 * when there is one (it reaches back as far as retention allows), else from
 * the intervals kept in memory.
 *
 * The recording is opened read-only for each question and closed at once:
 * it is cheap, works while the recorder writes (WAL), and holds no file
 * handle across a reload that changes the file.
 */
import { existsSync } from 'node:fs';
import type { IntervalReport } from '../core/interval.js';
import { Diagnoser } from '../core/diagnosis.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import { formatSymbol, type Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';
import { findingsJson } from '../outputs/diagnosis.js';
import { describePoint } from '../outputs/describe.js';
import { diagnoseRecorded } from '../recording/diagnosis.js';
import { OVERFLOW_REASON, openRecording, type PointTotal, type Recording, type TimeRange } from '../recording/recording.js';

export interface RangeContext {
  /** The recording file, "" when recording is off. */
  readonly file: string;
  readonly reports: readonly IntervalReport[];
  readonly kb: KnowledgeBase;
  readonly symbols: Symbolizer;
  /** Names the namespaces and interfaces of the diagnosis' findings. */
  readonly attribution?: Attribution;
}

export interface PointsAnswer {
  readonly from: number;
  readonly to: number;
  readonly source: 'recording' | 'memory';
  readonly drops: number;
  readonly points: readonly (PointTotalJson & { summary: string; benign: string })[];
}

type PointTotalJson = Pick<PointTotal, 'location' | 'symbol' | 'reason' | 'protocol' | 'origin' | 'count' | 'intervals' | 'firstMs' | 'lastMs' | 'trap' | 'ifindex'>;

export interface SeriesAnswer {
  readonly from: number;
  readonly to: number;
  readonly source: 'recording' | 'memory';
  readonly bucketMs: number;
  readonly buckets: readonly { start: number; end: number; total: number; reasons: Record<string, number> }[];
  readonly reasons: readonly { reason: string; count: number }[];
}

function withRecording<T>(file: string, fn: (rec: Recording) => T): T | undefined {
  if (!file || !existsSync(file)) return undefined;
  const rec = openRecording(file);
  try {
    return fn(rec);
  } finally {
    rec.close();
  }
}

function inRange(r: IntervalReport, range: Required<TimeRange>): boolean {
  return r.end >= range.from && r.end <= range.to;
}

function functionOf(symbol: string): string | undefined {
  const m = /^([\w.$]+)\+0x/.exec(symbol);
  return m?.[1];
}

function explainPoint<T extends { reason: string; symbol: string }>(kb: KnowledgeBase, p: T): T & { summary: string; benign: string; known?: boolean } {
  const e = p.reason ? kb.explainReason(p.reason, functionOf(p.symbol)) : undefined;
  return { ...p, summary: e?.summary ?? '', ...(e ? { known: e.known !== false } : {}), benign: p.reason ? kb.benign(p.reason, functionOf(p.symbol)) : 'no' };
}

export function topPoints(ctx: RangeContext, range: Required<TimeRange>, top: number): PointsAnswer {
  const fromRec = withRecording(ctx.file, (rec) => ({ points: rec.topPoints(range, top), drops: rec.totals(range).drops }));
  if (fromRec) {
    return {
      ...range,
      source: 'recording',
      drops: fromRec.drops,
      points: fromRec.points.map((p) =>
        explainPoint(ctx.kb, {
          location: p.location,
          symbol: p.symbol,
          reason: p.reason,
          protocol: p.protocol,
          origin: p.origin,
          trap: p.trap,
          ifindex: p.ifindex,
          count: p.count,
          intervals: p.intervals,
          firstMs: p.firstMs,
          lastMs: p.lastMs,
        }),
      ),
    };
  }
  const acc = new Map<string, PointTotalJson & { count: number; intervals: number; firstMs: number; lastMs: number }>();
  let drops = 0;
  for (const r of ctx.reports) {
    if (!inRange(r, range)) continue;
    drops += r.drops;
    for (const p of r.points) {
      const d = describePoint(p, ctx.symbols, undefined); // the totals keep numbers, not namespace names
      const key = `${d.address}|${d.reason}|${d.protocol}|${p.origin}|${p.trap?.name ?? ''}|${p.ifindex ?? ''}`;
      const a = acc.get(key);
      if (a) {
        a.count += p.count;
        a.intervals++;
        a.lastMs = r.end;
      } else
        acc.set(key, {
          location: d.address,
          symbol: d.symbol,
          reason: d.reason,
          protocol: d.protocol,
          origin: p.origin,
          trap: p.trap?.name ?? null,
          ifindex: p.ifindex ?? null,
          count: p.count,
          intervals: 1,
          firstMs: r.end,
          lastMs: r.end,
        });
    }
  }
  const points = [...acc.values()].sort((a, b) => b.count - a.count).slice(0, top).map((p) => explainPoint(ctx.kb, p));
  return { ...range, source: 'memory', drops, points };
}

export function reasonSeries(ctx: RangeContext, range: Required<TimeRange>, buckets: number): SeriesAnswer {
  const fromRec = withRecording(ctx.file, (rec) => rec.reasonsOverTime(range, { buckets }));
  if (fromRec) {
    return {
      ...range,
      source: 'recording',
      bucketMs: fromRec.bucketMs,
      buckets: fromRec.buckets.map((b) => ({ start: b.startMs, end: b.endMs, total: b.total, reasons: { ...b.byReason } })),
      reasons: fromRec.reasons,
    };
  }
  const rs = ctx.reports.filter((r) => inRange(r, range));
  if (rs.length === 0) return { ...range, source: 'memory', bucketMs: 1000, buckets: [], reasons: [] };
  const first = rs[0].start;
  const last = rs[rs.length - 1].end;
  const typical = Math.max(1, rs[0].end - rs[0].start);
  const bucketMs = Math.max(typical, Math.ceil((last - first) / buckets));
  const n = Math.max(1, Math.ceil((last - first) / bucketMs));
  const out = Array.from({ length: n }, (_, k) => ({ start: first + k * bucketMs, end: first + (k + 1) * bucketMs, total: 0, reasons: {} as Record<string, number> }));
  const totals = new Map<string, number>();
  const add = (end: number, reason: string, count: number) => {
    const b = out[Math.min(n - 1, Math.max(0, Math.floor((end - 1 - first) / bucketMs)))];
    b.reasons[reason] = (b.reasons[reason] ?? 0) + count;
    b.total += count;
    totals.set(reason, (totals.get(reason) ?? 0) + count);
  };
  for (const r of rs) {
    for (const p of r.points) add(r.end, p.reasonName, p.count);
    if (r.overflow.drops) add(r.end, OVERFLOW_REASON, r.overflow.drops);
  }
  return {
    ...range,
    source: 'memory',
    bucketMs,
    buckets: out,
    reasons: [...totals].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
  };
}

export function diagnosis(ctx: RangeContext, range: Required<TimeRange>): Record<string, unknown> {
  const fromRec = withRecording(ctx.file, (rec) => ({
    points: rec.topPoints(range, 200),
    counters: rec.countersMoved(range, 200),
    totals: rec.totals(range),
  }));
  if (fromRec) {
    const t = fromRec.totals;
    const seconds = t.firstMs !== null && t.lastMs !== null ? (t.lastMs - t.firstMs) / 1000 : 0;
    const findings = diagnoseRecorded(ctx.kb, { points: fromRec.points, counters: fromRec.counters, seconds }, ctx.attribution);
    return { ...range, source: 'recording', ...findingsJson(findings, { seconds, intervals: t.intervals, drops: t.drops, lost: t.lost, notRead: [] }) };
  }
  const d = new Diagnoser(ctx.kb, (a) => formatSymbol(ctx.symbols.lookup(a), a, false), false, ctx.attribution);
  let drops = 0;
  let lost = 0;
  let intervals = 0;
  let seconds = 0;
  for (const r of ctx.reports) {
    if (!inRange(r, range)) continue;
    intervals++;
    drops += r.drops;
    lost += r.lostTotal;
    seconds += (r.end - r.start) / 1000;
    d.add(r.points, r.counters ?? [], (r.end - r.start) / 1000);
  }
  return { ...range, source: 'memory', ...findingsJson(d.findings(), { seconds, intervals, drops, lost, notRead: [] }) };
}

