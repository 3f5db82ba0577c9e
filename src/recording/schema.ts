/**
 * The recording's SQLite schema, shared by the writer (recorder.ts) and the
 * reader (recording.ts). One file holds one or more sessions (a `dropmon
 * record` run, a start of the service); each session writes closed intervals.
 *
 * Drop points and counters are dictionaries (`points`, `counters`): an
 * interval refers to them by id, so a long recording of the same few points
 * costs three integers per point per interval. Per-interval tables are
 * WITHOUT ROWID and keyed by interval id first, so retention deletes the
 * oldest intervals' rows as one contiguous range.
 *
 * Times are milliseconds since the epoch (UTC). Kernel addresses are 0x-hex
 * text of 16 digits (they do not fit SQLite's signed 64-bit integers).
 *
 * Bump SCHEMA_VERSION on any incompatible change; readers refuse newer files.
 */
import type Database from 'better-sqlite3';
import { DropmonError } from '../core/errors.js';

export const SCHEMA_VERSION = 1;

/** The `application_id` pragma of a dropmon recording ("DrpM"), so `file(1)`-like checks can tell. */
export const APPLICATION_ID = 0x4472704d;

const DDL = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
  id              INTEGER PRIMARY KEY,
  started_ms      INTEGER NOT NULL,
  ended_ms        INTEGER,
  source          TEXT NOT NULL,
  dropmon_version TEXT NOT NULL,
  kernel_release  TEXT NOT NULL,
  hostname        TEXT NOT NULL,
  interval_ms     INTEGER,
  -- intervals this session could not write (disk full, read-only file)
  intervals_unwritten INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE intervals (
  id              INTEGER PRIMARY KEY,
  session_id      INTEGER NOT NULL,
  seq             INTEGER NOT NULL,
  start_ms        INTEGER NOT NULL,
  end_ms          INTEGER NOT NULL,
  drops           INTEGER NOT NULL,
  -- drops and distinct points past the aggregator's bound (no point row)
  overflow_drops  INTEGER NOT NULL,
  overflow_points INTEGER NOT NULL,
  lost            INTEGER NOT NULL,
  -- dropped packets seen (packet mode) and how many got a packets row
  packets_seen    INTEGER NOT NULL DEFAULT 0,
  packets_kept    INTEGER NOT NULL DEFAULT 0,
  -- counter deltas beyond the recorder's bound (not written)
  counters_unrecorded INTEGER NOT NULL DEFAULT 0,
  -- intervals lost just before this one because they could not be written
  gap_before      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX intervals_end ON intervals (end_ms);

CREATE TABLE points (
  id          INTEGER PRIMARY KEY,
  key         TEXT NOT NULL UNIQUE,
  location    TEXT NOT NULL,
  symbol      TEXT NOT NULL,
  reason      TEXT NOT NULL,
  reason_code INTEGER,
  protocol    INTEGER NOT NULL,
  origin      TEXT NOT NULL,
  trap        TEXT,
  trap_group  TEXT,
  ifindex     INTEGER,
  netns       INTEGER,
  -- symbolized frames, innermost first, JSON array (watch --stack)
  stack       TEXT
);

CREATE TABLE interval_points (
  interval_id INTEGER NOT NULL,
  point_id    INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  PRIMARY KEY (interval_id, point_id)
) WITHOUT ROWID;
CREATE INDEX interval_points_point ON interval_points (point_id);

CREATE TABLE counters (
  id    INTEGER PRIMARY KEY,
  name  TEXT NOT NULL,
  scope TEXT NOT NULL,
  layer TEXT NOT NULL,
  UNIQUE (name, scope)
);

CREATE TABLE interval_counters (
  interval_id INTEGER NOT NULL,
  counter_id  INTEGER NOT NULL,
  delta       REAL NOT NULL,
  value       REAL NOT NULL,
  rate        REAL NOT NULL,
  PRIMARY KEY (interval_id, counter_id)
) WITHOUT ROWID;
CREATE INDEX interval_counters_counter ON interval_counters (counter_id);

CREATE TABLE interval_losses (
  interval_id INTEGER NOT NULL,
  cause       TEXT NOT NULL,
  lost        INTEGER NOT NULL,
  PRIMARY KEY (interval_id, cause)
) WITHOUT ROWID;

CREATE TABLE packets (
  interval_id  INTEGER NOT NULL,
  n            INTEGER NOT NULL,
  time_ms      INTEGER,
  point_id     INTEGER,
  ifindex      INTEGER,
  ifname       TEXT,
  orig_len     INTEGER,
  protocol     INTEGER NOT NULL,
  src          TEXT,
  dst          TEXT,
  l4           TEXT,
  sport        INTEGER,
  dport        INTEGER,
  PRIMARY KEY (interval_id, n)
) WITHOUT ROWID;
CREATE INDEX packets_point ON packets (point_id);
`;

/** Meta keys written at creation. */
export interface RecordingMetaRow {
  readonly schema_version: string;
  readonly created_ms: string;
  readonly dropmon_version: string;
  readonly kernel_release: string;
  readonly hostname: string;
  readonly source: string;
}

/**
 * Create the schema in an empty database. auto_vacuum must be set before the
 * first table exists: it lets `PRAGMA incremental_vacuum` return freed pages
 * to the file system, so retention shrinks the file instead of only reusing it.
 */
export function createSchema(db: Database.Database, meta: RecordingMetaRow): void {
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.transaction(() => {
    db.exec(DDL);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    for (const [k, v] of Object.entries(meta)) put.run(k, v);
  })();
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

/** True when the database has no tables yet (a new file). */
export function isEmptyDatabase(db: Database.Database): boolean {
  const row = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number };
  return row.n === 0;
}

/**
 * Check that an opened database is a dropmon recording this code can read.
 * Throws a DropmonError that says what the file is instead.
 */
export function checkSchema(db: Database.Database, file: string): number {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  if (appId !== APPLICATION_ID || !hasMeta)
    throw new DropmonError(`${file} is an SQLite database but not a dropmon recording`, "record one with 'dropmon record -o FILE'");
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  const version = Number(row?.value);
  if (!Number.isInteger(version) || version < 1) throw new DropmonError(`${file}: the recording has no valid schema version`);
  if (version > SCHEMA_VERSION)
    throw new DropmonError(
      `${file} is a recording of schema version ${version}; this dropmon reads up to version ${SCHEMA_VERSION}`,
      'use a newer dropmon to read it',
    );
  return version;
}

/** Turn an SQLite open error on a non-database file into a clear message. */
export function describeOpenError(err: unknown, file: string): DropmonError {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB') return new DropmonError(`${file} is not a dropmon recording (not an SQLite database)`);
  if (code === 'SQLITE_CANTOPEN') return new DropmonError(`cannot open ${file}: ${msg}`, 'check the path and its permissions');
  if (code === 'ENOENT') return new DropmonError(`${file}: no such file`);
  return new DropmonError(`cannot open recording ${file}: ${msg}`);
}

/** A row of the points table: one drop point, as written and read back. */
export interface PointRow {
  key: string;
  location: string;
  symbol: string;
  reason: string;
  reason_code: number | null;
  protocol: number;
  origin: string;
  trap: string | null;
  trap_group: string | null;
  ifindex: number | null;
  netns: number | null;
  stack: string | null;
}
