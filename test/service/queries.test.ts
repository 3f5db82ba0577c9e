/**
 * The API's range questions (service/queries.ts): answered from the intervals
 * in memory (the diagnosis says where), from the recording through the pool,
 * from memory when the recording is a newer dropmon's, and within budget.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Attribution } from '../../src/core/attribution.js';
import type { IntervalReport } from '../../src/core/interval.js';
import { Symbolizer } from '../../src/kernel/kallsyms.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { DEFAULT_QUERIES } from '../../src/service/config.js';
import { diagnosis, reasonSeries, topPoints, type RangeContext } from '../../src/service/queries.js';
import { QueryFailedError } from '../../src/service/query-pool.js';
import type { RecordingQuery } from '../../src/service/recording-queries.js';

const WEB1 = 4026532871;
const INIT = 4026531840;
const T0 = Date.UTC(2024, 0, 2, 3, 4, 0);

function report(seq: number): IntervalReport {
  const points = [
    { location: 0xffffffff81000000n, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software' as const, count: 40, netns: WEB1, ifindex: 2 },
    { location: 0xffffffff81000000n, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software' as const, count: 5, netns: INIT, ifindex: 1 },
  ];
  return {
    start: T0 + (seq - 1) * 1000,
    end: T0 + seq * 1000,
    seq,
    points,
    overflow: { drops: 0, points: 0, pointsCapped: false },
    drops: 45,
    lost: new Map(),
    lostTotal: 0,
    counters: [{ name: 'Udp:NoPorts', scope: '', layer: 'udp', value: 5 * seq, source: 't', delta: 5, rate: 5 }],
  };
}

test('diagnosis from memory: per namespace, named through the attribution, counters of the own namespace with its drops', async () => {
  const attribution: Attribution = {
    initInode: INIT,
    ownInode: INIT,
    netns: (i) => (i === WEB1 ? { name: 'web-1', container: 'docker 3f2a1b0c9d8e' } : i === INIT ? { name: 'init' } : undefined),
    ifname: (ns, i) => (ns === WEB1 && i === 2 ? 'eth0' : ns === INIT && i === 1 ? 'lo' : undefined),
  };
  const pool = { ask: () => Promise.reject(new Error('no recording: memory only')) };
  const ctx = { file: '', reports: [report(1), report(2)], kb: loadKnowledge(), symbols: new Symbolizer(), attribution, pool, budget: DEFAULT_QUERIES };
  const answer = (await diagnosis(ctx, { from: T0, to: T0 + 10_000 })) as { source: string; findings: Record<string, unknown>[] };
  assert.equal(answer.source, 'memory');
  assert.deepEqual(
    answer.findings.map((f) => [String(f.key).split('/')[0], f.netns, f.netns_name, f.container, f.packets, f.interfaces, (f.counters as { name: string }[]).map((c) => c.name)]),
    [
      ['NO_SOCKET', WEB1, 'web-1', 'docker 3f2a1b0c9d8e', 80, [{ name: 'eth0', ifindex: 2, count: 80 }], []],
      ['NO_SOCKET', INIT, 'init', undefined, 10, [{ name: 'lo', ifindex: 1, count: 10 }], ['Udp:NoPorts']],
    ],
  );
});

describe('answers within budget, from the recording or from memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-queries-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // The pool is not asked when no file is there: any path that exists stands for a recording.
  const file = join(dir, 'rec.db');
  writeFileSync(file, '');
  const kb = loadKnowledge();
  const base = { reports: [report(1), report(2)], kb, symbols: new Symbolizer(), budget: DEFAULT_QUERIES };
  const failing = (failure: QueryFailedError['failure']) => ({ ask: () => Promise.reject(new QueryFailedError(failure)) });

  test('a newer dropmon\'s recording: answered from memory, saying why', async () => {
    const pool = failing({ fault: 'newer', message: `${file} is a recording of schema version 9; this dropmon reads up to version 1` });
    const ctx = { ...base, file, pool };
    const range = { from: T0, to: T0 + 10_000 };
    const points = await topPoints(ctx, range, 5);
    assert.equal(points.source, 'memory');
    assert.match(points.why ?? '', /schema version 9.*answered from the intervals in memory/);
    assert.equal(points.drops, 90);
    const series = await reasonSeries(ctx, range, 10);
    assert.equal(series.source, 'memory');
    assert.match(series.why ?? '', /schema version 9/);
    const d = await diagnosis(ctx, range);
    assert.equal(d.source, 'memory');
    assert.match(String(d.why), /schema version 9/);
  });

  test('no recording configured, or none written yet: memory, no why; a recording that cannot be read: the failure is thrown', async () => {
    const never = { ask: () => assert.fail('the pool is not asked without a recording file') };
    for (const f of ['', join(dir, 'not-yet.db')]) {
      const a = await topPoints({ ...base, file: f, pool: never }, { from: T0, to: T0 + 10_000 }, 5);
      assert.equal(a.source, 'memory');
      assert.equal(a.why, undefined);
    }
    await assert.rejects(topPoints({ ...base, file, pool: failing({ fault: 'corrupt', message: 'damaged' }) }, { from: T0, to: T0 + 10_000 }, 5), QueryFailedError);
  });

  test('range, points and buckets beyond the budget are cut, and the answer says so', async () => {
    const asked: RecordingQuery[] = [];
    const budget = { maxRangeMs: 60_000, maxPoints: 3, maxBuckets: 4 };
    const rows = { points: [], drops: 0, counters: [], totals: { intervals: 0, firstMs: null, lastMs: null, drops: 0, lost: 0 }, bucketMs: 1000, buckets: [], reasons: [] };
    const pool = { ask: (_f: string, q: RecordingQuery) => (asked.push(q), Promise.resolve(rows)) } as unknown as RangeContext['pool'];
    const ctx = { ...base, file, pool, budget };
    const to = T0 + 3_600_000;
    const p = await topPoints(ctx, { from: 0, to }, 10);
    assert.deepEqual([p.from, p.to], [to - 60_000, to]);
    assert.deepEqual(p.capped, { range: { askedFrom: 0, maxRangeMs: 60_000 }, top: { asked: 10, max: 3 } });
    assert.deepEqual(asked.pop(), { kind: 'points', range: { from: to - 60_000, to }, top: 3 });
    const s = await reasonSeries(ctx, { from: to - 1000, to }, 100);
    assert.deepEqual(s.capped, { buckets: { asked: 100, max: 4 } });
    assert.equal((asked.pop() as { buckets: number }).buckets, 4);
    const within = await topPoints(ctx, { from: to - 1000, to }, 3);
    assert.equal(within.capped, undefined, 'nothing cut: no capped');
    // Memory answers keep to the same budget.
    const m = await topPoints({ ...base, file: '', pool, budget }, { from: 0, to }, 10);
    assert.deepEqual(m.capped, { range: { askedFrom: 0, maxRangeMs: 60_000 }, top: { asked: 10, max: 3 } });
  });

  test('the diagnosis of a recording weighs at most 200 points and counters, and says when there were more', async () => {
    const point = (k: number) => ({
      location: `0xffffffff81${k.toString(16).padStart(6, '0')}`, symbol: `f${k}+0x10/0x100`, reason: 'NO_SOCKET', reasonCode: 3, ethertype: 0x0800, protocol: 'ipv4',
      origin: 'software', trap: null, trapGroup: null, ifindex: null, netns: null, stack: null, count: 1000 - k, intervals: 1, firstMs: T0, lastMs: T0,
    });
    const totals = { intervals: 1, firstMs: T0, lastMs: T0 + 1000, drops: 1, overflowDrops: 0, lost: 0, packetsSeen: 0, packetsKept: 0, intervalsUnwritten: 0 };
    const answer = (n: number) => ({ ask: () => Promise.resolve({ points: Array.from({ length: n }, (_, k) => point(k)), counters: [], totals }) }) as unknown as RangeContext['pool'];
    const full = await diagnosis({ ...base, file, pool: answer(201) }, { from: T0, to: T0 + 10_000 });
    assert.equal(full.source, 'recording');
    assert.deepEqual(full.capped, { points: { max: 200 } });
    const fits = await diagnosis({ ...base, file, pool: answer(200) }, { from: T0, to: T0 + 10_000 });
    assert.equal(fits.capped, undefined);
  });
});
