import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalAggregator } from '../../src/core/aggregator.js';
import { matches, resolveReasons } from '../../src/core/filter.js';
import { parseProtocol, type DropSample } from '../../src/core/drop.js';
import { formatIntervalText } from '../../src/outputs/text.js';
import { formatIntervalJson } from '../../src/outputs/json.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';

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

test('text output: dropwatch-compatible lines, overflow and loss lines', () => {
  const sym = new Symbolizer(KallsymsTable.parse('ffffffff81abc000 t __udp4_lib_rcv\nffffffff81abd000 t next\n'));
  const a = new IntervalAggregator(1, 0);
  a.add(sample(0xffffffff81abc4bcn, 12));
  a.add(sample(0xffffffff99000000n, 2));
  a.addLoss({ lost: 3, cause: 'ring-buffer overrun cpu0' });
  const lines = formatIntervalText(a.close(1000), sym, undefined);
  assert.deepEqual(lines, [
    '12 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4',
    '2 drops at 1 other locations (over --max-points)',
    '3 events lost (ring-buffer overrun cpu0: 3)',
  ]);
  assert.match(lines[0], /^(\d+) drops at (\S+) \((0x[0-9a-f]+)\) \[(software|hardware)\]/, 'parsable like dropwatch');
});

test('JSON output: one drop object per point and an interval object', () => {
  const sym = new Symbolizer(KallsymsTable.parse('ffffffff81abc000 t __udp4_lib_rcv\nffffffff81abd000 t next\n'));
  const a = new IntervalAggregator(64, 0);
  a.add(sample(0xffffffff81abc4bcn, 12));
  const [drop, interval] = formatIntervalJson(a.close(1000), sym, undefined, 'tracefs').map((l) => JSON.parse(l));
  assert.deepEqual(
    { ...drop, time: undefined },
    {
      type: 'drop', time: undefined, interval: 1, count: 12, location: '0xffffffff81abc4bc', symbol: '__udp4_lib_rcv+0x4bc/0x1000',
      function: '__udp4_lib_rcv', offset: 0x4bc, module: null, reason: 'NO_SOCKET', reason_code: 3, protocol: 'ipv4',
      ethertype: 0x0800, origin: 'software', source: 'tracefs',
    },
  );
  assert.equal(interval.type, 'interval');
  assert.equal(interval.drops, 12);
  assert.equal(interval.lost_events, 0);
  assert.equal(interval.duration_ms, 1000);
});

test('filters: reasons by name, protocols, location ranges', () => {
  const table = new Map([[3, 'NO_SOCKET'], [6, 'SOCKET_RCVBUFF']]);
  assert.deepEqual(resolveReasons(['no_socket', 'SKB_DROP_REASON_SOCKET_RCVBUFF', '3'], table), [3, 6]);
  assert.throws(() => resolveReasons(['SOCKET'], table), /did you mean NO_SOCKET, SOCKET_RCVBUFF/);
  assert.equal(parseProtocol('ipv6'), 0x86dd);
  assert.equal(parseProtocol('0x88b5'), 0x88b5);
  assert.equal(parseProtocol('nope'), undefined);
  const s = sample(0xffffffff81000010n, 1);
  assert.equal(matches({ reasons: [3], protocols: [0x0800], locations: [[0xffffffff81000000n, 0xffffffff81000100n]] }, s), true);
  assert.equal(matches({ reasons: [6] }, s), false);
  assert.equal(matches({ locations: [[0n, 1n]] }, s), false);
});
