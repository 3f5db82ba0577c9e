/**
 * Reading a recording: the queries behind `dropmon report` and the service's
 * HTTP API. Read-only; safe while a recorder writes the same file (WAL).
 *
 * A recording is a file from anywhere, so before any query of its tables the
 * file is opened read-only with `query_only` and without trusting functions
 * in its schema, and it must hold exactly the tables and indexes dropmon
 * writes: a view, a trigger or a table of another shape is refused (a
 * recursive view in place of a table would hang every query). better-sqlite3
 * has no progress handler to stop a query that runs too long; what remains
 * are dropmon's own queries over its own tables, bounded by the file's size.
 *
 * Every query takes a time range (ms since the epoch) and returns plain
 * objects. A range holds the intervals that ended after `from` and at or
 * before `to`; either end may be left out.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { protocolName } from '../core/drop.js';
import { checkSchema, checkSchemaObjects, describeOpenError, RecordingError, type PointRow } from './schema.js';

export interface TimeRange {
  readonly from?: number;
  readonly to?: number;
}

export interface SessionInfo {
  readonly id: number;
  readonly startedMs: number;
  readonly endedMs: number | null;
  readonly source: string;
  readonly dropmonVersion: string;
  readonly kernelRelease: string;
  readonly hostname: string;
  readonly intervalMs: number | null;
  readonly intervalsUnwritten: number;
}

export interface RecordingMeta {
  readonly schemaVersion: number;
  readonly createdMs: number;
  readonly dropmonVersion: string;
  readonly kernelRelease: string;
  readonly hostname: string;
  readonly source: string;
  readonly sessions: readonly SessionInfo[];
}

export interface IntervalSummary {
  readonly id: number;
  readonly sessionId: number;
  readonly seq: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly drops: number;
  readonly overflowDrops: number;
  readonly overflowPoints: number;
  readonly lost: number;
  readonly packetsSeen: number;
  readonly packetsKept: number;
  readonly countersUnrecorded: number;
  /** Intervals just before this one that could not be written. */
  readonly gapBefore: number;
}

export interface RecordingTotals {
  readonly intervals: number;
  /** Start of the first and end of the last interval in the range; null when none. */
  readonly firstMs: number | null;
  readonly lastMs: number | null;
  readonly drops: number;
  /** Drops at points beyond the per-interval bound (no location recorded). */
  readonly overflowDrops: number;
  readonly lost: number;
  readonly packetsSeen: number;
  readonly packetsKept: number;
  /** Intervals that could not be written (storage errors) inside the range. */
  readonly intervalsUnwritten: number;
}

export interface PointTotal {
  readonly location: string;
  readonly symbol: string;
  /** Reason name; "" when the kernel gave none. */
  readonly reason: string;
  readonly reasonCode: number | null;
  readonly ethertype: number;
  /** "ipv4", "0x88b5"; "" for none. */
  readonly protocol: string;
  readonly origin: string;
  readonly trap: string | null;
  readonly trapGroup: string | null;
  readonly ifindex: number | null;
  readonly netns: number | null;
  readonly stack: readonly string[] | null;
  readonly count: number;
  /** Intervals with drops at this point. */
  readonly intervals: number;
  readonly firstMs: number;
  readonly lastMs: number;
}

export interface ReasonBucket {
  readonly startMs: number;
  readonly endMs: number;
  readonly total: number;
  /** Drops by reason name; "" for no reason, OVERFLOW_REASON for drops past the point bound. */
  readonly byReason: Readonly<Record<string, number>>;
}

export interface ReasonSeries {
  readonly bucketMs: number;
  readonly buckets: readonly ReasonBucket[];
  /** Every reason seen, most drops first. */
  readonly reasons: readonly { readonly reason: string; readonly count: number }[];
}

export interface CounterTotal {
  readonly name: string;
  readonly scope: string;
  readonly layer: string;
  /** Sum of the deltas over the range. */
  readonly delta: number;
  readonly maxRate: number;
  /** The value at the last interval it moved in. */
  readonly lastValue: number;
  readonly intervals: number;
}

export interface LossTotal {
  readonly cause: string;
  readonly lost: number;
  readonly intervals: number;
}

export interface PacketSummary {
  readonly intervalId: number;
  readonly timeMs: number | null;
  readonly location: string | null;
  readonly symbol: string | null;
  readonly reason: string | null;
  readonly ifindex: number | null;
  readonly ifname: string | null;
  readonly origLen: number | null;
  readonly protocol: string;
  readonly src: string | null;
  readonly dst: string | null;
  readonly l4: string | null;
  readonly sport: number | null;
  readonly dport: number | null;
}

export interface OpenOptions {
  /** Called at every interval a range query visits. */
  readonly checkpoint?: () => void;
}

/** Buckets of a ReasonSeries at most. */
const MAX_BUCKETS = 2000;

/** The reason key of drops beyond the per-interval point bound in a ReasonSeries. */
export const OVERFLOW_REASON = '(other locations)';

/**
 * A function every range query calls for each interval it visits. SQLite runs
 * a statement to its end inside native code, where a worker thread told to
 * terminate (the service's query pool) cannot stop, nor the process exit
 * while it runs; a call back into JavaScript is where the termination takes
 * effect and the statement ends. It costs one call per interval visited.
 */
const CHECKPOINT = 'dropmon_checkpoint';

/** An interval is in a range when it ended after `from` and at or before `to`: back-to-back ranges share none. */
const RANGE = `i.end_ms > @from AND i.end_ms <= @to AND ${CHECKPOINT}(i.id)`;

export class Recording {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
    readonly schemaVersion: number,
  ) {}

  /**
   * Open FILE read-only; a RecordingError (a DropmonError) says why when it is
   * not a readable recording. `checkpoint` runs at every interval a range
   * query visits (CHECKPOINT); tests slow a query down with it.
   */
  static open(file: string, opts: OpenOptions = {}): Recording {
    if (!existsSync(file)) throw new RecordingError('missing', `${file}: no such file`);
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw describeOpenError(err, file);
    }
    try {
      // Nothing this connection runs can write, and SQL functions with side effects cannot run from the
      // file's schema; damaged pages are found as they are read, not followed.
      db.pragma('query_only = ON');
      db.pragma('trusted_schema = OFF');
      db.pragma('cell_size_check = ON');
      // directOnly: the file's own schema (a view, a trigger) cannot call it.
      const checkpoint = opts.checkpoint;
      db.function(CHECKPOINT, { deterministic: false, directOnly: true }, (_interval: unknown) => {
        checkpoint?.();
        return 1;
      });
      const version = checkSchema(db, file);
      checkSchemaObjects(db, version, file);
      return new Recording(db, file, version);
    } catch (err) {
      db.close();
      throw describeOpenError(err, file);
    }
  }

  close(): void {
    this.db.close();
  }

  private bind(r: TimeRange | undefined): { from: number; to: number } {
    return { from: r?.from ?? Number.MIN_SAFE_INTEGER, to: r?.to ?? Number.MAX_SAFE_INTEGER };
  }

  meta(): RecordingMeta {
    const kv = new Map((this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    const sessions = (
      this.db.prepare('SELECT * FROM sessions ORDER BY id').all() as {
        id: number;
        started_ms: number;
        ended_ms: number | null;
        source: string;
        dropmon_version: string;
        kernel_release: string;
        hostname: string;
        interval_ms: number | null;
        intervals_unwritten: number;
      }[]
    ).map((s) => ({
      id: s.id,
      startedMs: s.started_ms,
      endedMs: s.ended_ms,
      source: s.source,
      dropmonVersion: s.dropmon_version,
      kernelRelease: s.kernel_release,
      hostname: s.hostname,
      intervalMs: s.interval_ms,
      intervalsUnwritten: s.intervals_unwritten,
    }));
    return {
      schemaVersion: this.schemaVersion,
      createdMs: Number(kv.get('created_ms') ?? 0),
      dropmonVersion: kv.get('dropmon_version') ?? '',
      kernelRelease: kv.get('kernel_release') ?? '',
      hostname: kv.get('hostname') ?? '',
      source: kv.get('source') ?? '',
      sessions,
    };
  }

  totals(range?: TimeRange): RecordingTotals {
    const r = this.db
      .prepare(
        `SELECT count(*) AS intervals, min(start_ms) AS firstMs, max(end_ms) AS lastMs, total(drops) AS drops,
           total(overflow_drops) AS overflowDrops, total(lost) AS lost, total(packets_seen) AS packetsSeen,
           total(packets_kept) AS packetsKept, total(gap_before) AS gaps
         FROM intervals i WHERE ${RANGE}`,
      )
      .get(this.bind(range)) as Omit<RecordingTotals, 'intervalsUnwritten'> & { gaps: number };
    const { gaps, ...rest } = r;
    return { ...rest, intervalsUnwritten: gaps };
  }

  /** Intervals in the range, oldest first, at most `limit` (the newest ones when cut). */
  intervals(range?: TimeRange, limit = 10_000): IntervalSummary[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM (SELECT id, session_id AS sessionId, seq, start_ms AS startMs, end_ms AS endMs, drops,
             overflow_drops AS overflowDrops, overflow_points AS overflowPoints, lost, packets_seen AS packetsSeen,
             packets_kept AS packetsKept, counters_unrecorded AS countersUnrecorded, gap_before AS gapBefore
           FROM intervals i WHERE ${RANGE} ORDER BY id DESC LIMIT @limit) ORDER BY id`,
        )
        .all({ ...this.bind(range), limit }) as IntervalSummary[]
    );
  }

  /** Drop points with the most drops over the range. */
  topPoints(range?: TimeRange, limit = 10): PointTotal[] {
    const rows = this.db
      .prepare(
        `SELECT p.location, p.symbol, p.reason, p.reason_code, p.protocol, p.origin, p.trap, p.trap_group, p.ifindex, p.netns,
           p.stack, sum(ip.count) AS count, count(*) AS intervals, min(i.end_ms) AS firstMs, max(i.end_ms) AS lastMs
         FROM interval_points ip JOIN intervals i ON i.id = ip.interval_id JOIN points p ON p.id = ip.point_id
         WHERE ${RANGE} GROUP BY ip.point_id ORDER BY count DESC, p.location LIMIT @limit`,
      )
      .all({ ...this.bind(range), limit }) as (Omit<PointRow, 'key'> & {
      count: number;
      intervals: number;
      firstMs: number;
      lastMs: number;
    })[];
    return rows.map((p) => ({
      location: p.location,
      symbol: p.symbol,
      reason: p.reason,
      reasonCode: p.reason_code,
      ethertype: p.protocol,
      protocol: p.protocol ? protocolName(p.protocol) : '',
      origin: p.origin,
      trap: p.trap,
      trapGroup: p.trap_group,
      ifindex: p.ifindex,
      netns: p.netns,
      stack: parseStack(p.stack),
      count: p.count,
      intervals: p.intervals,
      firstMs: p.firstMs,
      lastMs: p.lastMs,
    }));
  }

  /**
   * Drops by reason in time buckets of `bucketMs` (default: the range in
   * about `buckets` parts, never shorter than one interval). Buckets are
   * aligned on the first interval's start; empty buckets are included.
   */
  reasonsOverTime(range?: TimeRange, opts: { bucketMs?: number; buckets?: number } = {}): ReasonSeries {
    const t = this.totals(range);
    if (t.firstMs === null || t.lastMs === null) return { bucketMs: opts.bucketMs ?? 1000, buckets: [], reasons: [] };
    const first = Math.max(t.firstMs, range?.from ?? t.firstMs);
    const last = t.lastMs;
    const typical = (this.db.prepare(`SELECT avg(end_ms - start_ms) FROM intervals i WHERE ${RANGE}`).pluck().get(this.bind(range)) as number) || 1000;
    // One interval per bucket when they fit (interval lengths jitter by a few ms: round them), else a nice multiple.
    const wanted = (last - first) / (opts.buckets ?? 60);
    const auto = wanted <= typical * 1.05 ? Math.round(typical / 100) * 100 || Math.round(typical) : niceDuration(wanted);
    // At most MAX_BUCKETS, whatever was asked: the answer stays small for any range.
    const bucketMs = Math.max(1, Math.round(opts.bucketMs ?? auto), Math.ceil((last - first) / MAX_BUCKETS));
    const n = Math.max(1, Math.ceil((last - first) / bucketMs));
    const buckets = Array.from({ length: n }, (_, k) => ({ startMs: first + k * bucketMs, endMs: first + (k + 1) * bucketMs, total: 0, byReason: {} as Record<string, number> }));
    const reasons = new Map<string, number>();
    const add = (k: number, reason: string, count: number) => {
      const b = buckets[Math.min(n - 1, Math.max(0, k))];
      b.byReason[reason] = (b.byReason[reason] ?? 0) + count;
      b.total += count;
      reasons.set(reason, (reasons.get(reason) ?? 0) + count);
    };
    // Bucketed in SQL: an interval belongs to the bucket its end falls in.
    const bucketOf = 'CAST((i.end_ms - 1 - @first) / @bucket AS INTEGER)';
    const params = { ...this.bind(range), first, bucket: bucketMs };
    const byReason = this.db
      .prepare(
        `SELECT ${bucketOf} AS k, p.reason AS reason, sum(ip.count) AS count
         FROM interval_points ip JOIN intervals i ON i.id = ip.interval_id JOIN points p ON p.id = ip.point_id
         WHERE ${RANGE} GROUP BY k, p.reason`,
      )
      .all(params) as { k: number; reason: string; count: number }[];
    for (const row of byReason) add(row.k, row.reason, row.count);
    const overflow = this.db
      .prepare(`SELECT ${bucketOf} AS k, sum(overflow_drops) AS count FROM intervals i WHERE ${RANGE} AND overflow_drops > 0 GROUP BY k`)
      .all(params) as { k: number; count: number }[];
    for (const row of overflow) add(row.k, OVERFLOW_REASON, row.count);
    return {
      bucketMs,
      buckets,
      reasons: [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
    };
  }

  /** Counters that moved over the range, the largest total delta first. */
  countersMoved(range?: TimeRange, limit = 20): CounterTotal[] {
    return this.db
      .prepare(
        `SELECT c.name, c.scope, c.layer, sum(ic.delta) AS delta, max(ic.rate) AS maxRate, count(*) AS intervals,
           (SELECT ic2.value FROM interval_counters ic2 JOIN intervals i2 ON i2.id = ic2.interval_id
             WHERE ic2.counter_id = c.id AND i2.end_ms > @from AND i2.end_ms <= @to ORDER BY ic2.interval_id DESC LIMIT 1) AS lastValue
         FROM interval_counters ic JOIN intervals i ON i.id = ic.interval_id JOIN counters c ON c.id = ic.counter_id
         WHERE ${RANGE} GROUP BY c.id HAVING sum(ic.delta) != 0 ORDER BY abs(sum(ic.delta)) DESC, c.name, c.scope LIMIT @limit`,
      )
      .all({ ...this.bind(range), limit }) as CounterTotal[];
  }

  /** Lost events by cause over the range, most first. */
  losses(range?: TimeRange): LossTotal[] {
    return this.db
      .prepare(
        `SELECT l.cause, sum(l.lost) AS lost, count(*) AS intervals FROM interval_losses l JOIN intervals i ON i.id = l.interval_id
         WHERE ${RANGE} GROUP BY l.cause ORDER BY lost DESC, l.cause`,
      )
      .all(this.bind(range)) as LossTotal[];
  }

  /** Packet summaries (NET_DM packet mode), oldest first. */
  packets(range?: TimeRange, limit = 100): PacketSummary[] {
    const rows = this.db
      .prepare(
        `SELECT k.interval_id AS intervalId, k.time_ms AS timeMs, p.location, p.symbol, p.reason, k.ifindex, k.ifname,
           k.orig_len AS origLen, k.protocol, k.src, k.dst, k.l4, k.sport, k.dport
         FROM packets k JOIN intervals i ON i.id = k.interval_id LEFT JOIN points p ON p.id = k.point_id
         WHERE ${RANGE} ORDER BY k.interval_id, k.n LIMIT @limit`,
      )
      .all({ ...this.bind(range), limit }) as (Omit<PacketSummary, 'protocol'> & { protocol: number })[];
    return rows.map((r) => ({ ...r, protocol: r.protocol ? protocolName(r.protocol) : '' }));
  }
}

/** Durations a person reads easily (1 s, 2 s, 5 s, ... 1 min, ... 1 h, ... 1 d, ...), in ms. */
const NICE_MS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

/** The smallest nice duration of at least `ms`; whole days beyond. Below a second, `ms` itself. */
export function niceDuration(ms: number): number {
  if (ms <= 1000) return Math.max(1, Math.ceil(ms));
  return NICE_MS.find((n) => n >= ms) ?? Math.ceil(ms / 86_400_000) * 86_400_000;
}

function parseStack(text: string | null): string[] | null {
  if (text === null) return null;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.map(String) : null;
  } catch {
    return null;
  }
}

/** Open a recording for reading (see Recording). */
export function openRecording(file: string, opts?: OpenOptions): Recording {
  return Recording.open(file, opts);
}
