/** The interval aggregator: points by key, the bound on points, overflow, losses, the sequence. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalAggregator } from '../../src/core/aggregator.js';
import type { DropSample } from '../../src/core/drop.js';

const sample = (location: bigint, count: number, reason = 3, protocol = 0x0800): DropSample => ({
  location, reason, reasonName: reason === 3 ? 'NO_SOCKET' : 'X', protocol, origin: 'software', count,
});

test('aggregates by point, sorts by count, bounds the number of points', () => {
  const a = new IntervalAggregator(2, 0);
  a.add(sample(0xffffffff81000010n, 5));
  a.add(sample(0xffffffff81000020n, 7));
  a.add(sample(0xffffffff81000010n, 5));
  a.add(sample(0xffffffff81000030n, 3)); // over the bound
  a.add(sample(0xffffffff81000040n, 4)); // over the bound
  a.add(sample(0xffffffff81000030n, 1)); // same overflowed point
  a.addLoss({ lost: 9, cause: 'ring-buffer overrun cpu1' });
  const r = a.close(1000);
  assert.deepEqual(r.points.map((p) => p.count), [10, 7]);
  assert.deepEqual(r.overflow, { drops: 8, points: 2, pointsCapped: false });
  assert.equal(r.drops, 25);
  assert.equal(r.lostTotal, 9);
  assert.equal(r.seq, 1);
  const next = a.close(2000);
  assert.equal(next.drops, 0);
  assert.equal(next.seq, 2);
  assert.equal(next.start, 1000);
});

test('same location, different protocol or reason: different points', () => {
  const a = new IntervalAggregator(64, 0);
  a.add(sample(0xffffffff81000010n, 1, 3, 0x0800));
  a.add(sample(0xffffffff81000010n, 1, 3, 0x86dd));
  a.add(sample(0xffffffff81000010n, 1, 4, 0x0800));
  assert.equal(a.close().points.length, 3);
});
