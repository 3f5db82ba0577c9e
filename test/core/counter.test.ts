/**
 * The counter model's keys and deltas: equal counters of two network
 * namespaces (readings tagged with the namespace's inode) never merge, and
 * readings of dropmon's own namespace (untagged) keep the keys they had.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffReadings, readingKey, type CounterReading } from '../../src/core/counter.js';

const r = (value: number, netns?: number, scope = ''): CounterReading => ({
  name: 'Udp:RcvbufErrors',
  scope,
  layer: 'udp',
  value,
  source: '/proc/net/snmp',
  ...(netns !== undefined ? { netns } : {}),
});

test('the key of a reading names its namespace when it has one', () => {
  assert.equal(readingKey(r(1)), 'Udp:RcvbufErrors');
  assert.equal(readingKey(r(1, undefined, 'eth0')), 'Udp:RcvbufErrors@eth0');
  assert.equal(readingKey(r(1, 4026532301)), '4026532301/Udp:RcvbufErrors');
  assert.equal(readingKey(r(1, 4026532301, 'eth0')), '4026532301/Udp:RcvbufErrors@eth0');
});

test('equal counters of two namespaces move apart', () => {
  const before = [r(10), r(10, 4026532301), r(5, 4026532302)];
  const now = [r(12), r(40, 4026532301), r(5, 4026532302)];
  const d = diffReadings(before, now, 1);
  assert.deepEqual(
    d.map((x) => [x.netns, x.delta]),
    [
      [undefined, 2],
      [4026532301, 30],
    ],
  );
});
