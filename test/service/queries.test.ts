/** The API's range questions (service/queries.ts) answered from the intervals in memory: the diagnosis says where. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Attribution } from '../../src/core/attribution.js';
import type { IntervalReport } from '../../src/core/interval.js';
import { Symbolizer } from '../../src/kernel/kallsyms.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { DEFAULT_QUERIES } from '../../src/service/config.js';
import { diagnosis } from '../../src/service/queries.js';

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
