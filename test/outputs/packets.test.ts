/** The per-packet lines and JSON objects of NET_DM packet mode (outputs/packets.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_REASON, type DropSample, type DroppedPacket } from '../../src/core/drop.js';
import { PacketJsonOutput, PacketTextOutput, describeDrop } from '../../src/outputs/packets.js';
import { SYMBOLS, UDP_RCV, ipv4Udp, ipv6Tcp, ipv4Icmp } from './inputs.js';

/** 2023-11-14T22:13:20.123456789Z */
const TIMESTAMP = 1_700_000_000_123_456_789n;

function sample(packet: DroppedPacket, more: Partial<DropSample> = {}): DropSample {
  return { location: UDP_RCV, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software', count: 1, packet, ...more };
}

const udp = sample({ timestamp: TIMESTAMP, ifindex: 2, origLen: 74, payload: ipv4Udp() });
const tcp6 = sample({ ifindex: 3, ifname: 'veth0', origLen: 94, payload: ipv6Tcp() }, { protocol: 0x86dd, reasonName: 'TCP_INVALID_SEQUENCE', reason: 40 });
const icmp = sample({ ifindex: 2, payload: ipv4Icmp() });
const trapped = sample(
  { ifname: 'eth1', origLen: 60, payload: ipv4Udp() },
  { location: 0n, reason: NO_REASON, reasonName: '', origin: 'hardware', trap: { name: 'blackhole_route', group: 'l3_drops' } },
);
const bare = sample({ kernelSymbol: '__udp4_lib_rcv+0x4bc/0x1000' }, { protocol: 0 });

test('describeDrop: the pcap comment, location or trap, origin, reason, device', () => {
  assert.equal(describeDrop(udp, SYMBOLS), 'drop at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET dev ifindex 2');
  assert.equal(describeDrop(tcp6, SYMBOLS), 'drop at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] TCP_INVALID_SEQUENCE dev veth0');
  assert.equal(describeDrop(trapped, SYMBOLS), 'drop at blackhole_route (l3_drops) [hardware] dev eth1');
  // Without kallsyms: NET_DM's own symbol, else the address.
  assert.equal(describeDrop(bare, undefined), 'drop at __udp4_lib_rcv+0x4bc/0x1000 (0xffffffff81abc4bc) [software] NO_SOCKET');
  assert.equal(describeDrop(udp, undefined), 'drop at 0xffffffff81abc4bc (0xffffffff81abc4bc) [software] NO_SOCKET dev ifindex 2');
});

test('PacketTextOutput: one line per packet with length, protocol and flow; one write per batch', () => {
  const written: string[] = [];
  new PacketTextOutput((t) => written.push(t), SYMBOLS).packets([udp, tcp6, icmp, trapped, bare]);
  assert.equal(written.length, 1);
  assert.deepEqual(written[0].split('\n'), [
    'drop at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET dev ifindex 2 len 74 ipv4 udp 10.0.0.1:5000 > 10.0.0.2:9',
    'drop at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] TCP_INVALID_SEQUENCE dev veth0 len 94 ipv6 tcp [2001:db8::1]:443 > [2001:db8::2]:51000',
    'drop at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET dev ifindex 2 ipv4 icmp 10.0.0.1 > 10.0.0.2 type 8',
    'drop at blackhole_route (l3_drops) [hardware] dev eth1 len 60 ipv4 udp 10.0.0.1:5000 > 10.0.0.2:9',
    'drop at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET',
    '',
  ]);
});

test('PacketJsonOutput: one object per packet, time from the kernel\'s nanoseconds, decoded headers', () => {
  const written: string[] = [];
  new PacketJsonOutput((t) => written.push(t), SYMBOLS, 'netdm').packets([udp, trapped, bare]);
  const [a, b, c] = written[0].trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(a, {
    type: 'packet', time: '2023-11-14T22:13:20.123Z', timestamp_ns: '1700000000123456789', origin: 'software',
    location: '0xffffffff81abc4bc', symbol: '__udp4_lib_rcv+0x4bc/0x1000', reason: 'NO_SOCKET', trap: null, trap_group: null,
    ifindex: 2, ifname: null, orig_len: 74, captured_len: 42, protocol: 'ipv4',
    headers: { dstMac: '02:00:00:00:00:02', srcMac: '02:00:00:00:00:01', ethertype: 0x0800, src: '10.0.0.1', dst: '10.0.0.2', l4: 'udp', sport: 5000, dport: 9 },
    source: 'netdm',
  });
  assert.deepEqual(
    [b.origin, b.location, b.symbol, b.reason, b.trap, b.trap_group, b.ifname, b.orig_len],
    ['hardware', null, null, null, 'blackhole_route', 'l3_drops', 'eth1', 60],
  );
  assert.deepEqual(
    [c.time, c.timestamp_ns, c.ifindex, c.orig_len, c.captured_len, c.protocol, c.headers],
    [null, null, null, null, 0, null, null],
  );
  // Without kallsyms the symbol is NET_DM's.
  const plain: string[] = [];
  new PacketJsonOutput((t) => plain.push(t), undefined, 'netdm').packets([bare]);
  assert.equal((JSON.parse(plain[0]) as { symbol: string }).symbol, '__udp4_lib_rcv+0x4bc/0x1000');
});
