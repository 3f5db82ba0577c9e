/**
 * The service keeps monitoring whatever is wrong with its recording: a file
 * that is not a database is moved aside (said once, counted in /metrics)
 * and a new recording starts; a newer dropmon's recording is left untouched
 * and the service runs without recording; a recording that cannot be
 * created yet is waited for. In every case the service serves and closes
 * intervals.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { kernelSkipReason } from '../helpers/env.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import { SCHEMA_VERSION } from '../../src/recording/schema.js';
import { Served } from './serve-helper.js';

const SKIP = kernelSkipReason();
const root = mkdtempSync(join(tmpdir(), 'dropmon-service-rec-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** `dropmon serve` recording to `file` (the last --record wins over the helper's). */
function serve(file: string): Served {
  return new Served(['--source', 'tracefs', '--interval', '0.5', '--no-counters', '--record', file]);
}

async function intervalsClosed(s: Served, atLeast: number): Promise<void> {
  await s.until(`${atLeast} intervals`, async () => ((await s.get('/api/v1/status')).json.intervals >= atLeast ? true : undefined));
}

describe('serve: a recording that cannot be used never stops monitoring', { skip: SKIP }, () => {
  test('not a database: moved aside, counted in /metrics, a new recording', async () => {
    const dir = mkdtempSync(join(root, 'junk-'));
    const file = join(dir, 'dropmon.db');
    writeFileSync(file, 'not a database\n'.repeat(300));
    const s = await serve(file).ready();
    try {
      await intervalsClosed(s, 2);
      const st = (await s.get('/api/v1/status')).json;
      assert.equal(st.state, 'running');
      assert.equal(st.recording.state, 'recording');
      const metrics = (await s.get('/metrics')).text;
      assert.match(metrics, /^dropmon_recording_reset_total\{why="not_a_database"\} 1$/m);
      assert.match(metrics, /^dropmon_recording_reset_total\{why="corrupt"\} 0$/m);
      const moved = readdirSync(dir).filter((f) => f.startsWith('dropmon.db.broken-'));
      assert.equal(moved.length, 1, readdirSync(dir).join(' '));
      assert.equal(s.proc.stderr.match(/moved it to/g)?.length, 1, s.proc.stderr);
    } finally {
      const fin = await s.stop();
      assert.equal(fin.code, 0, fin.stderr);
    }
    const r = openRecording(file);
    try {
      assert.ok(r.totals().intervals >= 2);
    } finally {
      r.close();
    }
  });

  test("a newer dropmon's recording: untouched, the service runs without recording", async () => {
    const dir = mkdtempSync(join(root, 'newer-'));
    const file = join(dir, 'dropmon.db');
    new Recorder(file, { source: 'tracefs' }).close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    const before = readFileSync(file);
    const s = await serve(file).ready();
    try {
      await intervalsClosed(s, 2);
      const st = (await s.get('/api/v1/status')).json;
      assert.equal(st.state, 'running');
      assert.equal(st.recording.state, 'off');
      assert.match(s.proc.stderr, /left as it is .*monitoring goes on without recording/);
    } finally {
      const fin = await s.stop();
      assert.equal(fin.code, 0, fin.stderr);
    }
    assert.deepEqual(readFileSync(file), before);
    assert.deepEqual(readdirSync(dir), ['dropmon.db']);
  });

  test('a recording that cannot be created: the service runs, intervals are counted as unwritten', async () => {
    const dir = mkdtempSync(join(root, 'blocked-'));
    writeFileSync(join(dir, 'state'), '');
    const s = await serve(join(dir, 'state', 'dropmon.db')).ready();
    try {
      await intervalsClosed(s, 3);
      const st = (await s.get('/api/v1/status')).json;
      assert.equal(st.state, 'running');
      assert.equal(st.recording.state, 'waiting');
      assert.ok(st.recording.unwritten >= 2, JSON.stringify(st.recording));
    } finally {
      const fin = await s.stop();
      assert.equal(fin.code, 0, fin.stderr);
    }
  });
});
