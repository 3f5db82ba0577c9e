/**
 * Bounded connections: a client that sends its headers slowly, or nothing at
 * all, is closed once the header deadline has passed (checked every second,
 * not every 30); connections beyond http.maxConnections are closed as they
 * arrive; one client address holds at most http.eventStreamsPerClient event
 * streams (429 beyond), and a stream outlives the idle and request deadlines
 * (its heartbeat keeps it alive).
 */
import { after, before, describe, test } from 'node:test';
import { patience } from '../helpers/patience.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Served } from './serve-helper.js';

const HEADERS_TIMEOUT_S = 2;
const MAX_CONNECTIONS = 8;
const STREAMS_PER_CLIENT = 2;

/** A connection to the service; `closedAfter` resolves with the ms from connect to close. */
function open(port: number): Promise<{ socket: Socket; closedAfter: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume(); // read what the server sends, or its closing is never seen
    const closedAfter = new Promise<number>((r) => socket.on('close', () => r(Date.now() - t0)));
    socket.once('connect', () => resolve({ socket, closedAfter }));
    socket.once('error', reject);
  });
}

/** An event stream with the token; resolves with its status once the headers are in. */
function stream(port: number, token: string): Promise<{ status: number; close: () => void; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/events', headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.on('data', () => undefined);
      res.on('close', () => (closed = true));
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy(), closed: () => closed });
    });
    req.on('error', (err) => (closed ? undefined : reject(err)));
    req.end();
  });
}

describe('serve: bounded connections', { timeout: 60_000 }, () => {
  let s: Served;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-bounds-'));
    writeFileSync(
      join(dir, 'dropmon.yaml'),
      `http:
  maxConnections: ${MAX_CONNECTIONS}
  headersTimeout: ${HEADERS_TIMEOUT_S}s
  requestTimeout: 3s
  keepAliveTimeout: 1s
  idleTimeout: 2s
  eventStreamsPerClient: ${STREAMS_PER_CLIENT}
`,
    );
    // Monitoring stopped: only the HTTP server is under test.
    s = await new Served(['--config', join(dir, 'dropmon.yaml'), '--stopped', '--no-counters'], { record: false }).ready();
  });
  after(async () => {
    const fin = await s?.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(fin?.code, 0, fin?.stderr);
  });

  test('slow headers and silent connections are closed within the header deadline', async () => {
    const slow = await open(s.port);
    slow.socket.write('GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const drip = setInterval(() => slow.socket.write('X-Slow: 1\r\n'), 500);
    const silent = await open(s.port);
    try {
      // The deadline is checked every second; the rest is slack for a loaded machine (still far
      // below the 30 s a connection lived before the deadlines were checked every second).
      const limit = patience((HEADERS_TIMEOUT_S + 6) * 1000);
      const [slowMs, silentMs] = await Promise.all([slow.closedAfter, silent.closedAfter]);
      assert.ok(slowMs < limit, `a slow-header connection lived ${slowMs} ms`);
      assert.ok(silentMs < limit, `a silent connection lived ${silentMs} ms`);
      assert.ok(slowMs >= HEADERS_TIMEOUT_S * 1000 - 100, `closed only once the deadline passed (${slowMs} ms)`);
    } finally {
      clearInterval(drip);
    }
  });

  test('an idle keep-alive connection is closed after the keep-alive deadline', async () => {
    const c = await open(s.port);
    c.socket.write(`GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${s.token}\r\n\r\n`);
    const ms = await c.closedAfter;
    assert.ok(ms < patience(4000), `it lived ${ms} ms (keep-alive deadline 1 s; Node's default is 5 s)`);
  });

  test(`connections beyond ${MAX_CONNECTIONS} are closed at once; the service answers again afterwards`, async () => {
    const conns = await Promise.all(Array.from({ length: MAX_CONNECTIONS * 3 }, () => open(s.port)));
    // Those admitted live until the header deadline; the others are closed as they arrive.
    const lived = await Promise.all(conns.map((c) => c.closedAfter));
    const early = lived.filter((ms) => ms < HEADERS_TIMEOUT_S * 1000 - 200).length;
    assert.ok(early >= conns.length - MAX_CONNECTIONS, `only ${early} of ${conns.length} closed before the header deadline: ${lived.join(' ')}`);
    assert.ok(early < conns.length, 'some were admitted');
    assert.equal((await s.get('/api/v1/status')).status, 200);
  });

  test(`at most ${STREAMS_PER_CLIENT} event streams per client (429 beyond); streams outlive the idle and request deadlines`, async () => {
    const token = s.token!;
    const first = await Promise.all(Array.from({ length: STREAMS_PER_CLIENT }, () => stream(s.port, token)));
    try {
      assert.deepEqual(first.map((x) => x.status), Array(STREAMS_PER_CLIENT).fill(200));
      const extra = await stream(s.port, token);
      assert.equal(extra.status, 429);
      extra.close();
      // Longer than idleTimeout (2 s) and requestTimeout (3 s).
      await new Promise((r) => setTimeout(r, 4000));
      assert.deepEqual(first.map((x) => x.closed()), Array(STREAMS_PER_CLIENT).fill(false), 'the streams are still open');
      first[0].close();
      await new Promise((r) => setTimeout(r, 300));
      const again = await stream(s.port, token);
      assert.equal(again.status, 200, 'a closed stream frees its place');
      again.close();
    } finally {
      for (const x of first) x.close();
    }
  });
});
