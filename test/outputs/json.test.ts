/** The JSON lines of an interval (outputs/json.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalAggregator } from '../../src/core/aggregator.js';
import { NO_REASON, type DropSample } from '../../src/core/drop.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { JsonOutput, formatIntervalJson } from '../../src/outputs/json.js';
import { KFREE_SKB, NFT_DO_CHAIN, SYMBOLS, TRACE_FRAME, UDP_RCV, UNKNOWN, interval, point } from './inputs.js';

const sample = (location: bigint, count: number, reason = 3, protocol = 0x0800): DropSample => ({
  location, reason, reasonName: reason === 3 ? 'NO_SOCKET' : 'X', protocol, origin: 'software', count,
});

test('from the aggregator: one drop object per point and an interval object', () => {
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

const TIME = '2024-01-02T03:04:05.000Z';
const parse = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

test('drop objects: symbol parts, reason and its code, protocol and EtherType; nulls where unknown', () => {
  const r = interval([
    point({ location: NFT_DO_CHAIN, reason: 7, reasonName: 'NETFILTER_DROP', protocol: 0x86dd, count: 5 }),
    point({ location: UNKNOWN, reason: 200, reasonName: '', protocol: 0x88b5, count: 3 }),
    point({ reason: NO_REASON, reasonName: '', protocol: 0, count: 2 }),
    point({ count: 0 }),
  ]);
  const [module, unknown, bare, last] = parse(formatIntervalJson(r, SYMBOLS, undefined, 'bpf'));
  assert.deepEqual(module, {
    type: 'drop', time: TIME, interval: 7, count: 5, location: '0xffffffffc0001010', symbol: 'nft_do_chain+0x10/0x400 [nf_tables]',
    function: 'nft_do_chain', offset: 16, module: 'nf_tables', reason: 'NETFILTER_DROP', reason_code: 7, protocol: 'ipv6',
    ethertype: 0x86dd, origin: 'software', source: 'bpf',
  });
  assert.deepEqual(unknown, {
    type: 'drop', time: TIME, interval: 7, count: 3, location: '0xffffffff80001000', symbol: '0xffffffff80001000',
    function: null, offset: null, module: null, reason: 'reason 200', reason_code: 200, protocol: '0x88b5',
    ethertype: 0x88b5, origin: 'software', source: 'bpf',
  });
  assert.deepEqual([bare.reason, bare.reason_code, bare.protocol, bare.ethertype], [null, null, null, 0]);
  assert.equal(last.type, 'interval', 'a packet record (count 0) is no drop object');
  assert.equal(last.points, 3);
});

test('drop objects: the stack, symbolized, without the tracing frames; attribution fields once a source knows the device', () => {
  const [withStack, withDevice] = parse(formatIntervalJson(interval([point({ count: 2, stack: [TRACE_FRAME, KFREE_SKB, UDP_RCV] }), point({ count: 1, ifindex: 4 })]), SYMBOLS, undefined, 'tracefs'));
  assert.deepEqual(withStack.stack, ['kfree_skb_reason+0x10/0x1000', '__udp4_lib_rcv+0x4bc/0x1000']);
  assert.equal('ifindex' in withStack, false, 'no attribution fields for a source without it');
  assert.equal('stack' in withDevice, false);
  assert.deepEqual(
    [withDevice.ifindex, withDevice.ifname, withDevice.netns, withDevice.netns_name, withDevice.container],
    [4, null, null, null, null],
  );
});

test('hardware drops: trap fields, the input port by name; no location fields of software points', () => {
  const trap = { name: 'blackhole_route', group: 'l3_drops', type: 'drop', action: 'trap', device: 'netdevsim/netdevsim10', inputName: 'eth1' };
  const [full, bare] = parse(
    formatIntervalJson(
      interval([
        point({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count: 7, trap }),
        point({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count: 1, trap: { name: 'ingress_vlan_filter' } }),
      ]),
      SYMBOLS,
      undefined,
      'tracefs',
    ),
  );
  assert.deepEqual(full, {
    type: 'drop', time: TIME, interval: 7, count: 7, location: '0x0000000000000000', symbol: '0x0',
    function: null, offset: null, module: null, reason: null, reason_code: null, protocol: null, ethertype: 0,
    origin: 'hardware', source: 'tracefs',
    trap: 'blackhole_route', trap_group: 'l3_drops', trap_type: 'drop', trap_action: 'trap', devlink: 'netdevsim/netdevsim10',
    ifindex: null, ifname: 'eth1', netns: null, netns_name: null, container: null,
  });
  assert.deepEqual(
    [bare.trap, bare.trap_group, bare.trap_type, bare.trap_action, bare.devlink, bare.ifname],
    ['ingress_vlan_filter', null, null, null, null, null],
  );
});

test('the interval object: totals, overflow, losses by cause; fields in their documented order', () => {
  const r = interval([point({ count: 12 }), point({ count: 0 })], {
    drops: 52,
    overflow: { drops: 40, points: 9, pointsCapped: false },
    lost: new Map([['ring-buffer overrun cpu0', 3], ['ring-buffer overrun cpu1', 2]]),
    lostTotal: 5,
  });
  assert.equal(
    formatIntervalJson(r, SYMBOLS, undefined, 'tracefs').at(-1),
    '{"type":"interval","time":"2024-01-02T03:04:05.000Z","interval":7,"start":"2024-01-02T03:04:04.000Z","duration_ms":1000,' +
      '"drops":52,"points":1,"overflow_drops":40,"overflow_points":9,"lost_events":5,' +
      '"lost_by_cause":{"ring-buffer overrun cpu0":3,"ring-buffer overrun cpu1":2},"source":"tracefs"}',
  );
});

test('JsonOutput: one write per interval, one line per object; a quiet interval still writes its interval object', () => {
  const written: string[] = [];
  const out = new JsonOutput((t) => written.push(t), SYMBOLS, undefined, 'tracefs');
  out.interval(interval([point({ count: 12 })]));
  out.interval(interval([]));
  assert.equal(written.length, 2);
  assert.deepEqual(written[0].split('\n').map((l) => (l ? (JSON.parse(l) as { type: string }).type : '')), ['drop', 'interval', '']);
  assert.deepEqual(parse([written[1].trimEnd()]), [
    { type: 'interval', time: TIME, interval: 7, start: '2024-01-02T03:04:04.000Z', duration_ms: 1000, drops: 0, points: 0, overflow_drops: 0, overflow_points: 0, lost_events: 0, lost_by_cause: {}, source: 'tracefs' },
  ]);
});
