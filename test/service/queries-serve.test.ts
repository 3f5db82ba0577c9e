/**
 * The range queries of `dropmon serve` never hold up the monitor: they read
 * the recording on worker threads, and the pipeline's intervals stay on time
 * while one takes 10 s. Bounded: past the threads and the queue, 503 with
 * Retry-After; past the time limit, 504, and the next query is answered. A
 * recording of a newer dropmon is answered from memory, saying why; a
 * damaged one is a JSON error and the service stays up. Answers to the
 * public keep no kernel address.
 *
 * A query is made slow by DROPMON_TEST_SLOW_QUERY (query-pool.ts; here the
 * series in the first part, the diagnosis in the second): its thread holds
 * the answer back as a query over a large recording would, so the test needs
 * neither such a recording nor the minutes to build it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Recorder } from '../../src/recording/recorder.js';
import { SCHEMA_VERSION } from '../../src/recording/schema.js';
import { kernelSkipReason } from '../helpers/env.js';
import { syntheticInterval } from '../recording/synthetic.js';
import { Served, type Reply } from './serve-helper.js';

/** A recording of the last minute: 60 intervals of 3 points, at kernel addresses. */
function writeRecording(file: string): void {
  const t0 = Date.now() - 61_000;
  const w = new Recorder(file, { source: 'tracefs' });
  for (let s = 1; s <= 60; s++) w.record({ interval: syntheticInterval(s, t0, 1000) });
  w.close();
}

describe('serve: range queries bounded (503, 504), newer and damaged recordings', { timeout: 90_000 }, () => {
  let s: Served;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-queries-serve-'));
    writeFileSync(join(dir, 'dropmon.yaml'), 'http:\n  readOnlyPublic: true\nqueries:\n  workers: 1\n  queue: 1\n  timeout: 3s\n');
    // Monitoring stopped: the recording is the test's own, and only the queries are under test.
    s = await new Served(['--config', join(dir, 'dropmon.yaml'), '--stopped', '--no-counters'], {
      env: { ...process.env, DROPMON_TEST_SLOW_QUERY: 'series:6000' },
    }).ready();
    writeRecording(s.db);
  });
  let stopped = false;
  after(async () => {
    const fin = stopped ? undefined : await s?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (fin) assert.equal(fin.code, 0, fin.stderr);
  });

  test('answered from the recording; the public sees no kernel address', async () => {
    const r = await s.get('/api/v1/points?from=-1h&top=5');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.source, 'recording');
    assert.equal(r.json.drops, 60 * 30);
    assert.equal(r.json.points.length, 3);
    assert.match(r.json.points[0].location, /^0xffffffff81/, 'the administrator sees addresses');
    const token = s.token;
    s.token = undefined;
    try {
      for (const path of ['/api/v1/points?from=-1h&top=5', '/api/v1/diagnosis?from=-1h']) {
        const pub = await s.get(path);
        assert.equal(pub.status, 200, pub.text);
        assert.equal(pub.json.source, 'recording');
        assert.doesNotMatch(pub.text, /0xffffffff/, 'no kernel address for the public');
      }
    } finally {
      s.token = token;
    }
  });

  test('past the thread and the queue: 503 with Retry-After at once; past the time limit: 504, and the next query is answered', async () => {
    const t0 = Date.now();
    const slow = s.get('/api/v1/series?from=-1h');
    await new Promise((r) => setTimeout(r, 200)); // the slow one holds the only thread
    const waiting = s.get('/api/v1/points?from=-1h');
    await new Promise((r) => setTimeout(r, 200)); // and this one the only place in the queue
    const refused = await s.get('/api/v1/diagnosis?from=-1h');
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.json.error, /too many range queries/);
    assert.ok(Number(refused.headers['retry-after']) >= 1 && Number(refused.headers['retry-after']) <= 4, `Retry-After: ${String(refused.headers['retry-after'])}`);
    assert.ok(Date.now() - t0 < 2000, 'refused at once');
    const timedOut: Reply = await slow;
    assert.equal(timedOut.status, 504, timedOut.text);
    assert.match(timedOut.json.error, /longer than 3 s/);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 2900 && elapsed < 5000, `504 after the 3 s limit (${elapsed} ms)`);
    // The waiting one spent nearly all of its own 3 s behind the slow one: answered by the new thread,
    // refused as busy, or stopped while that thread started; each one says so.
    const w = await waiting;
    assert.ok(w.status === 200 || w.status === 503 || (w.status === 504 && /waited for a thread/.test(w.json.error)), `${w.status} ${w.text}`);
    const next = await s.get('/api/v1/points?from=-1h');
    assert.equal(next.status, 200, next.text);
    assert.equal(next.json.source, 'recording');
  });

  test('a newer dropmon\'s recording: answered from memory, saying why', async () => {
    const db = new Database(s.db);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    for (const path of ['/api/v1/points?from=-1h', '/api/v1/diagnosis?from=-1h']) {
      const r = await s.get(path);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.source, 'memory');
      assert.match(r.json.why, new RegExp(`schema version ${SCHEMA_VERSION + 1}.*answered from the intervals in memory`));
    }
  });

  test('a damaged recording: a JSON error, and the service answers on', async () => {
    rmSync(s.db, { force: true });
    writeRecording(s.db);
    const h = openSync(s.db, 'r+');
    const junk = Buffer.alloc(4096, 0xff);
    for (let off = 4096; off < statSync(s.db).size; off += 4096) writeSync(h, junk, 0, junk.length, off);
    closeSync(h);
    const r = await s.get('/api/v1/points?from=-1h');
    assert.equal(r.status, 500, r.text);
    assert.match(r.json.error, /^the recording cannot be read: /);
    writeFileSync(s.db, 'not a database at all, '.repeat(400));
    const n = await s.get('/api/v1/diagnosis?from=-1h');
    assert.equal(n.status, 500, n.text);
    assert.match(n.json.error, /not an SQLite database/);
    const status = await s.get('/api/v1/status');
    assert.equal(status.status, 200, status.text);
    assert.equal(s.proc.child.exitCode, null, 'still running');
  });

  test('stopped while a query runs inside SQLite: the service exits at once, not when the query would have ended', async () => {
    rmSync(s.db, { force: true });
    writeRecording(s.db);
    const running = s.get('/api/v1/series?from=-1h').catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    stopped = true;
    const fin = await s.stop();
    const ms = Date.now() - t0;
    assert.equal(fin.code, 0, fin.stderr);
    assert.ok(ms < 3000, `exited ${ms} ms after SIGTERM (the query had 5.5 s to go)`);
    await running;
  });
});

const INTERVAL_MS = 200;
const QUERY_MS = 10_000;

interface IntervalJson {
  start: number;
  end: number;
  durationMs: number;
}

/** How late each interval closed: setInterval runs the next tick INTERVAL_MS after this one ran, so a late tick makes a longer interval. */
function lateness(intervals: readonly IntervalJson[]): number[] {
  return intervals.map((i) => i.durationMs - INTERVAL_MS);
}

describe('serve: a 10 s query leaves the intervals on time', { skip: kernelSkipReason(), timeout: 120_000 }, () => {
  let s: Served;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-queries-late-'));
    writeFileSync(join(dir, 'dropmon.yaml'), 'queries:\n  timeout: 20s\n');
    s = await new Served(['--config', join(dir, 'dropmon.yaml'), '--interval', String(INTERVAL_MS / 1000), '--no-counters'], {
      env: { ...process.env, DROPMON_TEST_SLOW_QUERY: `diagnosis:${QUERY_MS}` },
    }).ready();
  });
  after(async () => {
    const fin = await s?.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(fin?.code, 0, fin?.stderr);
  });

  test(`intervals of ${INTERVAL_MS} ms close on time (at most 100 ms late, or twice as late as without the query) while a query takes ${QUERY_MS / 1000} s`, async () => {
    // Without a query first: how late intervals close on this machine as it is now.
    await s.until('the recording and 3 s of intervals', async () => ((await s.get('/api/v1/intervals?limit=1000')).json.intervals.length >= 15 ? true : undefined), 20_000);
    const queryStart = Date.now();
    const answer = await s.get('/api/v1/diagnosis?from=-1h');
    const queryEnd = Date.now();
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.source, 'recording', 'the recording was read, on a worker thread');
    assert.ok(queryEnd - queryStart >= QUERY_MS - 100, `the query took ${queryEnd - queryStart} ms`);
    const all = (await s.get('/api/v1/intervals?limit=1000')).json.intervals as IntervalJson[];
    // The first interval of a run starts with the source: it says nothing of the clock.
    const baseline = lateness(all.slice(1).filter((i) => i.end <= queryStart));
    const during = lateness(all.filter((i) => i.start >= queryStart && i.end <= queryEnd));
    const worstBaseline = Math.max(...baseline);
    const worst = Math.max(...during);
    const allowed = Math.max(100, 2 * worstBaseline);
    process.stderr.write(
      `# intervals: ${baseline.length} before the query, late by up to ${worstBaseline} ms; ${during.length} during it, late by up to ${worst} ms (mean ${(during.reduce((a, b) => a + b, 0) / during.length).toFixed(1)} ms); allowed ${allowed} ms\n`,
    );
    assert.ok(baseline.length >= 10, `${baseline.length} intervals before the query`);
    assert.ok(during.length >= (QUERY_MS / INTERVAL_MS) * 0.8, `${during.length} intervals closed during the ${QUERY_MS / 1000} s query`);
    assert.ok(worst <= allowed, `an interval closed ${worst} ms late during the query (allowed ${allowed} ms; ${worstBaseline} ms without it)`);
  });
});
