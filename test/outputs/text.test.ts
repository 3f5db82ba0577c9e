/** The console lines of an interval (outputs/text.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalAggregator } from '../../src/core/aggregator.js';
import { NO_REASON, type DropSample } from '../../src/core/drop.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { TextOutput, formatIntervalText } from '../../src/outputs/text.js';
import { KFREE_SKB, NFT_DO_CHAIN, SYMBOLS, TRACE_FRAME, UDP_RCV, UNKNOWN, interval, point } from './inputs.js';

const sample = (location: bigint, count: number, reason = 3, protocol = 0x0800): DropSample => ({
  location, reason, reasonName: reason === 3 ? 'NO_SOCKET' : 'X', protocol, origin: 'software', count,
});

test('from the aggregator: dropwatch-compatible lines, overflow and loss lines', () => {
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

test('software points: symbol or address, origin, reason or its number, protocol, device; packet records are not lines', () => {
  const r = interval([
    point({ count: 12 }),
    point({ location: NFT_DO_CHAIN, reason: 7, reasonName: 'NETFILTER_DROP', protocol: 0x86dd, count: 5 }),
    point({ location: UNKNOWN, reason: 200, reasonName: '', protocol: 0x88b5, count: 3 }),
    point({ reason: NO_REASON, reasonName: '', protocol: 0, count: 2 }),
    point({ count: 1, ifindex: 4 }),
    point({ count: 0 }),
  ]);
  assert.deepEqual(formatIntervalText(r, SYMBOLS, undefined), [
    '12 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4',
    '5 drops at nft_do_chain+0x10 [nf_tables] (0xffffffffc0001010) [software] NETFILTER_DROP ipv6',
    '3 drops at 0xffffffff80001000 (0xffffffff80001000) [software] reason 200 0x88b5',
    '2 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software]',
    '1 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4 dev ifindex 4',
  ]);
  // Without a symbol table every location is its address.
  assert.equal(formatIntervalText(interval([point({ count: 12 })]), undefined, undefined)[0], '12 drops at 0xffffffff81abc4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4');
});

test('stacks: one indented frame per line, the tracing frames on top left out', () => {
  const r = interval([point({ count: 2, stack: [TRACE_FRAME, KFREE_SKB, UDP_RCV, UNKNOWN] })]);
  assert.deepEqual(formatIntervalText(r, SYMBOLS, undefined), [
    '2 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4',
    '    kfree_skb_reason+0x10/0x1000',
    '    __udp4_lib_rcv+0x4bc/0x1000',
    '    0xffffffff80001000',
  ]);
});

test('hardware drops: dropwatch\'s "at <trap> [hardware]", then group, type, action, input port, devlink device', () => {
  const trap = { name: 'blackhole_route', group: 'l3_drops', type: 'drop', action: 'trap', device: 'netdevsim/netdevsim10', inputName: 'eth1' };
  const r = interval([
    point({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count: 7, trap }),
    point({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count: 1, trap: { name: 'ingress_vlan_filter' }, ifindex: 3 }),
  ]);
  assert.deepEqual(formatIntervalText(r, SYMBOLS, undefined), [
    '7 drops at blackhole_route [hardware] l3_drops type drop action trap dev eth1 devlink netdevsim/netdevsim10',
    '1 drops at ingress_vlan_filter [hardware] dev ifindex 3',
  ]);
});

test('overflow and losses: "at least" once the overflowed points were capped; every cause of loss', () => {
  const r = interval([point({ count: 1 })], {
    drops: 41,
    overflow: { drops: 40, points: 10_000, pointsCapped: true },
    lost: new Map([['ring-buffer overrun cpu0', 3], ['ring-buffer overrun cpu1', 2]]),
    lostTotal: 5,
  });
  assert.deepEqual(formatIntervalText(r, SYMBOLS, undefined).slice(1), [
    '40 drops at at least 10000 other locations (over --max-points)',
    '5 events lost (ring-buffer overrun cpu0: 3, ring-buffer overrun cpu1: 2)',
  ]);
  assert.deepEqual(formatIntervalText(interval([]), SYMBOLS, undefined), [], 'a quiet interval prints nothing');
});

test('TextOutput: one write per interval, a timestamp line when asked, only losses beside per-packet lines', () => {
  const written: string[] = [];
  const r = interval([point({ count: 12 })], { overflow: { drops: 4, points: 2, pointsCapped: false }, drops: 16, lost: new Map([['x', 1]]), lostTotal: 1 });
  new TextOutput((t) => written.push(t), SYMBOLS, undefined).interval(r);
  new TextOutput((t) => written.push(t), SYMBOLS, undefined, true).interval(r);
  new TextOutput((t) => written.push(t), SYMBOLS, undefined, false, true).interval(r);
  new TextOutput((t) => written.push(t), SYMBOLS, undefined, true).interval(interval([]));
  assert.deepEqual(written, [
    '12 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4\n4 drops at 2 other locations (over --max-points)\n1 events lost (x: 1)\n',
    '# 2024-01-02T03:04:05.000Z interval 7: 16 drops\n12 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4\n4 drops at 2 other locations (over --max-points)\n1 events lost (x: 1)\n',
    '1 events lost (x: 1)\n',
  ]);
});
