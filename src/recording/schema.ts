/**
 * The recording's SQLite schema, shared by the writer (recorder.ts) and the
 * reader (recording.ts). One file holds one or more sessions (a `dropmon
 * record` run, a start of the service); each session writes closed intervals.
 *
 * Drop points and counters are dictionaries (`points`, `counters`): an
 * interval refers to them by id, so a long recording of the same few points
 * costs three integers per point per interval. Per-interval tables are
 * WITHOUT ROWID and keyed by interval id first, so retention deletes an
 * interval's rows without scanning.
 *
 * Times are milliseconds since the epoch (UTC). Kernel addresses are 0x-hex
 * text of 16 digits (they do not fit SQLite's signed 64-bit integers).
 *
 * Versions: the schema is the list MIGRATIONS, each one frozen once released.
 * A new file runs all of them; a file of an earlier version runs the ones it
 * lacks, in one transaction. The version is kept twice, in `meta`
 * (schema_version, what every dropmon reads) and in `PRAGMA user_version`.
 * A change is a new migration at the end of the list (and SCHEMA_VERSION
 * follows), never an edit of an earlier one: files written by every release
 * must keep matching what the migrations build (checkSchemaObjects refuses
 * anything else), and readers refuse newer versions.
 */
import Database from 'better-sqlite3';
import { DropmonError } from '../core/errors.js';

/**
 * What is wrong with a file that is not a usable recording, so that a caller
 * can decide: the service moves broken files aside and starts a new one, waits
 * out storage trouble, and leaves a newer dropmon's recording alone.
 */
export type RecordingFault =
  /** Missing file (reading only). */
  | 'missing'
  /** Not an SQLite database at all. */
  | 'not_a_database'
  /** An SQLite database that is damaged, or a recording without a valid version. */
  | 'corrupt'
  /** An SQLite database that is not a recording, or holds tables, views or triggers dropmon does not write. */
  | 'foreign'
  /** A recording of a newer schema version, written by a newer dropmon. */
  | 'newer'
  /** A recording of an earlier version whose migration failed. */
  | 'unmigratable'
  /** The storage: disk full, read-only, no permission, I/O error, locked. May go away. */
  | 'storage';

/** A file that cannot be used as a recording, and why (`fault`). */
export class RecordingError extends DropmonError {
  constructor(
    readonly fault: RecordingFault,
    message: string,
    hint?: string,
  ) {
    super(message, hint);
  }
}

/** The `application_id` pragma of a dropmon recording ("DrpM"), so `file(1)`-like checks can tell. */
export const APPLICATION_ID = 0x4472704d;

/**
 * Version 1, byte for byte as the first release wrote it: the check of
 * schema objects compares the SQL text SQLite keeps, so an edit here would
 * make every existing recording look foreign.
 */
const V1_DDL = `
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

/** One step of the schema: from `version - 1` to `version`. */
export interface Migration {
  readonly version: number;
  /** What it changes, for messages. */
  readonly what: string;
  readonly up: (db: Database.Database) => void;
}

/** Every version of the schema, in order; a new file runs all of them. Never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [{ version: 1, what: 'the first schema', up: (db) => db.exec(V1_DDL) }];

/** The version this dropmon writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

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
 * Create the schema in an empty database, in one transaction with its meta
 * rows and version. auto_vacuum must be set before the first table exists:
 * it lets `PRAGMA incremental_vacuum` return freed pages to the file system,
 * so retention shrinks the file instead of only reusing it.
 */
export function createSchema(db: Database.Database, meta: RecordingMetaRow, migrations: readonly Migration[] = MIGRATIONS): void {
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma(`application_id = ${APPLICATION_ID}`);
  const version = latest(migrations);
  db.transaction(() => {
    for (const m of migrations) m.up(db);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    // The version is the migrations' (a caller's schema_version is only a reminder of the key).
    for (const [k, v] of Object.entries({ ...meta, schema_version: String(version) })) put.run(k, v);
    db.pragma(`user_version = ${version}`);
  })();
}

/**
 * Bring a recording of an earlier version to the latest one: the missing
 * migrations, the version in meta and in user_version, all in one
 * transaction (a failure leaves the file as it was). A failure of the
 * storage is a 'storage' RecordingError (it may succeed later), any other an
 * 'unmigratable' one.
 */
export function migrateSchema(db: Database.Database, from: number, file: string, migrations: readonly Migration[] = MIGRATIONS): number {
  const to = latest(migrations);
  if (from >= to) return from;
  let step = from;
  try {
    db.transaction(() => {
      for (const m of migrations) {
        if (m.version <= from) continue;
        step = m.version;
        m.up(db);
      }
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(to));
      db.pragma(`user_version = ${to}`);
    })();
  } catch (err) {
    const code = sqliteCode(err);
    const why = err instanceof Error ? err.message : String(err);
    if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED')
      throw new RecordingError('storage', `cannot bring ${file} from schema version ${from} to ${to}: ${why} (${code})`, 'free some space or make the file writable');
    throw new RecordingError('unmigratable', `${file}: the recording of schema version ${from} cannot be brought to version ${to} (step ${step}: ${why})`);
  }
  return to;
}

function latest(migrations: readonly Migration[]): number {
  return migrations[migrations.length - 1].version;
}

function sqliteCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
}

/** True when the database has no schema object at all (a new file). */
export function isEmptyDatabase(db: Database.Database): boolean {
  const row = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number };
  return row.n === 0;
}

/**
 * Check that an opened database is a dropmon recording of a version this
 * code knows, and return that version. Throws a RecordingError that says
 * what the file is instead. The version is the larger of meta's and
 * user_version: a file that either calls newer is left to a newer dropmon.
 */
export function checkSchema(db: Database.Database, file: string, known: number = SCHEMA_VERSION): number {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  if (appId !== APPLICATION_ID || !hasMeta)
    throw new RecordingError('foreign', `${file} is an SQLite database but not a dropmon recording`, "record one with 'dropmon record -o FILE'");
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  const written = Number(row?.value);
  if (!Number.isInteger(written) || written < 1) throw new RecordingError('corrupt', `${file}: the recording has no valid schema version`);
  const version = Math.max(written, db.pragma('user_version', { simple: true }) as number);
  if (version > known)
    throw new RecordingError(
      'newer',
      `${file} is a recording of schema version ${version}; this dropmon reads up to version ${known}`,
      'use a newer dropmon with it',
    );
  return version;
}

/** The schema objects (type, name, table, SQL) that the migrations up to `version` create, computed once per version. */
const expected = new WeakMap<readonly Migration[], Map<number, Set<string>>>();

function expectedObjects(version: number, migrations: readonly Migration[]): Set<string> {
  let byVersion = expected.get(migrations);
  if (!byVersion) expected.set(migrations, (byVersion = new Map()));
  let objects = byVersion.get(version);
  if (!objects) {
    const db = new Database(':memory:');
    try {
      for (const m of migrations) if (m.version <= version) m.up(db);
      objects = new Set(schemaObjects(db).map(objectKey));
    } finally {
      db.close();
    }
    byVersion.set(version, objects);
  }
  return objects;
}

interface SchemaObject {
  readonly type: string;
  readonly name: string;
  readonly tbl_name: string;
  readonly sql: string | null;
}

function schemaObjects(db: Database.Database): SchemaObject[] {
  return db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid').all() as SchemaObject[];
}

function objectKey(o: SchemaObject): string {
  return JSON.stringify([o.type, o.name, o.tbl_name, o.sql]);
}

/** SQLite's statistics tables (written by ANALYZE, which a person may run): they only guide the query planner. */
const STATISTICS = /^sqlite_stat[14]$/;

/**
 * Refuse a recording holding schema objects that dropmon does not write: a
 * VIEW or TRIGGER, a virtual table, a table or index whose definition is not
 * exactly the one the migrations create (a crafted recording with a
 * recursive view in place of a table hangs any query of it; a trigger runs
 * on the recorder's writes). Reading sqlite_schema runs none of them; this
 * is checked before any query of the recording's own tables.
 */
export function checkSchemaObjects(db: Database.Database, version: number, file: string, migrations: readonly Migration[] = MIGRATIONS): void {
  const want = expectedObjects(version, migrations);
  const seen = new Set<string>();
  for (const o of schemaObjects(db)) {
    if (o.type === 'table' && STATISTICS.test(o.name)) continue;
    const key = objectKey(o);
    seen.add(key);
    if (want.has(key)) continue;
    const ours = [...want].some((k) => (JSON.parse(k) as string[])[1] === o.name);
    const kind = `${o.type === 'index' ? 'an' : 'a'} ${o.type} '${o.name}'`;
    const what = o.type === 'trigger' ? `${kind} on '${o.tbl_name}'` : ours ? `${kind} that is not the one dropmon writes` : kind;
    throw new RecordingError('foreign', `${file} has ${what}: dropmon does not write it, so the recording is not read (damaged or crafted)`, 'use a recording written by dropmon');
  }
  for (const k of want) {
    if (seen.has(k)) continue;
    const [type, name] = JSON.parse(k) as string[];
    throw new RecordingError('foreign', `${file} has no ${type} '${name}': it is not a complete dropmon recording of schema version ${version}`, 'use a recording written by dropmon');
  }
}

/** Turn an SQLite error on opening a file, or first reading it, into a RecordingError that says what the file is. */
export function describeOpenError(err: unknown, file: string): RecordingError {
  if (err instanceof RecordingError) return err;
  const code = sqliteCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB') return new RecordingError('not_a_database', `${file} is not a dropmon recording (not an SQLite database)`);
  if (code.startsWith('SQLITE_CORRUPT')) return new RecordingError('corrupt', `${file} is a damaged recording (${msg})`);
  if (code === 'SQLITE_CANTOPEN') return new RecordingError('storage', `cannot open ${file}: ${msg}`, 'check the path and its permissions');
  if (code === 'ENOENT') return new RecordingError('missing', `${file}: no such file`);
  return new RecordingError('storage', `cannot open recording ${file}: ${msg}`);
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
