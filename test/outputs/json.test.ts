/** The JSON lines of an interval (outputs/json.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalAggregator } from '../../src/core/aggregator.js';
import type { DropSample } from '../../src/core/drop.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { formatIntervalJson } from '../../src/outputs/json.js';

const sample = (location: bigint, count: number, reason = 3, protocol = 0x0800): DropSample => ({
  location, reason, reasonName: reason === 3 ? 'NO_SOCKET' : 'X', protocol, origin: 'software', count,
});

test('JSON output: one drop object per point and an interval object', () => {
  const sym = new Symbolizer(KallsymsTable.parse('ffffffff81abc000 t __udp4_lib_rcv\nffffffff81abd000 t next\n'));
  const a = new IntervalAggregator(64, 0);
  a.add(sample(0xffffffff81abc4bcn, 12));
  const [drop, interval] = formatIntervalJson(a.close(1000), sym, 'tracefs').map((l) => JSON.parse(l));
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
