/** `dropmon counters`: the table, its JSON, and the --watch lines of what moved (outputs/counters.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterTableJson, deltasJson, formatCounterTable, formatDeltas, selectCounters, selectDeltas } from '../../src/outputs/counters.js';
import { KNOWLEDGE, delta, reading } from './inputs.js';

const SOCKET = 'udp 127.0.0.1:9999 inode 1234';

const READINGS = [
  reading('Udp:RcvbufErrors', 120),
  reading('Udp:InErrors', 120),
  reading('Udp:InDatagrams', 5000),
  reading('socket:drops', 4, { scope: SOCKET, layer: 'socket', source: 'sock_diag', detail: 'pid 812 (named)' }),
  reading('softnet:dropped', 2, { scope: 'cpu10', layer: 'softnet', source: '/proc/net/softnet_stat', hostWide: true }),
  reading('softnet:dropped', 1, { scope: 'cpu2', layer: 'softnet', source: '/proc/net/softnet_stat', hostWide: true }),
  reading('link:rx_dropped', 3, { scope: 'veth0', layer: 'nic', source: 'rtnetlink' }),
  reading('link:rx_dropped', 0, { scope: 'veth1', layer: 'nic', source: 'rtnetlink' }),
  reading('ethtool:rx_fifo_errors', 9, { scope: 'eth0', layer: 'driver', source: 'ethtool' }),
  reading('conntrack:count', 42, { layer: 'netfilter', source: '/proc/sys/net/netfilter', gauge: true }),
];

test('selectCounters: non-zero drop and related counters by layer, name, then scope in numeric order; everything with all', () => {
  const shown = selectCounters(READINGS, KNOWLEDGE, false);
  assert.deepEqual(
    shown.map((c) => [c.name, c.scope, c.class]),
    [
      ['link:rx_dropped', 'veth0', 'drop'],
      ['ethtool:rx_fifo_errors', 'eth0', 'drop'], // unknown, but its name says drop
      ['softnet:dropped', 'cpu2', 'drop'],
      ['softnet:dropped', 'cpu10', 'drop'],
      ['Udp:InErrors', '', 'related'],
      ['Udp:RcvbufErrors', '', 'drop'],
      ['socket:drops', SOCKET, 'drop'],
    ],
  );
  const all = selectCounters(READINGS, KNOWLEDGE, true);
  assert.equal(all.length, READINGS.length);
  assert.deepEqual(
    all.filter((c) => c.class === 'info').map((c) => c.name),
    ['Udp:InDatagrams', 'conntrack:count'],
  );
});

test('the table: a title per layer, aligned columns, meanings, related marked, drop-like unknowns said so, details', () => {
  assert.equal(
    formatCounterTable(selectCounters(READINGS, KNOWLEDGE, false)),
    [
      'NIC and link',
      '  link:rx_dropped         veth0                           3  packets the device or the stack dropped on receive',
      '',
      'driver queues (ethtool -S)',
      '  ethtool:rx_fifo_errors  eth0                            9  driver or kernel counter with a drop-like name',
      '',
      'softnet (per-CPU receive backlog)',
      '  softnet:dropped         cpu2                            1  driver or kernel counter with a drop-like name',
      '  softnet:dropped         cpu10                           2  driver or kernel counter with a drop-like name',
      '',
      'UDP',
      '  Udp:InErrors                                          120  UDP datagrams that could not be delivered (related)',
      '  Udp:RcvbufErrors                                      120  UDP datagrams dropped: the socket receive buffer was full',
      '',
      'sockets',
      // A scope over the column's width of 28 pushes its line out rather than being cut.
      '  socket:drops            udp 127.0.0.1:9999 inode 1234    4  packets a socket dropped [pid 812 (named)]',
      '',
    ].join('\n'),
  );
  assert.equal(formatCounterTable([]), 'no drop counter is above zero\n');
});

test('the table as JSON: every shown counter with class, meaning and source; gauge and detail only when set', () => {
  const shown = selectCounters([READINGS[3], READINGS[9]], KNOWLEDGE, true);
  assert.deepEqual(counterTableJson(shown, ['ethtool: eth0: Operation not supported'], 'ns1'), {
    type: 'counters',
    netns: 'ns1',
    counters: [
      { name: 'socket:drops', scope: SOCKET, layer: 'socket', value: 4, class: 'drop', meaning: 'packets a socket dropped', source: 'sock_diag', detail: 'pid 812 (named)' },
      { name: 'conntrack:count', scope: '', layer: 'netfilter', value: 42, class: 'info', meaning: '', source: '/proc/sys/net/netfilter', gauge: true },
    ],
    errors: ['ethtool: eth0: Operation not supported'],
  });
  assert.equal('netns' in counterTableJson([], []), false, 'no netns field for the own namespace');
});

const AT = Date.UTC(2024, 0, 2, 3, 4, 5);
const DELTAS = [
  delta('Udp:RcvbufErrors', 120, { rate: 120 }),
  delta('Udp:InDatagrams', 900, { rate: 900 }),
  delta('socket:drops', 4, { scope: SOCKET, layer: 'socket', rate: 0.04, detail: 'pid 812 (named)' }),
  delta('link:rx_dropped', 3, { scope: 'veth0', layer: 'nic', rate: 1.5, reset: true }),
  delta('conntrack:count', -5, { layer: 'netfilter', rate: -2.5, gauge: true }),
];

test('--watch lines: what moved, signed, with rates (whole from 100/s), meanings, resets and details', () => {
  const shown = selectDeltas(DELTAS, KNOWLEDGE, false);
  assert.deepEqual(shown.map((d) => d.name), ['link:rx_dropped', 'Udp:RcvbufErrors', 'socket:drops'], 'no traffic, no gauges');
  assert.equal(
    formatDeltas(AT, 2, shown),
    [
      '03:04:05 (2.0 s)',
      '    +3     1.5/s  link:rx_dropped   veth0                         packets the device or the stack dropped on receive (counter was reset)',
      '  +120     120/s  Udp:RcvbufErrors                                UDP datagrams dropped: the socket receive buffer was full',
      '    +4     0.0/s  socket:drops      udp 127.0.0.1:9999 inode 1234  packets a socket dropped [pid 812 (named)]',
      '',
    ].join('\n'),
  );
  assert.equal(formatDeltas(AT, 1.04, []), '03:04:05 (1.0 s): no drop counter moved\n');
  const all = selectDeltas(DELTAS, KNOWLEDGE, true);
  assert.deepEqual(all.map((d) => d.name), ['link:rx_dropped', 'Udp:InDatagrams', 'Udp:RcvbufErrors', 'socket:drops', 'conntrack:count']);
  assert.match(formatDeltas(AT, 2, all), /\n {4}-5 {4}-2\.5\/s {2}conntrack:count /, 'a gauge that fell has no plus sign');
});

test('--watch JSON: one object per interval, rates and seconds to the millisecond', () => {
  const shown = selectDeltas(DELTAS, KNOWLEDGE, false);
  assert.deepEqual(deltasJson(AT, 2.00049, shown), {
    type: 'counter-interval',
    time: '2024-01-02T03:04:05.000Z',
    seconds: 2,
    moved: [
      { name: 'link:rx_dropped', scope: 'veth0', layer: 'nic', delta: 3, rate: 1.5, value: 1003, class: 'drop', meaning: 'packets the device or the stack dropped on receive', reset: true },
      { name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', delta: 120, rate: 120, value: 1120, class: 'drop', meaning: 'UDP datagrams dropped: the socket receive buffer was full' },
      { name: 'socket:drops', scope: SOCKET, layer: 'socket', delta: 4, rate: 0.04, value: 1004, class: 'drop', meaning: 'packets a socket dropped', detail: 'pid 812 (named)' },
    ],
  });
});
