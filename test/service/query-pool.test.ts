/**
 * The range queries' worker threads (service/query-pool.ts): answers as the
 * recording gives them, the concurrency cap and the wait queue (busy), the
 * time limit (the thread is replaced and the next question answered), a
 * thread replaced after its share of questions, a
 * question stopped inside its SQL statement, files that cannot be read
 * answered as failures, and the main thread free while a question runs. A
 * question is slowed inside its statement (testDelayMs), where a query over
 * a large recording spends its time.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import { SCHEMA_VERSION } from '../../src/recording/schema.js';
import { QueryBusyError, QueryFailedError, QueryPool, QueryTimeoutError, slowQueryFromEnv, type PoolLimits } from '../../src/service/query-pool.js';
import type { RecordingQuery } from '../../src/service/recording-queries.js';
import { syntheticInterval } from '../recording/synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'dropmon-query-pool-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2026, 0, 1);
const ALL = { from: 0, to: T0 + 86_400_000 };

/** A recording of 20 intervals of 3 points each. */
function recording(name: string): string {
  const file = join(dir, name);
  const w = new Recorder(file, { source: 'tracefs' });
  for (let s = 1; s <= 20; s++) w.record({ interval: syntheticInterval(s, T0, 1000) });
  w.close();
  return file;
}

const FILE = recording('rec.db');

function pool(limits: Partial<PoolLimits>, slow?: (q: RecordingQuery) => number): QueryPool {
  const l: PoolLimits = { workers: 2, queue: 4, timeoutMs: 10_000, ...limits };
  return new QueryPool(() => l, { testDelayMs: slow ?? (() => 0) });
}

/** The nice value of every thread of this process (Linux keeps one per thread). */
function threadNiceValues(): number[] {
  return readdirSync('/proc/self/task').map((t) => {
    const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

const slowDiagnosis = (ms: number) => (q: RecordingQuery) => (q.kind === 'diagnosis' ? ms : 0);

describe('query pool', () => {
  test('answers as the recording does, on its own thread, at a lower CPU priority', async () => {
    const p = pool({});
    try {
      const rec = openRecording(FILE);
      const direct = { points: rec.topPoints(ALL, 2), drops: rec.totals(ALL).drops };
      const series = rec.reasonsOverTime(ALL, { buckets: 5 });
      rec.close();
      assert.deepEqual(await p.ask(FILE, { kind: 'points', range: ALL, top: 2 }), direct);
      assert.deepEqual(await p.ask(FILE, { kind: 'series', range: ALL, buckets: 5 }), series);
      const d = await p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 });
      assert.equal(d.totals.intervals, 20);
      assert.equal(d.points.length, 3);
      assert.equal(p.threads, 1, 'one question at a time needs one thread');
      const own = getPriority(0);
      if (own < 19) assert.ok(threadNiceValues().includes(Math.min(19, own + 10)), `a thread nicer than the main one (${own}): ${threadNiceValues().join(' ')}`);
    } finally {
      await p.close();
    }
  });

  test('beyond the threads and the queue: busy at once, with when to ask again', async () => {
    const p = pool({ workers: 1, queue: 1 }, slowDiagnosis(1500));
    try {
      const t0 = Date.now();
      const running = p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 });
      const waiting = p.ask(FILE, { kind: 'points', range: ALL, top: 1 });
      const refused = p.ask(FILE, { kind: 'points', range: ALL, top: 1 });
      await assert.rejects(refused, (err: unknown) => err instanceof QueryBusyError && err.retryAfterS >= 1 && err.retryAfterS <= 10);
      assert.ok(Date.now() - t0 < 1000, 'refused at once, not after the running question');
      assert.equal((await running).totals.intervals, 20);
      assert.equal((await waiting).points.length, 1);
      assert.equal(p.threads, 1);
    } finally {
      await p.close();
    }
  });

  test('past its time: the running question is stopped (its thread replaced), a waiting one is refused as busy, the next is answered', async () => {
    // Long enough for a new thread to start on a loaded machine (a few hundred ms).
    const p = pool({ workers: 1, queue: 4, timeoutMs: 2000 }, slowDiagnosis(60_000));
    try {
      const t0 = Date.now();
      const slow = p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 });
      const behind = p.ask(FILE, { kind: 'points', range: ALL, top: 1 });
      await assert.rejects(slow, QueryTimeoutError);
      await assert.rejects(behind, QueryBusyError, 'it waited its whole time behind the slow one');
      assert.ok(Date.now() - t0 < 6000, `answered within the time limit (${Date.now() - t0} ms)`);
      const next = await p.ask(FILE, { kind: 'points', range: ALL, top: 1 });
      assert.equal(next.points.length, 1);
      assert.equal(p.threads, 1, 'the stopped thread is gone, one new one answered');
    } finally {
      await p.close();
    }
  });

  test('a stopped question ends inside its SQL statement: its thread exits at once, and so does closing the pool', async () => {
    const p = pool({ workers: 2, timeoutMs: 500 }, slowDiagnosis(60_000));
    const slow = p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 });
    await assert.rejects(slow, QueryTimeoutError);
    const t0 = Date.now();
    while (p.threads > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.threads, 0, 'the stopped thread exited');
    assert.ok(Date.now() - t0 < 2000, `it took ${Date.now() - t0} ms, not the 60 s the statement would have run`);
    const running = p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 });
    running.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const t1 = Date.now();
    await p.close();
    assert.ok(Date.now() - t1 < 2000, `closed in ${Date.now() - t1} ms with a question inside SQLite`);
    await assert.rejects(running, QueryBusyError);
  });

  test('a newer dropmon\'s recording, a damaged one and no database at all: failures with the fault, and the thread answers on', async () => {
    const newer = recording('newer.db');
    const db = new Database(newer);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const notDb = join(dir, 'not-a-db.db');
    writeFileSync(notDb, Buffer.alloc(8192, 0x5a));
    const damaged = recording('damaged.db');
    const bytes = Buffer.alloc(4096, 0xff);
    // Every page after the first (the header and schema) overwritten: the tables cannot be read.
    const h = openSync(damaged, 'r+');
    for (let off = 4096; off < statSync(damaged).size; off += 4096) writeSync(h, bytes, 0, bytes.length, off);
    closeSync(h);
    const p = pool({ workers: 1 });
    try {
      const fault = (f: string) => (err: unknown) => err instanceof QueryFailedError && err.failure.fault === f && err.failure.message.length > 0;
      await assert.rejects(p.ask(newer, { kind: 'points', range: ALL, top: 1 }), fault('newer'));
      await assert.rejects(p.ask(notDb, { kind: 'points', range: ALL, top: 1 }), fault('not_a_database'));
      await assert.rejects(p.ask(damaged, { kind: 'diagnosis', range: ALL, rows: 10 }), (err: unknown) => err instanceof QueryFailedError && ['corrupt', 'foreign'].includes(err.failure.fault ?? ''));
      assert.equal((await p.ask(FILE, { kind: 'points', range: ALL, top: 1 })).points.length, 1);
    } finally {
      await p.close();
    }
  });

  test('a thread is replaced after its share of questions; every question is answered, also many at once', async () => {
    const p = new QueryPool(() => ({ workers: 2, queue: 16, timeoutMs: 10_000 }), { questionsPerThread: 3, testDelayMs: () => 0 });
    try {
      for (let i = 0; i < 7; i++) assert.equal((await p.ask(FILE, { kind: 'points', range: ALL, top: 2 })).drops > 0, true);
      assert.equal(p.started, 3, 'questions 1-3, 4-6 and 7 on three threads in turn');
      const many = await Promise.all(Array.from({ length: 12 }, () => p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 })));
      assert.ok(many.every((d) => d.totals.intervals === 20));
      assert.ok(p.threads <= 2, `${p.threads} threads at once`);
    } finally {
      await p.close();
    }
    // One thread allowed and worn after each answer: the second question can only go on once the first thread has exited.
    const one = new QueryPool(() => ({ workers: 1, queue: 4, timeoutMs: 10_000 }), { questionsPerThread: 1, testDelayMs: () => 0 });
    try {
      const both = await Promise.all([one.ask(FILE, { kind: 'points', range: ALL, top: 1 }), one.ask(FILE, { kind: 'points', range: ALL, top: 1 })]);
      assert.deepEqual(both[0], both[1]);
      assert.equal(one.started, 2);
    } finally {
      await one.close();
    }
  });

  test('the main thread runs on while a question takes seconds', async () => {
    const p = pool({ workers: 1 }, slowDiagnosis(1500));
    try {
      const lateness: number[] = [];
      let last = Date.now();
      const tick = setInterval(() => {
        const now = Date.now();
        lateness.push(now - last - 50);
        last = now;
      }, 50);
      await p.ask(FILE, { kind: 'diagnosis', range: ALL, rows: 10 });
      clearInterval(tick);
      assert.ok(lateness.length >= 15, `${lateness.length} ticks in 1.5 s`);
      // Generous: the machine may be loaded; a blocked thread would be ~1500 ms late.
      assert.ok(Math.max(...lateness) < 500, `ticks late by up to ${Math.max(...lateness)} ms`);
    } finally {
      await p.close();
    }
  });

  test('DROPMON_TEST_SLOW_QUERY slows one kind of question, nothing when unset or malformed', () => {
    const q: RecordingQuery = { kind: 'series', range: ALL, buckets: 1 };
    assert.equal(slowQueryFromEnv({}), undefined);
    assert.equal(slowQueryFromEnv({ DROPMON_TEST_SLOW_QUERY: 'series' }), undefined);
    assert.equal(slowQueryFromEnv({ DROPMON_TEST_SLOW_QUERY: 'series:250' })?.(q), 250);
    assert.equal(slowQueryFromEnv({ DROPMON_TEST_SLOW_QUERY: 'points:250' })?.(q), 0);
  });
});
