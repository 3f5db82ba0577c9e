/**
 * The analysis of a recording that `dropmon report` prints: one plain,
 * JSON-ready object (RecordingReport) that the text and HTML renderers and
 * the JSON output all use. Its shape is documented in src/recording/README.md
 * ("dropmon report --json"); keep it stable (add fields, never rename).
 *
 * The diagnosis is a hook: a caller that has the diagnosis engine passes
 * `diagnose`, which gets the range's drop points and counter totals and
 * returns ranked findings (core/diagnosis.ts's Finding fits ReportFinding).
 * Without it, `diagnosis` is null and the renderers say so.
 */
import type { CounterTotal, PointTotal, Recording, TimeRange } from './recording.js';
import type { Finding } from '../core/diagnosis.js';
import { OVERFLOW_REASON } from './recording.js';

/**
 * What a diagnosis engine reports per cause: a subset of core/diagnosis.ts's
 * Finding, and where it happened as far as it knows (namespace, interfaces,
 * sockets, the points and counters the summary line names).
 */
export type ReportFinding = Pick<Finding, 'rank' | 'key' | 'cause' | 'packets' | 'benign' | 'benignWhen' | 'known' | 'blindSpot' | 'evidence' | 'check' | 'fix'> &
  Partial<Pick<Finding, 'kind' | 'points' | 'counters' | 'netns' | 'netnsName' | 'container' | 'gone' | 'interfaces' | 'sockets'>>;

export interface DiagnosisInput {
  /** Drop points of the range, most drops first (up to 200). */
  readonly points: readonly PointTotal[];
  /** Counters that moved over the range (up to 200). */
  readonly counters: readonly CounterTotal[];
  /** Length of the range covered by intervals. */
  readonly seconds: number;
}

export type DiagnoseFn = (input: DiagnosisInput) => readonly ReportFinding[];

/** drop: an increment is a dropped packet; related: an error or pressure next to drops; info: traffic, levels. */
export type CounterClassifier = (name: string) => { readonly class: 'drop' | 'related' | 'info'; readonly meaning: string };

export interface ReportOptions {
  readonly range?: TimeRange;
  /** Top drop points listed (default 10). */
  readonly top?: number;
  /** Time buckets of the reasons-over-time series (default 60). */
  readonly buckets?: number;
  /** Reasons drawn separately in the series; the rest are summed as OTHER_REASONS (default 8). */
  readonly maxReasons?: number;
  /** Counters listed (default 20). */
  readonly counters?: number;
  /** Packet summaries listed (default 20). */
  readonly packets?: number;
  readonly diagnose?: DiagnoseFn;
  /**
   * With it, counters are listed drop counters first, then related ones, and
   * traffic counters (class info) only with `allCounters`.
   */
  readonly classifyCounter?: CounterClassifier;
  readonly allCounters?: boolean;
  /** Clock for generated_at (tests). */
  readonly now?: number;
}

export const OTHER_REASONS = '(other reasons)';
export const NO_REASON_LABEL = '(no reason)';
export { OVERFLOW_REASON };

export interface RecordingReport {
  readonly format: 'dropmon-report';
  readonly version: 1;
  readonly file: string;
  readonly generated_at: string;
  readonly recording: {
    readonly schema_version: number;
    readonly created: string;
    readonly dropmon_version: string;
    readonly kernel_release: string;
    readonly hostname: string;
    readonly source: string;
    readonly sessions: readonly {
      readonly started: string;
      readonly ended: string | null;
      readonly source: string;
      readonly hostname: string;
      readonly kernel_release: string;
      readonly interval_ms: number | null;
      readonly intervals_unwritten: number;
    }[];
  };
  readonly range: {
    /** As asked (null: open). */
    readonly from: string | null;
    readonly to: string | null;
    /** What the intervals in the range cover. */
    readonly first: string | null;
    readonly last: string | null;
    readonly seconds: number;
  };
  readonly totals: {
    readonly intervals: number;
    readonly drops: number;
    readonly drops_per_second: number;
    readonly overflow_drops: number;
    readonly lost_events: number;
    readonly intervals_unwritten: number;
    readonly packets_seen: number;
    readonly packets_kept: number;
  };
  readonly top_points: readonly {
    readonly rank: number;
    readonly count: number;
    /** Of all drops in the range, 0..1. */
    readonly share: number;
    readonly location: string;
    readonly symbol: string;
    readonly reason: string | null;
    readonly reason_code: number | null;
    readonly protocol: string | null;
    readonly ethertype: number;
    readonly origin: string;
    readonly trap: string | null;
    readonly trap_group: string | null;
    readonly ifindex: number | null;
    readonly netns: number | null;
    readonly intervals: number;
    readonly first: string;
    readonly last: string;
    readonly stack: readonly string[] | null;
  }[];
  /** Every reason of the range, most drops first; labels as in the series. */
  readonly reasons: readonly { readonly reason: string; readonly count: number; readonly share: number }[];
  readonly reasons_over_time: {
    readonly bucket_seconds: number;
    /** Series labels; `counts` of each bucket are in this order. */
    readonly series: readonly string[];
    readonly buckets: readonly { readonly start: string; readonly end: string; readonly total: number; readonly counts: readonly number[] }[];
  };
  readonly counters: readonly {
    readonly name: string;
    readonly scope: string;
    readonly layer: string;
    readonly delta: number;
    readonly max_rate: number;
    readonly last_value: number;
    readonly intervals: number;
    /** "drop", "related" or "info"; null when the report had no knowledge base. */
    readonly class: string | null;
    /** One line from the knowledge base; null when unknown. */
    readonly meaning: string | null;
  }[];
  readonly losses: {
    readonly total: number;
    readonly by_cause: readonly { readonly cause: string; readonly lost: number; readonly intervals: number }[];
  };
  readonly packets: readonly {
    readonly time: string | null;
    readonly symbol: string | null;
    readonly reason: string | null;
    readonly ifindex: number | null;
    readonly ifname: string | null;
    readonly orig_len: number | null;
    readonly protocol: string | null;
    readonly l4: string | null;
    readonly src: string | null;
    readonly dst: string | null;
    readonly sport: number | null;
    readonly dport: number | null;
  }[];
  /** null when no diagnosis engine was given. */
  readonly diagnosis: { readonly findings: readonly ReportFinding[] } | null;
}

const iso = (ms: number) => new Date(ms).toISOString();
const reasonLabel = (r: string) => (r === '' ? NO_REASON_LABEL : r);

export function buildReport(rec: Recording, opts: ReportOptions = {}): RecordingReport {
  const range = opts.range;
  const meta = rec.meta();
  const totals = rec.totals(range);
  const seconds = totals.firstMs !== null && totals.lastMs !== null ? (totals.lastMs - totals.firstMs) / 1000 : 0;
  const share = (n: number) => (totals.drops > 0 ? Math.round((n / totals.drops) * 10000) / 10000 : 0);

  const top = rec.topPoints(range, opts.top ?? 10);
  const series = rec.reasonsOverTime(range, { buckets: opts.buckets ?? 60 });
  const maxReasons = opts.maxReasons ?? 8;
  const drawn = series.reasons.length > maxReasons ? series.reasons.slice(0, maxReasons - 1) : series.reasons;
  const labels = drawn.map((r) => reasonLabel(r.reason));
  const folded = series.reasons.length > drawn.length;
  if (folded) labels.push(OTHER_REASONS);
  const drawnSet = new Set(drawn.map((r) => r.reason));

  let diagnosis: RecordingReport['diagnosis'] = null;
  if (opts.diagnose) {
    const findings = opts.diagnose({ points: rec.topPoints(range, 200), counters: rec.countersMoved(range, 200), seconds });
    diagnosis = { findings };
  }
  const lossRows = rec.losses(range);

  return {
    format: 'dropmon-report',
    version: 1,
    file: rec.file,
    generated_at: iso(opts.now ?? Date.now()),
    recording: {
      schema_version: meta.schemaVersion,
      created: iso(meta.createdMs),
      dropmon_version: meta.dropmonVersion,
      kernel_release: meta.kernelRelease,
      hostname: meta.hostname,
      source: meta.source,
      sessions: meta.sessions.map((s) => ({
        started: iso(s.startedMs),
        ended: s.endedMs !== null ? iso(s.endedMs) : null,
        source: s.source,
        hostname: s.hostname,
        kernel_release: s.kernelRelease,
        interval_ms: s.intervalMs,
        intervals_unwritten: s.intervalsUnwritten,
      })),
    },
    range: {
      from: range?.from !== undefined ? iso(range.from) : null,
      to: range?.to !== undefined ? iso(range.to) : null,
      first: totals.firstMs !== null ? iso(totals.firstMs) : null,
      last: totals.lastMs !== null ? iso(totals.lastMs) : null,
      seconds,
    },
    totals: {
      intervals: totals.intervals,
      drops: totals.drops,
      drops_per_second: seconds > 0 ? Math.round((totals.drops / seconds) * 100) / 100 : 0,
      overflow_drops: totals.overflowDrops,
      lost_events: totals.lost,
      intervals_unwritten: totals.intervalsUnwritten,
      packets_seen: totals.packetsSeen,
      packets_kept: totals.packetsKept,
    },
    top_points: top.map((p, i) => ({
      rank: i + 1,
      count: p.count,
      share: share(p.count),
      location: p.location,
      symbol: p.symbol,
      reason: p.reason || null,
      reason_code: p.reasonCode,
      protocol: p.protocol || null,
      ethertype: p.ethertype,
      origin: p.origin,
      trap: p.trap,
      trap_group: p.trapGroup,
      ifindex: p.ifindex,
      netns: p.netns,
      intervals: p.intervals,
      first: iso(p.firstMs),
      last: iso(p.lastMs),
      stack: p.stack,
    })),
    reasons: series.reasons.map((r) => ({ reason: reasonLabel(r.reason), count: r.count, share: share(r.count) })),
    reasons_over_time: {
      bucket_seconds: series.bucketMs / 1000,
      series: labels,
      buckets: series.buckets.map((b) => {
        const counts = drawn.map((r) => b.byReason[r.reason] ?? 0);
        if (folded) counts.push(Object.entries(b.byReason).reduce((s, [r, n]) => (drawnSet.has(r) ? s : s + n), 0));
        return { start: iso(b.startMs), end: iso(b.endMs), total: b.total, counts };
      }),
    },
    counters: listCounters(rec, range, opts),
    losses: { total: lossRows.reduce((s, l) => s + l.lost, 0), by_cause: lossRows.map((l) => ({ cause: l.cause, lost: l.lost, intervals: l.intervals })) },
    packets: rec.packets(range, opts.packets ?? 20).map((p) => ({
      time: p.timeMs !== null ? iso(p.timeMs) : null,
      symbol: p.symbol,
      reason: p.reason || null,
      ifindex: p.ifindex,
      ifname: p.ifname,
      orig_len: p.origLen,
      protocol: p.protocol || null,
      l4: p.l4,
      src: p.src,
      dst: p.dst,
      sport: p.sport,
      dport: p.dport,
    })),
    diagnosis,
  };
}

const CLASS_ORDER: Record<string, number> = { drop: 0, related: 1, info: 2 };

function listCounters(rec: Recording, range: TimeRange | undefined, opts: ReportOptions): RecordingReport['counters'] {
  const limit = opts.counters ?? 20;
  const classify = opts.classifyCounter;
  const rows = rec.countersMoved(range, classify ? 1000 : limit).map((c) => {
    const m = classify?.(c.name);
    return {
      name: c.name,
      scope: c.scope,
      layer: c.layer,
      delta: c.delta,
      max_rate: c.maxRate,
      last_value: c.lastValue,
      intervals: c.intervals,
      class: m?.class ?? null,
      meaning: m?.meaning || null,
    };
  });
  if (!classify) return rows;
  // Stable sort: within a class, the order of the query (largest delta first) stays.
  return rows
    .filter((c) => opts.allCounters || c.class !== 'info')
    .sort((a, b) => CLASS_ORDER[a.class ?? 'info'] - CLASS_ORDER[b.class ?? 'info'])
    .slice(0, limit);
}
