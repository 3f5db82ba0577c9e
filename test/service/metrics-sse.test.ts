/**
 * Bounded by construction: the metrics' label budget (top-N locations, the
 * rest "other", series never disappear) checked with promtool, and the
 * event stream dropping a client that does not read instead of buffering
 * for it without end. And the Grafana dashboard's queries, checked against
 * the metrics that exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropPoint, IntervalReport } from '../../src/core/interval.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { OTHER, ServiceMetrics } from '../../src/service/metrics.js';
import { SseHub } from '../../src/service/sse.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

function report(points: DropPoint[], lost: [string, number][] = []): IntervalReport {
  return {
    start: 0,
    end: 1000,
    seq: 1,
    points,
    overflow: { drops: 5, points: 2, pointsCapped: false },
    drops: points.reduce((n, p) => n + p.count, 0) + 5,
    lost: new Map(lost),
    lostTotal: lost.reduce((n, [, l]) => n + l, 0),
  };
}

function at(i: number, count: number, reasonName = 'NO_SOCKET'): DropPoint {
  return { location: 0xffffffff81000000n + BigInt(i) * 0x1000n, reason: 2, reasonName, protocol: 0x800, origin: 'software', count };
}

/** fn0 .. fn4 at the addresses at(0) .. at(4) drop in. */
const SYMBOLS = new Symbolizer(KallsymsTable.parse([0, 1, 2, 3, 4].map((i) => `${(0xffffffff81000000n + BigInt(i) * 0x1000n).toString(16)} t fn${i}`).join('\n') + '\nffffffff81005000 t end\n'));

test('metrics: top-N locations keep their label, the rest is "other"; promtool accepts the output', async () => {
  const m = new ServiceMetrics({ topLocations: 3, maxCounterSeries: 2 }, loadKnowledge(), SYMBOLS, undefined);
  m.interval(report([at(0, 100), at(1, 50), at(2, 10), at(3, 5), at(4, 1)], [['ring-buffer overrun cpu0', 3], ['ring-buffer overrun cpu1', 4]]));
  m.interval(report([at(4, 7), at(0, 1)]));
  m.setCounters([
    { name: 'link:rx_dropped', scope: 'eth0', layer: 'nic', value: 5, source: 't' },
    { name: 'link:rx_dropped', scope: 'eth1', layer: 'nic', value: 6, source: 't' },
    { name: 'link:rx_dropped', scope: 'eth2', layer: 'nic', value: 7, source: 't' },
    { name: 'link:rx_packets', scope: 'eth0', layer: 'nic', value: 9, source: 't' },
  ]);
  const { body } = await m.scrape();
  const drops = body.split('\n').filter((l) => l.startsWith('dropmon_drops_total{'));
  const value = (loc: string) => drops.filter((l) => l.includes(`location="${loc}"`)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  assert.equal(value('fn0'), 101);
  assert.equal(value('fn1'), 50);
  assert.equal(value('fn2'), 10);
  assert.equal(value(OTHER), 5 + 1 + 7 + 5 + 5, 'beyond the top 3, and the overflow of both intervals');
  assert.equal(new Set(drops.map((l) => /location="([^"]+)"/.exec(l)![1])).size, 4);
  assert.match(body, /^dropmon_lost_events_total\{cause="ring-buffer overrun cpu"\} 7$/m, 'CPU numbers folded');
  const stats = body.split('\n').filter((l) => l.startsWith('dropmon_kernel_stat{'));
  assert.equal(stats.length, 2, 'bounded by maxCounterSeries; traffic counters left out');
  assert.ok(!body.includes('rx_packets'));
  try {
    execFileSync('promtool', ['check', 'metrics'], { input: body, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stdout?: Buffer; stderr?: Buffer };
    assert.fail(e.code === 'ENOENT' ? 'promtool (Debian package prometheus) is missing' : `promtool: ${String(e.stdout)}${String(e.stderr)}`);
  }
});

test('metrics: an unsymbolized drop point is location="unknown", never its address', async () => {
  const m = new ServiceMetrics({ topLocations: 3, maxCounterSeries: 2, defaultMetrics: false }, loadKnowledge(), new Symbolizer(), undefined);
  m.interval(report([at(0, 3), at(1, 4)]));
  const { body } = await m.scrape();
  assert.doesNotMatch(body, /0x[0-9a-f]{9,}|ffff[0-9a-f]{12}/i);
  assert.match(body, /^dropmon_drops_total\{[^}]*location="unknown"[^}]*\} 7$/m);
});

test('SSE: a client that does not read is dropped; the others and the sender go on', async () => {
  const hub = new SseHub({ maxBufferBytes: 256 * 1024, heartbeatMs: 60_000 });
  const server = createServer((req, res) => hub.accept(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const open = (read: boolean) =>
    new Promise<{ bytes: () => number; destroy: () => void }>((resolve) => {
      let bytes = 0;
      const req = request({ host: '127.0.0.1', port, path: '/' }, (res) => {
        res.on('error', () => undefined);
        if (read) res.on('data', (c: Buffer) => (bytes += c.length));
        else res.pause();
        resolve({ bytes: () => bytes, destroy: () => req.destroy() });
      });
      req.on('error', () => undefined);
      req.end();
    });
  const clients: { destroy: () => void }[] = [];
  try {
    const reader = await open(true);
    const sleeper = await open(false);
    clients.push(reader, sleeper);
    assert.equal(hub.size, 2);
    const payload = { text: 'x'.repeat(16 * 1024) };
    let worst = 0;
    for (let i = 0; i < 400 && hub.dropped === 0; i++) {
      const a = performance.now();
      hub.broadcast('interval', payload);
      worst = Math.max(worst, performance.now() - a);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(hub.dropped, 1, 'the sleeping client was dropped');
    // broadcast() is synchronous and never blocks on a socket; its time is reported, not judged (it depends on the machine's load).
    process.stderr.write(`# SSE: slowest broadcast ${worst.toFixed(1)} ms\n`);
    assert.equal(hub.size, 1);
    hub.broadcast('interval', { last: true });
    // The reader gets everything: awaited (bounded), not assumed after a fixed sleep.
    for (let i = 0; i < 200 && reader.bytes() <= 256 * 1024; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(reader.bytes() > 256 * 1024, 'the reading client got everything');
  } finally {
    for (const c of clients) c.destroy();
    hub.close();
    server.closeAllConnections();
    server.close();
  }
});

test('the Grafana dashboard: valid JSON, every query parses (promtool) and uses only metrics dropmon exports', () => {
  const dash = JSON.parse(readFileSync(join(PROJECT_ROOT, 'contrib', 'grafana-dropmon.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 10);
  const known = /^(dropmon_(drops_total|lost_events_total|kernel_stat|intervals_total|source_up|recording_bytes)|process_[a-z_]+)$/;
  for (const e of exprs) for (const m of e.matchAll(/\b(dropmon_[a-z_]+|process_[a-z_]+)\b/g)) assert.match(m[1], known, `${m[1]} in ${e}`);
  // Grafana's variables replaced by what they expand to, then checked as recording rules.
  const concrete = exprs.map((e) => e.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$instance', '.*').replaceAll('$reason', '.*'));
  const rules = ['groups:', '  - name: grafana', '    rules:', ...concrete.map((e, i) => `      - record: dropmon:panel${i}\n        expr: ${JSON.stringify(e)}`)].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-grafana-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), rules + '\n');
    execFileSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    assert.fail(`promtool check rules: ${String(e.stdout ?? '')}${String(e.stderr ?? '')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
