/** The console lines of an interval (outputs/text.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalAggregator } from '../../src/core/aggregator.js';
import type { DropSample } from '../../src/core/drop.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { formatIntervalText } from '../../src/outputs/text.js';

const sample = (location: bigint, count: number, reason = 3, protocol = 0x0800): DropSample => ({
  location, reason, reasonName: reason === 3 ? 'NO_SOCKET' : 'X', protocol, origin: 'software', count,
});

test('text output: dropwatch-compatible lines, overflow and loss lines', () => {
  const sym = new Symbolizer(KallsymsTable.parse('ffffffff81abc000 t __udp4_lib_rcv\nffffffff81abd000 t next\n'));
  const a = new IntervalAggregator(1, 0);
  a.add(sample(0xffffffff81abc4bcn, 12));
  a.add(sample(0xffffffff99000000n, 2));
  a.addLoss({ lost: 3, cause: 'ring-buffer overrun cpu0' });
  const lines = formatIntervalText(a.close(1000), sym);
  assert.deepEqual(lines, [
    '12 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4',
    '2 drops at 1 other locations (over --max-points)',
    '3 events lost (ring-buffer overrun cpu0: 3)',
  ]);
  assert.match(lines[0], /^(\d+) drops at (\S+) \((0x[0-9a-f]+)\) \[(software|hardware)\]/, 'parsable like dropwatch');
});
