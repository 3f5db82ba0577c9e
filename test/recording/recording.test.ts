/**
 * Reading a recording that came from anywhere: `dropmon report` opens it
 * read-only (the file is not changed, nothing is left beside it) and refuses
 * schema objects dropmon does not write before running any query, so a
 * crafted recording (a recursive view in place of a table, a trigger) ends
 * at once with a clear error instead of hanging.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import { RecordingError } from '../../src/recording/schema.js';
import { Cli } from './cli.js';
import { syntheticInterval } from './synthetic.js';

const root = mkdtempSync(join(tmpdir(), 'dropmon-read-'));
after(() => rmSync(root, { recursive: true, force: true }));
let serial = 0;

/** A recording of 5 intervals alone in a new folder, with `sql` run on it afterwards. */
function recording(sql?: string): string {
  const dir = mkdtempSync(join(root, `r${serial++}-`));
  const file = join(dir, 'rec.db');
  const w = new Recorder(file, { source: 'tracefs' });
  for (let s = 1; s <= 5; s++) w.record({ interval: syntheticInterval(s, Date.UTC(2026, 0, 1), 1000) });
  w.close();
  if (sql) {
    const db = new Database(file);
    db.exec(sql);
    db.close();
  }
  return file;
}

/** `dropmon report FILE`, killed if it runs longer than `ms`. */
async function report(file: string, ms = 20_000): Promise<{ code: number | null; stderr: string; stdout: string; ms: number }> {
  const t0 = Date.now();
  const cli = new Cli(['report', file]);
  const timer = setTimeout(() => void cli.stop(0), ms);
  try {
    const code = await cli.done;
    return { code, stderr: cli.stderr, stdout: cli.stdout, ms: Date.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

const RECURSIVE_VIEW = `DROP TABLE intervals;
  CREATE VIEW intervals AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
  SELECT n AS id, 1 AS session_id, n AS seq, n AS start_ms, n AS end_ms, 0 AS drops, 0 AS overflow_drops, 0 AS overflow_points,
    0 AS lost, 0 AS packets_seen, 0 AS packets_kept, 0 AS counters_unrecorded, 0 AS gap_before FROM r`;

describe('dropmon report on crafted recordings', () => {
  test('a recursive view in place of the intervals table: refused at once, not a hang', async () => {
    const file = recording(RECURSIVE_VIEW);
    const r = await report(file);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /rec\.db has a view 'intervals' that is not the one dropmon writes: dropmon does not write it, so the recording is not read/);
    assert.equal(r.stdout, '');
  });

  test('a trigger, and a view beside the tables', async () => {
    for (const [sql, said] of [
      ['CREATE TRIGGER wipe AFTER DELETE ON sessions BEGIN DELETE FROM intervals; END', /a trigger 'wipe' on 'sessions'/],
      ['CREATE VIEW totals AS SELECT count(*) FROM intervals', /a view 'totals'/],
    ] as const) {
      const r = await report(recording(sql));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, said);
    }
  });

  test('the reader refuses the same before any query (a RecordingError, fault "foreign")', () => {
    assert.throws(
      () => openRecording(recording(RECURSIVE_VIEW)),
      (e: unknown) => e instanceof RecordingError && e.fault === 'foreign',
    );
  });
});

describe('read-only', () => {
  test('a report changes nothing: same bytes, same time, nothing beside the file', async () => {
    const file = recording();
    const dir = join(file, '..');
    const bytes = readFileSync(file);
    const mtime = statSync(file).mtimeMs;
    const r = await report(file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /5 intervals|intervals/);
    assert.deepEqual(readFileSync(file), bytes);
    assert.equal(statSync(file).mtimeMs, mtime);
    assert.deepEqual(readdirSync(dir), ['rec.db']);
  });
});
