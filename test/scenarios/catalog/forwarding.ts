/** Drops on the way through a router (namespace b between a and c): TTL, forwarding off, no route, MTU, rp_filter. */
import { runDropgen } from '../../helpers/dropgen.js';
import { macOf, py } from '../net.js';
import type { Scenario } from '../scenario.js';
import { PACED } from './sockets.js';

/** UDP from a to `dst` with Python socket options set first (`opts`: a line of setsockopt calls on `s`). */
const udpFromA = (family: 2 | 10, dst: string, n: number, len: number, opts = '') =>
  `s=socket.socket(${family},2)\n${opts}\nfor i in range(${n}):\n    try: s.sendto(b"x"*${len},("${dst}",47010))\n    except OSError: pass\n    PACE(i)\n`;

export const FORWARDING_SCENARIOS: readonly Scenario[] = [
  {
    name: 'TTL runs out at a router',
    net: { router: true },
    where: 'b',
    // IP_TTL (2) = 1: the router may not forward it.
    cause: ({ a }) => void py(a, udpFromA(2, '10.2.0.2', 300, 16, 's.setsockopt(0,2,1)')),
    cause_key: 'IP_INHDR/ttl-expired',
    kind: 'drops',
    counterDeltas: [{ name: 'Ip:InHdrErrors', min: 300 }],
    fix: 'loop|TTL',
  },
  {
    name: 'IPv6 hop limit runs out at a router',
    net: { router: true, ipv6: true },
    where: 'b',
    // IPV6_UNICAST_HOPS (16) = 1.
    cause: ({ a }) => void py(a, udpFromA(10, 'fd02::2', 300, 16, 's.setsockopt(41,16,1)')),
    cause_key: 'IP_INHDR/ttl-expired',
    kind: 'drops',
    counterDeltas: [{ name: 'Ip6:InHdrErrors', min: 300 }],
    fix: 'loop|TTL|hop limit',
  },
  {
    name: 'forwarding off on a router',
    net: { router: true },
    where: 'b',
    setup: ({ b }) => b.sysctl('net.ipv4.ip_forward', '0'),
    cause: ({ a }) => void py(a, udpFromA(2, '10.2.0.2', 300, 16)),
    cause_key: 'IP_INADDRERRORS/forwarding-off',
    kind: 'drops',
    counterDeltas: [{ name: 'Ip:InAddrErrors', min: 300 }],
    fix: 'ip_forward',
  },
  {
    name: 'IPv6 forwarding off on a router',
    net: { router: true, ipv6: true },
    where: 'b',
    setup: ({ b }) => b.sysctl('net.ipv6.conf.all.forwarding', '0'),
    cause: ({ a }) => void py(a, udpFromA(10, 'fd02::2', 300, 16)),
    cause_key: ['IP_INADDRERRORS/forwarding-off', 'IP_INADDRERRORS/ipv6-unforwardable'],
    kind: 'drops',
    counterDeltas: [{ name: 'Ip6:InAddrErrors', min: 300 }],
    fix: 'forwarding',
  },
  {
    name: 'no route at a router',
    net: { router: true },
    where: 'b',
    // a sends everything to b; b knows no way to 10.99.0.0/16.
    cause: ({ a }) => void py(a, udpFromA(2, '10.99.0.9', 300, 16)),
    cause_key: 'IP_INNOROUTES',
    kind: 'drops',
    counterDeltas: [{ name: 'IpExt:InNoRoutes', min: 300 }],
    fix: 'route',
  },
  {
    name: 'DF packets larger than the next link',
    net: { router: true },
    where: 'b',
    setup: ({ b, c }) => {
      b.ip('link', 'set', 'b1', 'mtu', '1280');
      c?.ip('link', 'set', 'c0', 'mtu', '1280');
    },
    // IP_MTU_DISCOVER (10) = IP_PMTUDISC_PROBE (3): DF set, and the sender keeps sending 1400 bytes
    // whatever path MTU it learns, so every datagram reaches the router.
    cause: ({ a }) => void py(a, udpFromA(2, '10.2.0.2', 300, 1400, 's.setsockopt(0,10,3)')),
    cause_key: 'PKT_TOO_BIG/forward-df',
    kind: 'drops',
    counterDeltas: [{ name: 'Ip:FragFails', min: 300 }],
    fix: 'MTU|MSS',
  },
  {
    name: 'IPv6 packets larger than the next link',
    net: { router: true, ipv6: true },
    where: 'b',
    setup: ({ b, c }) => {
      b.ip('link', 'set', 'b1', 'mtu', '1280');
      c?.ip('link', 'set', 'c0', 'mtu', '1280');
    },
    // IPV6_MTU_DISCOVER (23) = IPV6_PMTUDISC_PROBE (3).
    cause: ({ a }) => void py(a, udpFromA(10, 'fd02::2', 300, 1400, 's.setsockopt(41,23,3)')),
    cause_key: 'PKT_TOO_BIG/forward-ipv6',
    kind: 'drops',
    counterDeltas: [{ name: 'Ip6:InTooBigErrors', min: 300 }],
    fix: 'MTU|MSS',
  },
  {
    name: 'reverse-path filter',
    where: 'b',
    setup: ({ a, b }) => {
      // B routes 10.9.0.0/24 through another interface, so a packet from 10.9.0.5 arriving on b0 fails rp_filter.
      a.ip('link', 'add', 'c1', 'type', 'veth', 'peer', 'name', 'b1', 'netns', b.name);
      b.ip('addr', 'add', '10.9.0.1/24', 'dev', 'b1');
      b.ip('link', 'set', 'b1', 'up');
      b.sysctl('net.ipv4.conf.all.rp_filter', '1');
      b.sysctl('net.ipv4.conf.b0.rp_filter', '1');
      a.ip('addr', 'add', '10.9.0.5/32', 'dev', 'a0');
      // B would not answer ARP for a source that fails rp_filter: tell A B's address.
      a.ip('neigh', 'add', '10.1.0.2', 'lladdr', macOf(b, 'b0'), 'dev', 'a0');
    },
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '200', '-a', '10.1.0.2', '-s', '10.9.0.5', ...PACED], a.name),
    cause_key: 'IP_RPFILTER/strict',
    kind: 'drops',
    counterDeltas: [{ name: 'TcpExt:IPReversePathFilter', min: 200 }],
    fix: 'rp_filter',
  },
];
