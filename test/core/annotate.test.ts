/**
 * The annotator every command and the service share: its one policy for
 * trouble reading counters (told once, retried each interval, recovery told
 * once, never fatal, the interval going on without counters), with a fake
 * sampler that fails and recovers; and the noise policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { annotateWithCounters, troubleAsWarnings, type CounterTrouble, type IntervalCounters } from '../../src/core/annotate.js';
import type { KnowledgeView } from '../../src/core/knowledge-view.js';
import type { CounterDelta } from '../../src/core/counter.js';

type Report = Parameters<ReturnType<typeof annotateWithCounters>>[0];
type Point = Report['points'][number];

const KB: KnowledgeView = {
  counter: () => undefined,
  reason: () => undefined,
  symbol: () => undefined,
  trap: () => undefined,
  reasonsForCounter: () => [],
  countersForReason: () => [],
  benign: (reason) => (reason === 'NO_SOCKET' ? 'usually' : 'no'),
  explainReason: (name) => ({ name, summary: '', known: false }),
};

function point(reasonName: string, count: number): Point {
  return { location: 0xffffffff81000000n, reason: 2, reasonName, protocol: 0x0800, origin: 'software', count };
}

function report(seq: number, points: Point[] = []): Report {
  const drops = points.reduce((n, p) => n + p.count, 0);
  return { start: seq * 1000, end: seq * 1000 + 1000, seq, points, overflow: { drops: 0, points: 0, pointsCapped: false }, drops, lost: new Map(), lostTotal: 0 };
}

function delta(value: number): CounterDelta {
  return { name: 'snmp:Udp:InErrors', scope: '', layer: 'udp', value, source: '/proc/net/snmp', delta: 1, rate: 1 };
}

interface Snap {
  readonly errors: readonly string[];
  readonly n: number;
}

/** A sampler that follows a script, one step per read (the baseline first): throw, or these family errors. */
function scripted(steps: Array<Error | string[]>): IntervalCounters<Snap> & { reads: number } {
  let reads = 0;
  const step = (): Snap => {
    const s = steps[Math.min(reads, steps.length - 1)];
    reads++;
    if (s instanceof Error) throw s;
    return { errors: s, n: reads };
  };
  return {
    get reads() {
      return reads;
    },
    baseline: step,
    sample() {
      const snapshot = step();
      return { deltas: [delta(snapshot.n)], snapshot };
    },
  };
}

function recorder(): CounterTrouble & { said: string[] } {
  const said: string[] = [];
  return { said, notRead: (e) => said.push(`not read: ${e}`), failed: (e) => said.push(`failed: ${e}`), recovered: () => said.push('recovered') };
}

test('a failing read is told once, retried every interval, its recovery told once; intervals go on without counters meanwhile', () => {
  const gone = new Error('network namespace blue is gone');
  const sampler = scripted([[], gone, gone, gone, [], [], gone, []]);
  const trouble = recorder();
  const snapshots: number[] = [];
  const annotate = annotateWithCounters({ kb: KB, sampler, symbolName: () => undefined, noise: 'flat', trouble, onSnapshot: (s) => snapshots.push(s.n) });
  const out = [1, 2, 3, 4, 5, 6, 7].map((seq) => annotate(report(seq)));
  assert.equal(sampler.reads, 8, 'the baseline and one read per interval, failing or not');
  assert.deepEqual(
    out.map((r) => r.counters?.[0]?.value),
    [undefined, undefined, undefined, 5, 6, undefined, 8],
  );
  assert.deepEqual(
    out.map((r) => r.correlation !== undefined),
    [false, false, false, true, true, false, true],
  );
  assert.deepEqual(trouble.said, ['failed: network namespace blue is gone', 'recovered', 'failed: network namespace blue is gone', 'recovered']);
  assert.deepEqual(snapshots, [1, 5, 6, 8], 'every snapshot read, the baseline first');
});

test('a baseline that fails is not fatal: the next interval reads again', () => {
  const sampler = scripted([new Error('EPERM'), []]);
  const trouble = recorder();
  const annotate = annotateWithCounters({ kb: KB, sampler, symbolName: () => undefined, noise: 'flat', trouble });
  assert.deepEqual(trouble.said, ['failed: EPERM']);
  assert.equal(annotate(report(1)).counters?.length, 1);
  assert.deepEqual(trouble.said, ['failed: EPERM', 'recovered']);
});

test('a family not read is told once, however often it fails again', () => {
  const sampler = scripted([['ethtool eth0: EOPNOTSUPP'], ['ethtool eth0: EOPNOTSUPP', 'net/snmp: cannot read (EACCES)'], [], ['ethtool eth0: EOPNOTSUPP']]);
  const trouble = recorder();
  const annotate = annotateWithCounters({ kb: KB, sampler, symbolName: () => undefined, noise: 'flat', trouble });
  for (const seq of [1, 2, 3]) assert.ok(annotate(report(seq)).counters, 'the other families still annotate the interval');
  assert.deepEqual(trouble.said, ['not read: ethtool eth0: EOPNOTSUPP', 'not read: net/snmp: cannot read (EACCES)']);
});

test('namespaces left for a later interval are told once, with how many; the closing interval goes to the sampler', () => {
  const closings: number[] = [];
  let reads = 0;
  const skipped = [0, 3, 5, 0, 2];
  const sampler: IntervalCounters = {
    baseline: () => ({ errors: [], skipped: { namespaces: skipped[reads++], of: 8 } }),
    sample(closing) {
      closings.push(closing?.seq ?? -1);
      return { deltas: [], snapshot: { errors: [], skipped: { namespaces: skipped[reads++], of: 8 } } };
    },
  };
  const trouble = recorder();
  const annotate = annotateWithCounters({ kb: KB, sampler, symbolName: () => undefined, noise: 'flat', trouble });
  for (const seq of [1, 2, 3, 4]) annotate(report(seq));
  assert.deepEqual(trouble.said, ['not read: 3 of 8 network namespaces left for a later interval (over the per-interval budget); each is read in turn']);
  assert.deepEqual(closings, [1, 2, 3, 4], 'a host-wide sampler reads the namespaces of the closing interval first');
});

test('the usual telling: warnings, and a plain message when counters come back', () => {
  const warned: string[] = [];
  const info: string[] = [];
  const t = troubleAsWarnings((m) => warned.push(m), (m) => info.push(m));
  t.notRead('ethtool eth0: EOPNOTSUPP');
  t.failed('gone');
  t.recovered();
  assert.deepEqual(warned, ['counters not read: ethtool eth0: EOPNOTSUPP', 'counters cannot be read (gone); intervals go on without them']);
  assert.deepEqual(info, ['counters can be read again']);
  const only: string[] = [];
  troubleAsWarnings((m) => only.push(m)).recovered();
  assert.deepEqual(only, ['counters can be read again'], 'one function for both');
});

test('without a sampler: no counters, nothing told; the noise policy still applies', () => {
  const points = [point('NO_SOCKET', 5), point('TCP_CSUM', 3)];
  const trouble = recorder();
  const annotate = (noise: 'flat' | 'apart' | 'mark' | 'hide') => annotateWithCounters({ kb: KB, symbolName: () => undefined, noise, trouble })(report(1, points));
  assert.equal(annotate('flat').counters, undefined);
  assert.deepEqual(annotate('flat').points, points);
  assert.deepEqual([annotate('apart').points, annotate('apart').benignPoints], [[points[1]], [points[0]]]);
  assert.deepEqual([annotate('mark').points, annotate('mark').benignPoints], [points, [points[0]]]);
  assert.deepEqual([annotate('hide').points, annotate('hide').benignPoints], [[points[1]], undefined]);
  assert.deepEqual(trouble.said, []);
});
