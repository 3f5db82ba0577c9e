/**
 * Questions over a time range, for the API: the top drop points, drops by
 * reason over time, and the diagnosis. They are answered from the recording
 * when there is one (it reaches back as far as retention allows), else from
 * the intervals kept in memory.
 *
 * The recording is read on a worker thread (query-pool.ts), never here: a
 * query over a large file takes seconds, and this thread closes the
 * intervals. Only the SQL rows cross; the words (explanations, findings) are
 * added here, where the knowledge base is. The intervals in memory are few
 * and answered here directly.
 *
 * Every answer keeps to a budget (QueryBudget): a longer range is cut to its
 * newest part and rows are capped, and `capped` says what was cut. A
 * recording of a newer dropmon is not read: the answer comes from memory and
 * `why` says so.
 */
import { accessSync, constants } from 'node:fs';
import type { IntervalReport } from '../core/interval.js';
import { Diagnoser } from '../core/diagnosis.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import { formatSymbol, type Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';
import { findingsJson } from '../outputs/diagnosis.js';
import { describePoint } from '../outputs/describe.js';
import { diagnoseRecorded } from '../recording/diagnosis.js';
import { OVERFLOW_REASON, type PointTotal, type TimeRange } from '../recording/recording.js';
import type { QueryConfig } from './config.js';
import { QueryFailedError, type QueryPool } from './query-pool.js';
import type { RecordingAnswer, RecordingQuery } from './recording-queries.js';

/** What one answer may hold (the service config's `queries`). */
export type QueryBudget = Pick<QueryConfig, 'maxRangeMs' | 'maxPoints' | 'maxBuckets'>;

export interface RangeContext {
  /** The recording file, "" when recording is off. */
  readonly file: string;
  readonly reports: readonly IntervalReport[];
  readonly kb: KnowledgeBase;
  readonly symbols: Symbolizer;
  /** Names the namespaces and interfaces of the diagnosis' findings. */
  readonly attribution?: Attribution;
  /** Reads the recording off this thread. */
  readonly pool: Pick<QueryPool, 'ask'>;
  readonly budget: QueryBudget;
}

/** What an answer left out to keep to its budget; absent when nothing was. */
export interface Capped {
  /** The range asked for was longer than maxRange: it starts `maxRangeMs` before its end instead of at `askedFrom`. */
  range?: { askedFrom: number; maxRangeMs: number };
  /** More points asked for (top) than maxPoints. */
  top?: { asked: number; max: number };
  /** More buckets asked for than maxBuckets. */
  buckets?: { asked: number; max: number };
  /** The diagnosis weighed only the `max` points and counters with the most drops (or movement). */
  points?: { max: number };
  counters?: { max: number };
}

interface Answered {
  readonly from: number;
  readonly to: number;
  readonly source: 'recording' | 'memory';
  /** Why a recording configured was not read (a newer dropmon's). */
  readonly why?: string;
  readonly capped?: Capped;
}

export interface PointsAnswer extends Answered {
  readonly drops: number;
  readonly points: readonly (PointTotalJson & { summary: string; benign: string })[];
}

type PointTotalJson = Pick<PointTotal, 'location' | 'symbol' | 'reason' | 'protocol' | 'origin' | 'count' | 'intervals' | 'firstMs' | 'lastMs' | 'trap' | 'ifindex'>;

export interface SeriesAnswer extends Answered {
  readonly bucketMs: number;
  readonly buckets: readonly { start: number; end: number; total: number; reasons: Record<string, number> }[];
  readonly reasons: readonly { reason: string; count: number }[];
}

/** Points and counters the diagnosis of a recording weighs, the most drops first. */
const DIAGNOSIS_ROWS = 200;

/** The range within budget, and what was cut. */
function withinBudget(range: Required<TimeRange>, budget: QueryBudget, capped: Capped): Required<TimeRange> {
  if (range.to - range.from <= budget.maxRangeMs) return range;
  capped.range = { askedFrom: range.from, maxRangeMs: budget.maxRangeMs };
  return { from: range.to - budget.maxRangeMs, to: range.to };
}

function rowsWithinBudget(what: 'top' | 'buckets', asked: number, max: number, capped: Capped): number {
  if (asked <= max) return asked;
  capped[what] = { asked, max };
  return max;
}

function cappedPart(capped: Capped): { capped?: Capped } {
  return Object.keys(capped).length ? { capped } : {};
}

type FromRecording<Q extends RecordingQuery> = { rows: RecordingAnswer<Q> } | { rows?: undefined; why?: string };

/**
 * The recording's answer to `query`, or none (no recording yet, or one this
 * dropmon does not read: `why`). Other failures are thrown (query-pool.ts's
 * errors), for the API to answer with its status.
 */
async function fromRecording<Q extends RecordingQuery>(ctx: RangeContext, query: Q): Promise<FromRecording<Q>> {
  if (!ctx.file) return {};
  const access = canRead(ctx.file);
  if (access === 'missing') return {};
  if (access === 'denied') {
    return { why: `this process (the API's, without root) may not read ${ctx.file}: answered from the intervals in memory. The service shares its recording with the API's group; a folder closed to that group keeps it out` };
  }
  try {
    return { rows: await ctx.pool.ask(ctx.file, query) };
  } catch (err) {
    if (err instanceof QueryFailedError && err.failure.fault === 'missing') return {};
    if (err instanceof QueryFailedError && err.failure.fault === 'newer') return { why: `${err.failure.message}: answered from the intervals in memory` };
    throw err;
  }
}

/** Whether this process may read `file`: the API process runs as another user than the recorder. */
function canRead(file: string): 'yes' | 'missing' | 'denied' {
  try {
    accessSync(file, constants.R_OK);
    return 'yes';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'denied';
  }
}

function memorySource(why: string | undefined): { source: 'memory'; why?: string } {
  return why ? { source: 'memory', why } : { source: 'memory' };
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

export async function topPoints(ctx: RangeContext, asked: Required<TimeRange>, askedTop: number): Promise<PointsAnswer> {
  const capped: Capped = {};
  const range = withinBudget(asked, ctx.budget, capped);
  const top = rowsWithinBudget('top', askedTop, ctx.budget.maxPoints, capped);
  const fromRec = await fromRecording(ctx, { kind: 'points', range, top });
  if (fromRec.rows) {
    return {
      ...range,
      source: 'recording',
      ...cappedPart(capped),
      drops: fromRec.rows.drops,
      points: fromRec.rows.points.map((p) =>
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
  return { ...range, ...memorySource(fromRec.why), ...cappedPart(capped), drops, points };
}

export async function reasonSeries(ctx: RangeContext, asked: Required<TimeRange>, askedBuckets: number): Promise<SeriesAnswer> {
  const capped: Capped = {};
  const range = withinBudget(asked, ctx.budget, capped);
  const buckets = rowsWithinBudget('buckets', askedBuckets, ctx.budget.maxBuckets, capped);
  const fromRec = await fromRecording(ctx, { kind: 'series', range, buckets });
  if (fromRec.rows) {
    const series = fromRec.rows;
    return {
      ...range,
      source: 'recording',
      ...cappedPart(capped),
      bucketMs: series.bucketMs,
      buckets: series.buckets.map((b) => ({ start: b.startMs, end: b.endMs, total: b.total, reasons: { ...b.byReason } })),
      reasons: series.reasons,
    };
  }
  const memory = { ...memorySource(fromRec.why), ...cappedPart(capped) };
  const rs = ctx.reports.filter((r) => inRange(r, range));
  if (rs.length === 0) return { ...range, ...memory, bucketMs: 1000, buckets: [], reasons: [] };
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
    ...memory,
    bucketMs,
    buckets: out,
    reasons: [...totals].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
  };
}

export async function diagnosis(ctx: RangeContext, asked: Required<TimeRange>): Promise<Record<string, unknown>> {
  const capped: Capped = {};
  const range = withinBudget(asked, ctx.budget, capped);
  // One row more than weighed tells whether there were more.
  const fromRec = await fromRecording(ctx, { kind: 'diagnosis', range, rows: DIAGNOSIS_ROWS + 1 });
  if (fromRec.rows) {
    const { totals: t, points, counters } = fromRec.rows;
    if (points.length > DIAGNOSIS_ROWS) capped.points = { max: DIAGNOSIS_ROWS };
    if (counters.length > DIAGNOSIS_ROWS) capped.counters = { max: DIAGNOSIS_ROWS };
    const seconds = t.firstMs !== null && t.lastMs !== null ? (t.lastMs - t.firstMs) / 1000 : 0;
    const findings = diagnoseRecorded(ctx.kb, { points: points.slice(0, DIAGNOSIS_ROWS), counters: counters.slice(0, DIAGNOSIS_ROWS), seconds }, ctx.attribution);
    return { ...range, source: 'recording', ...cappedPart(capped), ...findingsJson(findings, { seconds, intervals: t.intervals, drops: t.drops, lost: t.lost, notRead: [] }) };
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
  return { ...range, ...memorySource(fromRec.why), ...cappedPart(capped), ...findingsJson(d.findings(), { seconds, intervals, drops, lost, notRead: [] }) };
}

