/**
 * `dropmon serve` end to end: the real service as a child process, real drops
 * caused in a network namespace (UDP to a closed port: NO_SOCKET at
 * __udp4_lib_rcv; frames of an unknown EtherType: UNHANDLED_PROTO), and the
 * HTTP API, the event stream and /metrics checked against what was caused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason, netdmPresent } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { runDropgen } from '../helpers/dropgen.js';
import { Served, readEvents } from './serve-helper.js';


const SKIP = kernelSkipReason();

interface Point {
  function: string | null;
  symbol: string;
  reason: string;
  count: number;
  summary: string;
  benign: string;
}
interface Interval {
  drops: number;
  points: Point[];
}

function noSocketDrops(i: Interval): number {
  return i.points.filter((p) => p.reason === 'NO_SOCKET' && p.symbol.startsWith('__udp4_lib_rcv')).reduce((n, p) => n + p.count, 0);
}

function promtool(text: string): string {
  try {
    return execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: string };
    if (e.code === 'ENOENT') return 'promtool missing';
    throw new Error(`promtool check metrics failed: ${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

describe('serve: API with real drops', { skip: SKIP }, () => {
  let s: Served;
  let ns: TestNetns;
  before(async () => {
    ns = new TestNetns('api');
    s = await new Served(['--interval', '0.5']).ready();
  });
  after(async () => {
    const fin = await s?.stop('SIGTERM');
    ns?.delete();
    assert.equal(fin?.code, 0, fin?.stderr);
  });

  test('status says running, with version, kernel, source and recording', async () => {
    const r = await s.get('/api/v1/status');
    assert.equal(r.status, 200);
    assert.equal(r.json.state, 'running');
    assert.match(r.json.version, /^\d+\.\d+\.\d+/);
    assert.ok(r.json.kernel.length > 0 && r.json.hostname.length > 0);
    assert.ok(['bpf', 'tracefs', 'netdm'].includes(r.json.source), r.json.source);
    assert.equal(r.json.intervalMs, 500);
    assert.equal(r.json.recording.file, s.db);
    assert.equal(r.json.counters, true);
    assert.match(r.headers['content-type'] as string, /^application\/json/);
  });

  test('the drops caused reach the event stream, the points, the series, the diagnosis and /metrics', async () => {
    let seen = 0;
    const stream = s.events(
      '/api/v1/events',
      (ev, data) => {
        if (ev === 'interval') seen += noSocketDrops(data as Interval);
        return seen >= 300;
      },
      15_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    const sent = runDropgen(['-m', 'noport', '-n', '300', '-p', '9'], ns.name);
    assert.equal(sent.sent, 300);
    const got = await stream;
    assert.equal(got.all[0].event, 'state', 'a state event first');
    assert.equal((got.all[0].data as { state: string }).state, 'running');
    const withDrops = got.all.filter((e) => e.event === 'interval' && noSocketDrops(e.data as Interval) > 0).map((e) => e.data as Interval);
    const p = withDrops[0].points.find((x) => x.reason === 'NO_SOCKET')!;
    assert.equal(p.function, '__udp4_lib_rcv');
    assert.match(p.summary, /socket/i, 'the reason is explained');
    assert.equal(p.benign, 'no');
    assert.ok(seen >= 300);

    const points = await s.until('points from the recording', async () => {
      const r = await s.get('/api/v1/points?from=-5m&top=10');
      assert.equal(r.status, 200);
      const q = (r.json.points as Point[]).find((x) => x.reason === 'NO_SOCKET' && x.symbol.startsWith('__udp4_lib_rcv'));
      return q && q.count >= 300 ? r.json : undefined;
    });
    assert.equal(points.source, 'recording');

    const series = await s.get(`/api/v1/series?from=${Date.now() - 60_000}&to=${Date.now()}&buckets=10`);
    assert.equal(series.status, 200);
    const total = (series.json.buckets as { reasons: Record<string, number> }[]).reduce((n, b) => n + (b.reasons.NO_SOCKET ?? 0), 0);
    assert.ok(total >= 300, `series NO_SOCKET ${total}`);
    assert.ok(series.json.buckets.length <= 10);

    const diag = await s.get('/api/v1/diagnosis?from=-5m');
    assert.equal(diag.status, 200);
    assert.ok((diag.json.findings as { key: string }[]).some((f) => f.key === 'NO_SOCKET/udp-closed-port'), JSON.stringify(diag.json.findings));
    // Where the source tells the namespace (BPF), a finding names the one the drops were made in
    // (other programs' drops are findings of their own namespaces).
    if ((await s.get('/api/v1/status')).json.source === 'bpf')
      await s.until(`a NO_SOCKET finding in ${ns.name}`, async () => {
        const r = await s.get('/api/v1/diagnosis?from=-5m');
        return (r.json.findings as { key: string; netns_name?: string }[]).find((f) => f.key === 'NO_SOCKET/udp-closed-port' && f.netns_name === ns.name);
      });

    const m = await s.get('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    // One series per namespace (label netns): other programs' drops of the same reason may be series of their own.
    const lines = m.text.split('\n').filter((l) => l.startsWith('dropmon_drops_total{reason="NO_SOCKET",location="__udp4_lib_rcv"'));
    const metricTotal = lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    assert.ok(metricTotal >= 300, `metrics lines: ${lines.join('; ')}`);
    assert.match(m.text, /^dropmon_source_up 1$/m);
    assert.match(m.text, /^dropmon_intervals_total \d+$/m);
    assert.match(m.text, /^process_resident_memory_bytes \d+/m);
    const check = promtool(m.text);
    assert.notEqual(check, 'promtool missing', 'promtool (Debian package prometheus) is installed by scripts/setup.sh');
  });

  test('intervals: the latest from memory, at most limit', async () => {
    const r = await s.get('/api/v1/intervals?limit=3');
    assert.equal(r.status, 200);
    assert.ok(r.json.intervals.length >= 1 && r.json.intervals.length <= 3);
    const last = r.json.intervals.at(-1);
    for (const k of ['seq', 'start', 'end', 'durationMs', 'drops', 'lost', 'lostByCause', 'points', 'overflow', 'counters']) assert.ok(k in last, k);
    assert.equal((await s.get('/api/v1/intervals?limit=0')).status, 400);
    assert.equal((await s.get('/api/v1/intervals?limit=abc')).status, 400);
  });

  test('counters: the non-zero drop counters and the last interval moves', async () => {
    const r = await s.get('/api/v1/counters');
    assert.equal(r.status, 200);
    assert.equal(r.json.enabled, true);
    assert.ok(Array.isArray(r.json.counters) && Array.isArray(r.json.moved));
    for (const c of r.json.counters) assert.ok(c.value !== 0 && c.name && c.layer, JSON.stringify(c));
  });

  test('explain: exact, fuzzy, 404', async () => {
    const e = await s.get('/api/v1/explain/NO_SOCKET');
    assert.equal(e.status, 200);
    assert.equal(e.json.exact, true);
    assert.equal(e.json.entry.kind, 'reason');
    assert.ok(e.json.entry.summary && Array.isArray(e.json.entry.fix));
    const c = await s.get(`/api/v1/explain/${encodeURIComponent('udp:noports')}`);
    assert.equal(c.json.entry.name, 'Udp:NoPorts');
    const f = await s.get('/api/v1/explain/rcvbuf');
    assert.equal(f.status, 200);
    assert.equal(f.json.exact, false);
    assert.equal((await s.get('/api/v1/explain/zzqqxxyy')).status, 404);
    assert.equal((await s.get('/api/v1/explain/%E0%A4%A')).status, 400);
  });

  test('bad parameters and unknown routes are JSON errors with 4xx', async () => {
    for (const [path, status] of [
      ['/api/v1/points?from=yesterday', 400],
      ['/api/v1/points?top=0', 400],
      ['/api/v1/points?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z', 400],
      ['/api/v1/series?buckets=1000000', 400],
      ['/api/v1/nothing', 404],
    ] as const) {
      const r = await s.get(path);
      assert.equal(r.status, status, path);
      assert.equal(typeof r.json.error, 'string', path);
    }
    assert.equal((await s.call('DELETE', '/api/v1/status')).status, 405);
  });

  test('config: get, change filters (applied by the kernel source), refuse bad input with the key', async () => {
    const g = await s.get('/api/v1/config');
    assert.equal(g.status, 200);
    assert.deepEqual(g.json.filters, { reasons: [], protocols: [], locations: [] });
    assert.equal(g.json.token, null);

    for (const [body, re, status] of [
      [{ filters: { reasons: ['NO_SUCH_REASON'] } }, /filters\.reasons: unknown drop reason/, 400],
      [{ filters: { protocols: ['tcp'] } }, /filters\.protocols\[0\]: unknown protocol/, 400],
      [{ filters: { locations: ['no_such_function_xyz'] } }, /filters\.locations:/, 400],
      [{ intervalMs: 5 }, /intervalMs: must be a whole number/, 400],
      [{ listen: '0.0.0.0:1' }, /listen: cannot be changed at run time/, 400],
      [{ bogus: 1 }, /bogus: cannot be changed/, 400],
      ['{"filters": ', /not valid JSON/, 400],
      ['x'.repeat(70_000), /larger than/, 413],
    ] as const) {
      const r = await s.call('PUT', '/api/v1/config', body);
      assert.equal(r.status, status, JSON.stringify(body).slice(0, 80));
      assert.match(r.json.error, re);
    }
    if (!netdmPresent()) {
      // A valid change the host cannot carry out: refused, and the running source goes on.
      const netdm = await s.call('PUT', '/api/v1/config', { source: 'netdm' });
      assert.equal(netdm.status, 409, netdm.text);
      assert.match(netdm.json.error, /NET_DM/);
      assert.equal((await s.get('/api/v1/config')).json.source, 'auto');
    }
    const wrongType = await s.call('PUT', '/api/v1/config', '{"counters": true}', { 'content-type': 'text/plain' });
    assert.equal(wrongType.status, 415);
    assert.equal((await s.get('/api/v1/status')).json.state, 'running', 'bad requests leave it running');

    const states: string[] = [];
    const stateEvent = s.events('/api/v1/events', (ev, d) => {
      if (ev === 'state') states.push((d as { why: string }).why);
      return ev === 'state' && (d as { why: string }).why === 'config';
    });
    await new Promise((r) => setTimeout(r, 200));
    const put = await s.call('PUT', '/api/v1/config', { filters: { reasons: ['UNHANDLED_PROTO'] } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.json.filters.reasons, ['UNHANDLED_PROTO']);
    await stateEvent;
    // Only UNHANDLED_PROTO gets through now: NO_SOCKET drops caused now are not shown.
    let unhandled = 0;
    let noSocket = 0;
    const stream = s.events(
      '/api/v1/events',
      (ev, data) => {
        if (ev !== 'interval') return false;
        const i = data as Interval;
        noSocket += noSocketDrops(i);
        unhandled += i.points.filter((p) => p.reason === 'UNHANDLED_PROTO').reduce((n, p) => n + p.count, 0);
        return unhandled >= 100;
      },
      15_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    runDropgen(['-m', 'noport', '-n', '200', '-p', '9'], ns.name);
    runDropgen(['-m', 'ethproto', '-n', '100'], ns.name);
    const got = await stream;
    assert.equal(noSocket, 0, 'filtered out');
    for (const e of got.all) if (e.event === 'interval') for (const p of (e.data as Interval).points) assert.equal(p.reason, 'UNHANDLED_PROTO');
    const back = await s.call('PUT', '/api/v1/config', { filters: { reasons: [] } });
    assert.deepEqual(back.json.filters.reasons, []);
  });

  test('stop and start: state, event, /metrics source_up', async () => {
    const ev = s.events('/api/v1/events', (e, d) => e === 'state' && (d as { state: string }).state === 'stopped');
    await new Promise((r) => setTimeout(r, 200));
    const stop = await s.call('POST', '/api/v1/stop');
    assert.equal(stop.status, 200);
    assert.equal(stop.json.state, 'stopped');
    await ev;
    assert.equal((await s.get('/api/v1/status')).json.state, 'stopped');
    assert.match((await s.get('/metrics')).text, /^dropmon_source_up 0$/m);
    assert.equal((await s.call('POST', '/api/v1/stop')).json.state, 'stopped', 'stopping twice is fine');
    const start = await s.call('POST', '/api/v1/start');
    assert.equal(start.status, 200, start.text);
    assert.equal(start.json.state, 'running');
    assert.match((await s.get('/metrics')).text, /^dropmon_source_up 1$/m);
  });

  test('browsers: nothing for another origin, read or write (DNS rebinding: see auth.test.ts)', async () => {
    const cross = await s.call('POST', '/api/v1/stop', undefined, { origin: 'http://evil.example' });
    assert.equal(cross.status, 403);
    assert.equal((await s.get('/api/v1/status', { origin: 'http://evil.example' })).status, 403);
    const same = await s.call('POST', '/api/v1/start', undefined, { origin: `http://127.0.0.1:${s.port}` });
    assert.equal(same.status, 200);
    assert.equal((await s.get('/api/v1/status')).json.state, 'running');
  });

  test('static files of the dashboard: types, no traversal', async () => {
    const index = await s.get('/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(index.text, /<html/i);
    assert.ok(index.headers['content-security-policy']);
    const js = await s.get('/app.js');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    const css = await s.get('/style.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    for (const p of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/.git', '/web/index.html', '/index.html/', '/nothere.js', '/%00.js'])
      assert.equal((await s.get(p)).status, 404, p);
  });
});

describe('serve: a token beyond loopback', { skip: SKIP }, () => {
  test('listening beyond loopback without a token is refused', async () => {
    const s = new Served(['--listen', '0.0.0.0:0'], { record: false });
    const fin = await s.proc.finished();
    assert.equal(fin.code, 2, fin.stderr);
    assert.match(fin.stderr, /accepts connections from other hosts, and no token is set/);
    await s.stop();
  });

  test('with a token: 401 without it, 200 with it; ?token= only for the event stream; static files open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropmon-token-'));
    const token = 'a1b2c3d4e5f6a7b8c9d0e1f2';
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    const s = await new Served(['--listen', '0.0.0.0:0', '--token-file', join(dir, 'token'), '--no-counters'], { record: false }).ready();
    try {
      s.token = undefined;
      for (const p of ['/api/v1/status', '/metrics', '/api/v1/events', `/api/v1/status?token=${token}`]) assert.equal((await s.get(p)).status, 401, p);
      assert.equal((await s.get('/api/v1/status', { authorization: 'Bearer wrong-token-wrong-token' })).status, 401);
      assert.equal((await s.get('/api/v1/status', { authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await s.get('/metrics', { authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await s.get('/')).status, 200, 'the page loads and asks for the token');
      const ev = await readEvents(s.port, `/api/v1/events?token=${token}`, (e) => e === 'state');
      assert.equal(ev.status, 200);
      assert.equal((await readEvents(s.port, '/api/v1/events?token=nope', () => true)).status, 401);
    } finally {
      const fin = await s.stop();
      rmSync(dir, { recursive: true, force: true });
      assert.equal(fin.code, 0, fin.stderr);
    }
  });
});
