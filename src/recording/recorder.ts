/**
 * The recorder: writes closed intervals (drop points, counter deltas, lost
 * events, packet summaries) to a recording file (see schema.ts).
 *
 * Every write is bounded, so a drop storm cannot grow the file faster than
 * retention trims it: the aggregator bounds points per interval, and the
 * recorder bounds counters, loss causes and packets per interval, counting
 * what it left out. Each interval is one transaction with prepared
 * statements, followed by a bounded retention step (age, then size).
 * Retention by age deletes by end time, counted from a horizon that ignores
 * future stamps and clock steps (horizon.ts); by size, the oldest by end time.
 *
 * Opening checks that the file is a recording of a known version holding
 * only the tables dropmon writes, and migrates an earlier version in one
 * transaction. A file it cannot use throws a RecordingError whose `fault`
 * says why (resilient-recorder.ts decides what the service does about it).
 *
 * Storage failures (disk full, a file that became read-only, I/O errors) do
 * not stop monitoring: the interval is dropped and counted, one warning says
 * why, and a second one says when writing resumed and how many were lost.
 * The count is kept with the session and with the next written interval.
 *
 * It is an IntervalOutput and a PacketOutput of the pipeline; a caller with
 * counter deltas (the service) calls `record({ interval, counters })` instead.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname, release } from 'node:os';
import Database from 'better-sqlite3';
import type { DropPoint, IntervalReport } from '../core/interval.js';
import type { CounterDelta } from '../core/counter.js';
import { NO_REASON, hexAddress, type DropSample } from '../core/drop.js';
import { DropmonError } from '../core/errors.js';
import { dropmonVersion } from '../core/version.js';
import { decodeHeaders } from '../core/packet.js';
import type { IntervalOutput, PacketOutput } from '../core/pipeline.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import { describePoint, describeStack } from '../outputs/describe.js';
import { RetentionHorizon, type Clocks } from './horizon.js';
import {
  RecordingError,
  SCHEMA_VERSION,
  checkSchema,
  checkSchemaObjects,
  createSchema,
  describeOpenError,
  isEmptyDatabase,
  migrateSchema,
  type PointRow,
} from './schema.js';

/** A counter delta as the recorder stores it (a subset of core/counter.ts's CounterDelta). */
export type RecordedCounter = Pick<CounterDelta, 'name' | 'scope' | 'layer' | 'delta' | 'value' | 'rate'>;

/** What the recorder writes per interval. */
export interface RecorderInput {
  readonly interval: IntervalReport;
  /** Counters that moved in this interval (only non-zero deltas are worth passing); default: `interval.counters`. */
  readonly counters?: readonly RecordedCounter[];
}

export interface RetentionPolicy {
  /** Delete intervals that ended more than this long before the newest one (the horizon: see horizon.ts). */
  readonly maxAgeMs?: number;
  /** Keep the database (page_count * page_size) under this many bytes; the WAL adds up to WAL_LIMIT_BYTES. */
  readonly maxBytes?: number;
}

export interface RecorderOptions {
  /** The drop source's name ("tracefs", "netdm"), kept with the session. */
  readonly source: string;
  readonly intervalMs?: number;
  /** Symbolizes locations when they are written (the file is read on other hosts). */
  readonly symbols?: Symbolizer;
  readonly retention?: RetentionPolicy;
  /** Packet summaries kept per interval in packet mode; the rest are counted. Default 100. */
  readonly maxPacketsPerInterval?: number;
  /** Counter deltas kept per interval, the largest first; the rest are counted. Default 1000. */
  readonly maxCountersPerInterval?: number;
  /** One line for the operator (storage trouble, recovery). */
  readonly warn?: (message: string) => void;
  /** Add a session to an existing recording instead of refusing it. Default true. */
  readonly append?: boolean;
  /** Intervals that could not be written before this recorder opened (the first one's gap_before, and the session's count). */
  readonly unwrittenBefore?: number;
  /** The clocks retention by age goes by (tests). */
  readonly clocks?: Clocks;
  /** How long a step of the wall clock must hold before retention by age believes it (horizon.ts). */
  readonly clockSettleMs?: number;
}

export interface RecorderStats {
  /** Intervals in the file, every session's. */
  readonly intervals: number;
  readonly intervalsWritten: number;
  /** Intervals that could not be written (storage errors). */
  readonly intervalsUnwritten: number;
  /** Intervals deleted by retention. */
  readonly intervalsExpired: number;
  readonly drops: number;
  readonly lost: number;
  /** page_count * page_size after the last write. */
  readonly databaseBytes: number;
}

/** Loss causes kept per interval; the rest are summed under OTHER_CAUSES. */
const MAX_LOSS_CAUSES = 64;
export const OTHER_CAUSES = '(other causes)';
/** Intervals deleted per retention step at most: bounds the work of one interval. */
const RETENTION_BATCH = 500;
/** Unreferenced dictionary rows deleted per step at most. */
const PRUNE_BATCH = 500;
/** Expired intervals between two prunings of the dictionaries (age retention expires one per interval). */
const PRUNE_EVERY = 64;
/** Child tables of an interval, deleted with it. */
const INTERVAL_TABLES = ['interval_points', 'interval_counters', 'interval_losses', 'packets'] as const;
/** The WAL file is truncated to this after checkpoints. */
export const WAL_LIMIT_BYTES = 4 * 1024 * 1024;

interface PacketRow {
  time_ms: number | null;
  point: PointRow;
  ifindex: number | null;
  ifname: string | null;
  orig_len: number | null;
  protocol: number;
  src: string | null;
  dst: string | null;
  l4: string | null;
  sport: number | null;
  dport: number | null;
}

function errCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
}

/** An SQLite failure of the storage (as opposed to a bug): the interval is dropped, monitoring goes on. */
function storageFailure(err: unknown): string | undefined {
  const code = errCode(err);
  if (!code.startsWith('SQLITE_')) return undefined;
  if (code === 'SQLITE_FULL') return 'the disk is full (SQLITE_FULL)';
  if (code.startsWith('SQLITE_READONLY')) return `the file is read-only (${code})`;
  if (code.startsWith('SQLITE_IOERR')) return `an I/O error (${code})`;
  if (code.startsWith('SQLITE_CANTOPEN')) return `the file cannot be opened (${code})`;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return `the database is locked by another program (${code})`;
  return `${err instanceof Error ? err.message : code} (${code})`;
}

/** SQLite says only "unable to open database file": say why, before it tries. */
function checkWritable(file: string, exists: boolean): void {
  const target = exists ? file : dirname(file) || '.';
  try {
    accessSync(target, constants.W_OK);
  } catch (err) {
    const code = errCode(err);
    const why =
      code === 'EROFS' ? 'the file system is read-only' : code === 'ENOENT' ? `no directory ${target}` : code === 'EACCES' ? `${target} is not writable` : (err as Error).message;
    throw new RecordingError('storage', `cannot record to ${file}: ${why}`, 'choose a writable file on a file system with free space');
  }
}

/**
 * Look at an existing file without changing it before opening it for
 * writing: a read-write connection to a file that turns out broken deletes
 * the -wal beside it when it closes, and that journal belongs with the file
 * (it may hold its last intervals). Throws the RecordingError of a file that
 * is not a usable recording; storage trouble is left to the real opening.
 */
function checkReadOnly(file: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    // No schema yet (a creation that ran out of space): created like a new file.
    if (!isEmptyDatabase(db)) checkSchemaObjects(db, checkSchema(db, file), file);
  } catch (err) {
    const e = describeOpenError(err, file);
    if (e.fault !== 'storage' && e.fault !== 'missing') throw e;
  } finally {
    db?.close();
  }
}

/**
 * Every drop point of an interval: a noise policy may have moved the usually
 * benign ones from `points` to `benignPoints`; a recording keeps them all.
 */
function allPoints(r: IntervalReport): readonly DropPoint[] {
  if (!r.benignPoints?.length) return r.points;
  const listed = new Set(r.points);
  return [...r.points, ...r.benignPoints.filter((p) => !listed.has(p))];
}

export class Recorder implements IntervalOutput, PacketOutput {
  private readonly db: Database.Database;
  private readonly sessionId: number;
  private readonly pointIds = new Map<string, number>();
  private readonly counterIds = new Map<string, number>();
  private readonly maxPackets: number;
  private readonly maxCounters: number;
  private readonly warn: (m: string) => void;
  private pendingPackets: PacketRow[] = [];
  private packetsSeen = 0;
  private intervalCount: number;
  private failing: { why: string; code: string } | undefined;
  private readonly horizon: RetentionHorizon;
  private gap = 0;
  private prunedAt = 0;
  private closed = false;
  private stats_ = { intervalsWritten: 0, intervalsUnwritten: 0, intervalsExpired: 0, drops: 0, lost: 0, databaseBytes: 0 };
  private readonly stmt: ReturnType<Recorder['prepare']>;

  /** Create FILE or add a session to the recording in it. Throws a RecordingError (a DropmonError) when it cannot. */
  constructor(
    readonly file: string,
    private readonly opts: RecorderOptions,
  ) {
    this.maxPackets = opts.maxPacketsPerInterval ?? 100;
    this.maxCounters = opts.maxCountersPerInterval ?? 1000;
    this.warn = opts.warn ?? (() => undefined);
    const existed = existsSync(file) && statSync(file).size > 0;
    if (existed && opts.append === false)
      throw new DropmonError(`${file} exists`, 'choose another file, remove it, or add to it with --append');
    checkWritable(file, existed);
    if (existed) checkReadOnly(file);
    try {
      this.db = new Database(file);
    } catch (err) {
      throw describeOpenError(err, file);
    }
    try {
      if (isEmptyDatabase(this.db)) {
        createSchema(this.db, {
          schema_version: String(SCHEMA_VERSION),
          created_ms: String(Date.now()),
          dropmon_version: dropmonVersion(),
          kernel_release: release(),
          hostname: hostname(),
          source: opts.source,
        });
      } else {
        const version = checkSchema(this.db, file);
        checkSchemaObjects(this.db, version, file);
        migrateSchema(this.db, version, file);
      }
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a power cut may lose the last intervals, never corrupt the file.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma(`journal_size_limit = ${WAL_LIMIT_BYTES}`);
      this.stmt = this.prepare();
      this.sessionId = Number(
        this.stmt.insertSession.run(Date.now(), opts.source, dropmonVersion(), release(), hostname(), opts.intervalMs ?? null).lastInsertRowid,
      );
      this.intervalCount = (this.db.prepare('SELECT count(*) AS n FROM intervals').get() as { n: number }).n;
      const newestUpTo = this.db.prepare('SELECT max(end_ms) FROM intervals WHERE end_ms <= ?').pluck();
      this.horizon = new RetentionHorizon({
        intervalMs: opts.intervalMs ?? 1000,
        newestUpTo: (ceiling) => (newestUpTo.get(ceiling) as number | null) ?? undefined,
        warn: this.warn,
        ...(opts.clocks ? { clocks: opts.clocks } : {}),
        ...(opts.clockSettleMs !== undefined ? { settleMs: opts.clockSettleMs } : {}),
      });
    } catch (err) {
      this.db.close();
      if (err instanceof DropmonError) throw err;
      const code = errCode(err);
      const why = code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT') ? undefined : storageFailure(err);
      if (why) throw new RecordingError('storage', `cannot record to ${file}: ${why}`, 'choose a writable file on a file system with free space');
      throw describeOpenError(err, file);
    }
    this.gap = opts.unwrittenBefore ?? 0;
    this.stats_.intervalsUnwritten = this.gap;
    this.updateSize();
  }

  private prepare() {
    const db = this.db;
    return {
      insertSession: db.prepare(
        'INSERT INTO sessions (started_ms, source, dropmon_version, kernel_release, hostname, interval_ms) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      updateSession: db.prepare('UPDATE sessions SET ended_ms = ?, intervals_unwritten = ? WHERE id = ?'),
      insertInterval: db.prepare(
        `INSERT INTO intervals (session_id, seq, start_ms, end_ms, drops, overflow_drops, overflow_points, lost,
           packets_seen, packets_kept, counters_unrecorded, gap_before)
         VALUES (@session, @seq, @start, @end, @drops, @overflowDrops, @overflowPoints, @lost, @packetsSeen, @packetsKept, @countersUnrecorded, @gap)`,
      ),
      insertPoint: db.prepare(
        `INSERT INTO points (key, location, symbol, reason, reason_code, protocol, origin, trap, trap_group, ifindex, netns, stack)
         VALUES (@key, @location, @symbol, @reason, @reason_code, @protocol, @origin, @trap, @trap_group, @ifindex, @netns, @stack)
         ON CONFLICT (key) DO NOTHING`,
      ),
      pointId: db.prepare('SELECT id FROM points WHERE key = ?').pluck(),
      insertIntervalPoint: db.prepare(
        `INSERT INTO interval_points (interval_id, point_id, count) VALUES (?, ?, ?)
         ON CONFLICT (interval_id, point_id) DO UPDATE SET count = count + excluded.count`,
      ),
      insertCounter: db.prepare('INSERT INTO counters (name, scope, layer) VALUES (?, ?, ?) ON CONFLICT (name, scope) DO NOTHING'),
      counterId: db.prepare('SELECT id FROM counters WHERE name = ? AND scope = ?').pluck(),
      insertIntervalCounter: db.prepare(
        `INSERT INTO interval_counters (interval_id, counter_id, delta, value, rate) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (interval_id, counter_id) DO UPDATE SET delta = delta + excluded.delta, value = excluded.value, rate = rate + excluded.rate`,
      ),
      insertLoss: db.prepare('INSERT INTO interval_losses (interval_id, cause, lost) VALUES (?, ?, ?)'),
      insertPacket: db.prepare(
        `INSERT INTO packets (interval_id, n, time_ms, point_id, ifindex, ifname, orig_len, protocol, src, dst, l4, sport, dport)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Retention goes by end time (the intervals_end index), never by id: ids follow the order of
      // writing, which is not the order of time when the clock steps.
      endedBefore: db.prepare('SELECT id FROM intervals WHERE end_ms < ? ORDER BY end_ms, id LIMIT ?').pluck(),
      oldest: db.prepare('SELECT id FROM intervals ORDER BY end_ms, id LIMIT ?').pluck(),
      deleteChildren: INTERVAL_TABLES.map((t) => db.prepare(`DELETE FROM ${t} WHERE interval_id IN (SELECT value FROM json_each(?))`)),
      deleteIntervals: db.prepare('DELETE FROM intervals WHERE id IN (SELECT value FROM json_each(?))'),
      prunePoints: db.prepare(
        `DELETE FROM points WHERE id IN (SELECT p.id FROM points p
           WHERE NOT EXISTS (SELECT 1 FROM interval_points ip WHERE ip.point_id = p.id)
             AND NOT EXISTS (SELECT 1 FROM packets k WHERE k.point_id = p.id) LIMIT ${PRUNE_BATCH})`,
      ),
      pruneCounters: db.prepare(
        `DELETE FROM counters WHERE id IN (SELECT c.id FROM counters c
           WHERE NOT EXISTS (SELECT 1 FROM interval_counters ic WHERE ic.counter_id = c.id) LIMIT ${PRUNE_BATCH})`,
      ),
    };
  }

  get stats(): RecorderStats {
    return { ...this.stats_, intervals: this.intervalCount };
  }

  /** The SQLite error code of the storage failure intervals are being dropped for, while they are. */
  get failingCode(): string | undefined {
    return this.failing?.code;
  }

  /** IntervalOutput: an interval without counters. */
  interval(report: IntervalReport): void {
    this.record({ interval: report });
  }

  /** PacketOutput: keep summaries of the first packets of the current interval, count the rest. */
  packets(samples: readonly DropSample[]): void {
    for (const s of samples) {
      if (!s.packet) continue;
      this.packetsSeen++;
      if (this.pendingPackets.length >= this.maxPackets) continue;
      const p = s.packet;
      const h = p.payload && p.payload.length ? decodeHeaders(p.payload, s.protocol) : undefined;
      this.pendingPackets.push({
        time_ms: p.timestamp !== undefined ? Number(p.timestamp / 1_000_000n) : null,
        point: this.pointRow(s, p.kernelSymbol),
        ifindex: p.ifindex ?? null,
        ifname: p.ifname ?? null,
        orig_len: p.origLen ?? null,
        protocol: s.protocol,
        src: h?.src ?? null,
        dst: h?.dst ?? null,
        l4: h?.l4 ?? null,
        sport: h?.sport ?? null,
        dport: h?.dport ?? null,
      });
    }
  }

  /**
   * Write one interval and apply retention. Never throws for storage
   * failures: the interval is counted as unwritten instead.
   */
  record(input: RecorderInput): void {
    if (this.closed) return;
    const r = input.interval;
    const packets = this.pendingPackets;
    const packetsSeen = this.packetsSeen;
    this.pendingPackets = [];
    this.packetsSeen = 0;
    try {
      this.write(r, input.counters ?? r.counters ?? [], packets, packetsSeen);
    } catch (err) {
      // A bug of ours must not stop the monitor either: said once, counted like a storage failure.
      const why = storageFailure(err) ?? `an internal error (${err instanceof Error ? err.message : String(err)})`;
      // A rolled-back transaction may have taken dictionary rows with it.
      this.pointIds.clear();
      this.counterIds.clear();
      this.gap++;
      this.stats_.intervalsUnwritten++;
      if (this.failing === undefined)
        this.warn(`cannot write the recording ${this.file}: ${why}; monitoring goes on, intervals are dropped and counted until it can be written`);
      this.failing = { why, code: errCode(err) };
      return;
    }
    if (this.failing !== undefined) {
      this.warn(`recording to ${this.file} resumed; ${this.gap} interval(s) could not be written`);
      this.failing = undefined;
    }
    this.gap = 0;
    this.stats_.intervalsWritten++;
    this.stats_.drops += r.drops;
    this.stats_.lost += r.lostTotal;
    try {
      this.applyRetention(this.horizon.written(r.end));
    } catch (err) {
      if (storageFailure(err) === undefined) throw err;
      // Retention runs again after the next interval.
    }
    this.updateSize();
  }

  private write(r: IntervalReport, counters: readonly RecordedCounter[], packets: PacketRow[], packetsSeen: number): void {
    const s = this.stmt;
    const kept = counters.length > this.maxCounters ? [...counters].sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta)).slice(0, this.maxCounters) : counters;
    this.db.transaction(() => {
      const id = Number(
        s.insertInterval.run({
          session: this.sessionId,
          seq: r.seq,
          start: r.start,
          end: r.end,
          drops: r.drops,
          overflowDrops: r.overflow.drops,
          overflowPoints: r.overflow.points,
          lost: r.lostTotal,
          packetsSeen,
          packetsKept: packets.length,
          countersUnrecorded: counters.length - kept.length,
          gap: this.gap,
        }).lastInsertRowid,
      );
      for (const p of allPoints(r)) s.insertIntervalPoint.run(id, this.pointId(this.pointRow(p)), p.count);
      let causes = 0;
      let other = 0;
      for (const [cause, lost] of r.lost) {
        if (lost <= 0) continue;
        if (++causes < MAX_LOSS_CAUSES) s.insertLoss.run(id, cause.slice(0, 200), lost);
        else other += lost;
      }
      if (other > 0) s.insertLoss.run(id, OTHER_CAUSES, other);
      for (const c of kept) s.insertIntervalCounter.run(id, this.counterId(c), c.delta, c.value, c.rate);
      packets.forEach((p, n) =>
        s.insertPacket.run(id, n, p.time_ms, this.pointId(p.point), p.ifindex, p.ifname, p.orig_len, p.protocol, p.src, p.dst, p.l4, p.sport, p.dport),
      );
      if (this.gap > 0 || this.stats_.intervalsUnwritten > 0) s.updateSession.run(null, this.stats_.intervalsUnwritten, this.sessionId);
    })();
    this.intervalCount++;
  }

  private pointRow(p: DropPoint | DropSample, kernelSymbol?: string): PointRow {
    // The row keeps the namespace inode and interface index, not their names on this host.
    const d = describePoint(p as DropPoint, this.opts.symbols, undefined);
    // Without kallsyms, NET_DM's own %pS text beats a bare address.
    const symbol = this.opts.symbols?.lookup(p.location) === undefined && kernelSymbol ? kernelSymbol : d.symbol;
    const stack = p.stack ? JSON.stringify(describeStack(p.stack, this.opts.symbols)) : null;
    const row = {
      location: hexAddress(p.location),
      symbol,
      reason: p.reasonName,
      reason_code: p.reason === NO_REASON ? null : p.reason,
      protocol: p.protocol,
      origin: p.origin,
      trap: p.trap?.name ?? null,
      trap_group: p.trap?.group ?? null,
      ifindex: p.ifindex ?? null,
      netns: p.netns ?? null,
      stack,
    };
    return { key: JSON.stringify(Object.values(row)), ...row };
  }

  private pointId(row: PointRow): number {
    let id = this.pointIds.get(row.key);
    if (id === undefined) {
      this.stmt.insertPoint.run(row);
      id = this.stmt.pointId.get(row.key) as number;
      // Bounded like the symbolizer's cache: points are few, but a long service run sees many.
      if (this.pointIds.size > 50_000) this.pointIds.clear();
      this.pointIds.set(row.key, id);
    }
    return id;
  }

  private counterId(c: RecordedCounter): number {
    const key = `${c.name}\u0000${c.scope}`;
    let id = this.counterIds.get(key);
    if (id === undefined) {
      this.stmt.insertCounter.run(c.name, c.scope, c.layer);
      id = this.stmt.counterId.get(c.name, c.scope) as number;
      if (this.counterIds.size > 50_000) this.counterIds.clear();
      this.counterIds.set(key, id);
    }
    return id;
  }

  /**
   * Delete the oldest intervals past the age or size limit, a bounded batch
   * at a time. Age: those that ended more than max-age before the horizon
   * (none while the horizon is unknown), so no interval that ended after
   * horizon - max-age is ever deleted by age. Size: the oldest by end time,
   * never the newest.
   */
  private applyRetention(horizon: number | undefined): void {
    const { maxAgeMs, maxBytes } = this.opts.retention ?? {};
    let deleted = false;
    let sizeDriven = false;
    if (maxAgeMs !== undefined && horizon !== undefined) {
      const ids = this.stmt.endedBefore.all(horizon - maxAgeMs, RETENTION_BATCH) as number[];
      deleted = this.deleteIntervals(ids);
    }
    if (maxBytes !== undefined && this.intervalCount > 1) {
      const bytes = this.databaseBytes();
      if (bytes > maxBytes) {
        // Delete about as many intervals as the excess holds, at least one; always keep the newest.
        const perInterval = bytes / this.intervalCount;
        const n = Math.min(RETENTION_BATCH, this.intervalCount - 1, Math.max(1, Math.ceil((bytes - maxBytes) / perInterval) + 1));
        sizeDriven = this.deleteIntervals(this.stmt.oldest.all(n) as number[]);
        deleted ||= sizeDriven;
      }
    }
    if (!deleted) return;
    // Pruning scans the dictionaries: not after every single expired interval, but always when over size.
    if (sizeDriven || this.stats_.intervalsExpired - this.prunedAt >= PRUNE_EVERY) {
      this.prunedAt = this.stats_.intervalsExpired;
      this.db.transaction(() => {
        this.stmt.prunePoints.run();
        this.stmt.pruneCounters.run();
      })();
      this.pointIds.clear();
      this.counterIds.clear();
    }
    // Give the freed pages back to the file system: the file shrinks.
    this.db.pragma('incremental_vacuum');
  }

  /** Delete these intervals and their rows, in one transaction. */
  private deleteIntervals(ids: readonly number[]): boolean {
    if (ids.length === 0) return false;
    const s = this.stmt;
    const list = JSON.stringify(ids);
    this.db.transaction(() => {
      for (const del of s.deleteChildren) del.run(list);
      s.deleteIntervals.run(list);
    })();
    this.intervalCount -= ids.length;
    this.stats_.intervalsExpired += ids.length;
    return true;
  }

  private databaseBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return pages * size;
  }

  private updateSize(): void {
    try {
      this.stats_.databaseBytes = this.databaseBytes();
    } catch {
      /* keep the previous value */
    }
  }

  /**
   * End the session and close the file. The journal goes back to DELETE mode
   * so the recording is one self-contained file (no -wal/-shm beside it) that
   * can be copied and read on read-only media. Safe to call more than once.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.stmt.updateSession.run(Date.now(), this.stats_.intervalsUnwritten, this.sessionId);
    } catch {
      /* the storage failure was reported already */
    }
    try {
      this.db.pragma('journal_mode = DELETE');
    } catch {
      /* another connection still uses WAL, or the disk is full: the WAL stays */
    }
    this.db.close();
  }
}
