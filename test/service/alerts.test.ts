/**
 * Alert rules: hysteresis and durations on synthetic intervals (pure logic),
 * and webhook delivery to a real HTTP receiver in the test: JSON body,
 * retries with backoff after failures, a bounded queue that never blocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { DropPoint, IntervalReport } from '../../src/core/interval.js';
import { AlertEngine, WebhookNotifier, alertLine, ruleRate, type AlertEvent } from '../../src/service/alerts.js';
import type { AlertRule } from '../../src/service/config.js';
import type { CounterDelta } from '../../src/core/counter.js';

function point(reasonName: string, count: number, ifindex?: number): DropPoint {
  return { location: 0xffffffff81000000n, reason: 2, reasonName, protocol: 0x800, origin: 'software', count, ...(ifindex !== undefined ? { ifindex } : {}) };
}

let t = 1_000_000;
function interval(points: DropPoint[], counters: CounterDelta[] = [], ms = 1000): IntervalReport {
  const start = t;
  t += ms;
  return {
    start,
    end: t,
    seq: 0,
    points,
    overflow: { drops: 0, points: 0, pointsCapped: false },
    drops: points.reduce((n, p) => n + p.count, 0),
    lost: new Map(),
    lostTotal: 0,
    counters,
  };
}

function delta(name: string, scope: string, d: number): CounterDelta {
  return { name, scope, layer: 'nic', value: 1000 + d, source: 'test', delta: d, rate: d };
}

const rule: AlertRule = { name: 'udp', kind: 'reason', match: 'NO_SOCKET', above: 100, below: 10, forMs: 3000 };

test('fires after staying above for the duration, resolves only below the lower level', () => {
  const seen: AlertEvent[] = [];
  const e = new AlertEngine([rule], [{ notify: (x) => seen.push(x) }]);
  e.evaluate(interval([point('NO_SOCKET', 500)]));
  e.evaluate(interval([point('NO_SOCKET', 500)]));
  assert.equal(seen.length, 0, 'not yet: 2 s above');
  e.evaluate(interval([point('NO_SOCKET', 500)]));
  assert.equal(seen.length, 1);
  assert.equal(seen[0].status, 'firing');
  assert.equal(seen[0].rate, 500);
  assert.match(alertLine(seen[0]), /^dropmon: alert FIRING udp: drops NO_SOCKET at 500\/s > 100\/s for 3 s$/);
  // Between the levels: still firing (hysteresis), nothing new.
  e.evaluate(interval([point('NO_SOCKET', 50)]));
  e.evaluate(interval([point('NO_SOCKET', 150)]));
  assert.equal(seen.length, 1);
  assert.deepEqual(e.firing().map((f) => f.rule), ['udp']);
  e.evaluate(interval([point('NO_SOCKET', 5)]));
  assert.equal(seen.length, 2);
  assert.equal(seen[1].status, 'resolved');
  assert.equal(e.firing().length, 0);
});

test('a dip below the level restarts the duration', () => {
  const seen: AlertEvent[] = [];
  const e = new AlertEngine([rule], [{ notify: (x) => seen.push(x) }]);
  for (const n of [500, 500, 20, 500, 500]) e.evaluate(interval([point('NO_SOCKET', n)]));
  assert.equal(seen.length, 0);
  e.evaluate(interval([point('NO_SOCKET', 500)]));
  assert.equal(seen.length, 1);
});

test('rates of counters (any scope or one) and interfaces; rules keep their state across a reload', () => {
  const r = interval([point('NO_SOCKET', 30, 7)], [delta('link:rx_dropped', 'eth0', 40), delta('link:rx_dropped', 'eth1', 2), delta('qdisc:drops', 'eth0 fq_codel 0:0', 10)], 2000);
  assert.equal(ruleRate({ ...rule, kind: 'counter', match: 'link:rx_dropped' }, r, undefined), 21);
  assert.equal(ruleRate({ ...rule, kind: 'counter', match: 'link:rx_dropped@eth1' }, r, undefined), 1);
  assert.equal(ruleRate({ ...rule, kind: 'reason', match: '*' }, r, undefined), 15);
  const kb = { counter: (n: string) => ({ drop: n === 'link:rx_dropped' || n === 'qdisc:drops' }) } as never;
  assert.equal(ruleRate({ ...rule, kind: 'interface', match: 'eth0' }, r, kb, new Map([[7, 'eth0']])), 40);
  const seen: AlertEvent[] = [];
  const e = new AlertEngine([{ ...rule, forMs: 0 }], [{ notify: (x) => seen.push(x) }]);
  e.evaluate(interval([point('NO_SOCKET', 500)]));
  e.setRules([{ ...rule, forMs: 0, below: 1 }]);
  e.evaluate(interval([point('NO_SOCKET', 5)]));
  assert.deepEqual(seen.map((x) => x.status), ['firing'], 'still firing: the new rule resolves below 1');
});

async function receiver(handler: (req: IncomingMessage, body: string) => number): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.statusCode = handler(req, body);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${a.port}/hook` };
}

const event: AlertEvent = { status: 'firing', rule: 'udp', kind: 'reason', match: 'NO_SOCKET', rate: 500, threshold: 100, since: 1, at: 2, hostname: 'h' };

test('webhook: a JSON POST with the headers configured; retried with backoff after failures', async () => {
  const bodies: unknown[] = [];
  const times: number[] = [];
  let calls = 0;
  const { server, url } = await receiver((req, body) => {
    times.push(Date.now());
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-key'], 'k1');
    calls++;
    if (calls <= 2) return 503;
    bodies.push(JSON.parse(body));
    return 204;
  });
  try {
    const w = new WebhookNotifier({ url, headers: { 'x-key': 'k1' }, timeoutMs: 2000 }, { backoffMs: 100, warn: () => undefined });
    w.notify(event);
    assert.ok(await w.idle(5000));
    assert.equal(calls, 3);
    assert.equal(w.stats.delivered, 1);
    assert.ok(times[1] - times[0] >= 95 && times[2] - times[1] >= 190, `backoff of 100 ms, then 200 ms: ${times.map((x) => x - times[0]).join(', ')} ms`);
    const b = bodies[0] as Record<string, unknown>;
    assert.equal(b.status, 'firing');
    assert.equal(b.rule, 'udp');
    assert.equal(b.rate, 500);
    assert.match(String(b.summary), /alert FIRING udp/);
  } finally {
    server.close();
  }
});

test('webhook: a dead receiver costs a bounded queue, counts what it drops, never blocks the caller', async () => {
  const warnings: string[] = [];
  // A port nobody listens on: bind one, then close it.
  const { server, url: dead } = await receiver(() => 200);
  await new Promise((r) => server.close(r));
  const w = new WebhookNotifier({ url: dead, headers: {}, timeoutMs: 500 }, { maxQueue: 5, attempts: 2, backoffMs: 50, warn: (m) => warnings.push(m) });
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) w.notify({ ...event, rule: `r${i}` });
  assert.ok(performance.now() - t0 < 200, 'notify returns at once');
  assert.ok(w.stats.queued <= 5);
  assert.ok(w.stats.dropped >= 994);
  assert.ok(await w.idle(10_000));
  assert.ok(w.stats.failed >= 1);
  assert.match(warnings[0], /^webhook http:\/\/127\.0\.0\.1:\d+\/hook: ECONNREFUSED; retrying with backoff$/);
  w.close();
});
