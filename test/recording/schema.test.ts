/**
 * Schema versions and migrations: files written by every earlier schema
 * version open (and are migrated in one transaction when written to), a
 * failed migration leaves the file as it was, newer versions are refused,
 * and schema objects dropmon does not write are refused before any query.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import {
  APPLICATION_ID,
  MIGRATIONS,
  RecordingError,
  SCHEMA_VERSION,
  checkSchema,
  checkSchemaObjects,
  createSchema,
  migrateSchema,
  type Migration,
  type RecordingFault,
} from '../../src/recording/schema.js';
import { syntheticInterval } from './synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'dropmon-schema-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;
const newFile = () => join(dir, `s${serial++}.db`);
const T0 = Date.UTC(2026, 0, 1);

/**
 * Every schema version dropmon ever released, with its DDL copied from the
 * commit that introduced it (`git log -p --follow src/recording/schema.ts`).
 * A new version adds its entry here: files written by each must keep opening.
 */
const RELEASED: readonly { version: number; commit: string; ddl: string }[] = [
  {
    version: 1,
    commit: '0e14961',
    ddl: `
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
`,
  },
];

/** A recording as the dropmon of that version wrote it: its own DDL and creation steps, and one session with two intervals. */
function writtenBy(release: (typeof RELEASED)[number]): string {
  const file = newFile();
  const db = new Database(file);
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.transaction(() => {
    db.exec(release.ddl);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    for (const [k, v] of Object.entries({ schema_version: String(release.version), created_ms: String(T0), dropmon_version: '0.1.0', kernel_release: '6.1.0', hostname: 'old', source: 'tracefs' }))
      put.run(k, v);
    db.prepare("INSERT INTO sessions (started_ms, ended_ms, source, dropmon_version, kernel_release, hostname, interval_ms) VALUES (?, ?, 'tracefs', '0.1.0', '6.1.0', 'old', 1000)").run(T0, T0 + 2000);
    db.prepare("INSERT INTO points (key, location, symbol, reason, reason_code, protocol, origin) VALUES ('k', '0xffffffff81000000', 'kfree_skb+0x10', 'NO_SOCKET', 2, 2048, 'software')").run();
    for (const seq of [1, 2]) {
      db.prepare('INSERT INTO intervals (session_id, seq, start_ms, end_ms, drops, overflow_drops, overflow_points, lost) VALUES (1, ?, ?, ?, 7, 0, 0, 0)').run(seq, T0 + (seq - 1) * 1000, T0 + seq * 1000);
      db.prepare('INSERT INTO interval_points (interval_id, point_id, count) VALUES (?, 1, 7)').run(seq);
    }
  })();
  db.pragma(`user_version = ${release.version}`);
  db.close();
  return file;
}

function objects(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name').all();
  } finally {
    db.close();
  }
}

function fault(f: RecordingFault, message?: RegExp) {
  return (e: unknown) => e instanceof RecordingError && e.fault === f && (message === undefined || message.test(e.message));
}

describe('files of every released schema version', () => {
  for (const release of RELEASED) {
    test(`version ${release.version} (${release.commit}): read as it is, then written to and migrated`, () => {
      const file = writtenBy(release);
      const r = openRecording(file);
      try {
        assert.equal(r.schemaVersion, release.version);
        assert.equal(r.totals().intervals, 2);
        assert.equal(r.topPoints()[0].count, 14);
      } finally {
        r.close();
      }
      const w = new Recorder(file, { source: 'bpf' });
      w.record({ interval: syntheticInterval(3, T0, 1000) });
      w.close();
      const again = openRecording(file);
      try {
        assert.equal(again.schemaVersion, SCHEMA_VERSION);
        assert.equal(again.totals().intervals, 3, 'the old intervals are all there, and the new one');
        assert.deepEqual(
          again.meta().sessions.map((s) => s.source),
          ['tracefs', 'bpf'],
        );
      } finally {
        again.close();
      }
      // A migrated file is exactly a new one: the checks of later versions hold for both.
      const fresh = newFile();
      new Recorder(fresh, { source: 'bpf' }).close();
      assert.deepEqual(objects(file), objects(fresh));
    });
  }

  test('the released list ends at the version this dropmon writes', () => {
    assert.equal(RELEASED.at(-1)!.version, SCHEMA_VERSION);
    assert.deepEqual(
      MIGRATIONS.map((m) => m.version),
      RELEASED.map((r) => r.version),
    );
  });
});

describe('migrations', () => {
  const v2: Migration = {
    version: 2,
    what: 'sessions say why they ended; a table of notes',
    up: (db) => db.exec('ALTER TABLE sessions ADD COLUMN end_reason TEXT; CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)'),
  };
  const withV2 = [...MIGRATIONS, v2];

  test('an earlier version is brought to the latest in one step; the result is what a new file gets', () => {
    const file = writtenBy(RELEASED[0]);
    const db = new Database(file);
    try {
      const from = checkSchema(db, file, 2);
      assert.equal(from, 1);
      checkSchemaObjects(db, from, file, withV2);
      assert.equal(migrateSchema(db, from, file, withV2), 2);
      assert.equal(checkSchema(db, file, 2), 2);
      assert.equal(db.pragma('user_version', { simple: true }), 2);
      assert.equal(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), '2');
      checkSchemaObjects(db, 2, file, withV2);
      assert.throws(() => checkSchemaObjects(db, 1, file, withV2), fault('foreign'), 'a v2 file is not a v1 one');
      assert.equal(db.prepare('SELECT count(*) FROM intervals').pluck().get(), 2, 'the data stays');
    } finally {
      db.close();
    }
    const fresh = new Database(newFile());
    try {
      createSchema(fresh, { schema_version: '', created_ms: '0', dropmon_version: 'x', kernel_release: 'x', hostname: 'x', source: 'x' }, withV2);
      assert.equal(fresh.pragma('user_version', { simple: true }), 2);
      checkSchemaObjects(fresh, 2, 'fresh', withV2);
    } finally {
      fresh.close();
    }
  });

  test('a migration that fails leaves the file as it was', () => {
    const file = writtenBy(RELEASED[0]);
    const broken: Migration = { version: 3, what: 'a step that cannot run', up: (db) => db.exec('ALTER TABLE no_such_table ADD COLUMN x INTEGER') };
    const db = new Database(file);
    try {
      assert.throws(() => migrateSchema(db, 1, file, [...withV2, broken]), fault('unmigratable', /version 1 cannot be brought to version 3 \(step 3/));
      assert.equal(checkSchema(db, file), 1);
      assert.equal(db.pragma('user_version', { simple: true }), 1);
      checkSchemaObjects(db, 1, file);
      assert.equal(
        (db.prepare('PRAGMA table_info(sessions)').all() as { name: string }[]).some((c) => c.name === 'end_reason'),
        false,
        'the successful step 2 was rolled back with the failing step 3',
      );
    } finally {
      db.close();
    }
  });

  test('a newer version is refused, by meta or by user_version, and never touched', () => {
    for (const how of ['meta', 'user_version'] as const) {
      const file = writtenBy(RELEASED[0]);
      const db = new Database(file);
      if (how === 'meta') db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
      else db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      assert.throws(() => openRecording(file), fault('newer', new RegExp(`schema version ${SCHEMA_VERSION + 1}`)), how);
      assert.throws(() => new Recorder(file, { source: 'tracefs' }), fault('newer'), how);
    }
  });

  test('no valid version: corrupt; another program\'s database: foreign', () => {
    const file = writtenBy(RELEASED[0]);
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = 'one' WHERE key = 'schema_version'").run();
    db.close();
    assert.throws(() => openRecording(file), fault('corrupt', /no valid schema version/));
    const other = newFile();
    const o = new Database(other);
    o.exec('CREATE TABLE meta (key TEXT, value TEXT)');
    o.close();
    assert.throws(() => openRecording(other), fault('foreign', /not a dropmon recording/));
  });
});

describe('schema objects dropmon does not write', () => {
  const crafted: [string, string, RegExp][] = [
    [
      'a recursive view in place of a table',
      "DROP TABLE intervals; CREATE VIEW intervals AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n AS id, 1 AS session_id, n AS seq, n AS start_ms, n AS end_ms, 0 AS drops, 0 AS overflow_drops, 0 AS overflow_points, 0 AS lost, 0 AS packets_seen, 0 AS packets_kept, 0 AS counters_unrecorded, 0 AS gap_before FROM r",
      /a view 'intervals' that is not the one dropmon writes/,
    ],
    ['a trigger', "CREATE TRIGGER t AFTER INSERT ON intervals BEGIN DELETE FROM points; END", /a trigger 't' on 'intervals'/],
    ['a view beside the tables', 'CREATE VIEW v AS SELECT * FROM intervals', /a view 'v'/],
    ['a table of another shape', 'DROP TABLE points; CREATE TABLE points (id INTEGER PRIMARY KEY, key TEXT, location TEXT)', /a table 'points' that is not the one/],
    ['a virtual generated column', "ALTER TABLE intervals ADD COLUMN slow TEXT AS (printf('%.*c', 1000000000, 'x'))", /a table 'intervals' that is not the one/],
    ['an extra index', 'CREATE INDEX extra ON intervals (drops)', /an? index 'extra'/],
    ['a missing index', 'DROP INDEX intervals_end', /no index 'intervals_end'/],
  ];
  for (const [what, sql, message] of crafted)
    test(what, () => {
      const file = writtenBy(RELEASED[0]);
      const db = new Database(file);
      db.exec(sql);
      db.close();
      const started = Date.now();
      assert.throws(() => openRecording(file), fault('foreign', message));
      assert.throws(() => new Recorder(file, { source: 'tracefs' }), fault('foreign', message));
      assert.ok(Date.now() - started < 5000, 'refused at once');
    });

  test("SQLite's own statistics (ANALYZE) are fine", () => {
    const file = writtenBy(RELEASED[0]);
    const db = new Database(file);
    db.exec('ANALYZE');
    db.close();
    const r = openRecording(file);
    r.close();
  });
});
