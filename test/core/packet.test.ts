import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeHeaders } from '../../src/core/packet.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

test('Ethernet + IPv4 + UDP', () => {
  const p = hex('ffffffffffff 020000000001 0800 4500001c0001000040110000 7f000001 7f000002 9c4b0009 0008 0000');
  assert.deepEqual(decodeHeaders(p, 0x0800), {
    dstMac: 'ff:ff:ff:ff:ff:ff', srcMac: '02:00:00:00:00:01', ethertype: 0x0800,
    src: '127.0.0.1', dst: '127.0.0.2', l4: 'udp', sport: 40011, dport: 9,
  });
});

test('VLAN-tagged IPv6 TCP, and a bare IPv4 ICMP packet (L3 device)', () => {
  const v6 = hex('ffffffffffff 020000000001 8100 0064 86dd 60000000 0014 06 40 20010db8000000000000000000000001 20010db8000000000000000000000002 01bb 0050 00000000');
  const h = decodeHeaders(v6, 0x86dd);
  assert.deepEqual(h.vlans, [100]);
  assert.equal(h.src, '2001:db8::1');
  assert.equal(h.dst, '2001:db8::2');
  assert.deepEqual([h.l4, h.sport, h.dport], ['tcp', 443, 80]);
  const icmp = decodeHeaders(hex('4500001c00000000400100000a0000010a000002 0800'), 0x0800, false);
  assert.deepEqual([icmp.src, icmp.l4, icmp.icmpType], ['10.0.0.1', 'icmp', 8]);
});

test('never throws on any bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 128 }), fc.integer({ min: 0, max: 0xffff }), fc.boolean(), (b, proto, eth) => {
      decodeHeaders(b, proto, eth);
    }),
    { numRuns: 2000 },
  );
});
