/** Drops waiting for a neighbour: a queue that fills, a resolution that fails (ARP and neighbour discovery). */
import { runDropgen } from '../../helpers/dropgen.js';
import { py, sleep } from '../net.js';
import type { Scenario } from '../scenario.js';
import { PACED } from './sockets.js';

/**
 * 200 packets to a silent neighbour, all queued (the queue is made large
 * enough), then time for resolution to fail (3 probes 100 ms apart). The
 * failure also sends the sender an ICMP unreachable per packet, which the
 * kernel drops on the way in (ICMP_CSUM); ICMP's global rate limit (a burst
 * of 50) keeps those fewer than the packets the failure cost.
 */
const toSilentNeighbour = (family: 2 | 10, dst: string) =>
  `s=socket.socket(${family},2)\nfor i in range(200):\n    s.sendto(b"x",("${dst}",47020)); PACE(i)\n`;

export const NEIGHBOUR_SCENARIOS: readonly Scenario[] = [
  {
    name: 'neighbour that never answers: the queue fills',
    where: 'a',
    setup: ({ a }) => a.sysctl('net.ipv4.neigh.a0.unres_qlen_bytes', '2000'),
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '200', '-a', '10.1.0.77', '-l', '200', ...PACED], a.name),
    cause_key: ['NEIGH_QUEUEFULL/unresolved-next-hop', 'NEIGH_QUEUEFULL/burst'],
    kind: 'drops',
    counterDeltas: [{ name: 'arp_cache:unresolved_discards', min: 150 }],
    fix: 'neigh|next hop|gateway',
  },
  {
    name: 'ARP resolution fails',
    where: 'a',
    setup: ({ a }) => {
      a.sysctl('net.ipv4.neigh.a0.retrans_time_ms', '100');
      a.sysctl('net.ipv4.neigh.a0.unres_qlen_bytes', '4000000');
    },
    cause: async ({ a }) => {
      py(a, toSilentNeighbour(2, '10.1.0.88'));
      await sleep(1500);
    },
    cause_key: 'NEIGH_FAILED/arp',
    kind: 'drops',
    counterDeltas: [{ name: 'arp_cache:res_failed', min: 1 }],
    fix: 'neigh|next hop|gateway|ARP',
  },
  {
    name: 'IPv6 neighbour discovery fails',
    net: { ipv6: true },
    where: 'a',
    setup: ({ a }) => {
      a.sysctl('net.ipv6.neigh.a0.retrans_time_ms', '100');
      a.sysctl('net.ipv6.neigh.a0.unres_qlen_bytes', '4000000');
    },
    cause: async ({ a }) => {
      py(a, toSilentNeighbour(10, 'fd01::88'));
      await sleep(1500);
    },
    // Linux 6.18 frees these without a reason (NOT_SPECIFIED at neigh_invalidate); kernels that give NEIGH_FAILED get the other key.
    cause_key: ['NOT_SPECIFIED/ndisc-failed', 'NEIGH_FAILED/ndisc'],
    kind: 'drops',
    counterDeltas: [{ name: 'ndisc_cache:res_failed', min: 1 }],
    fix: 'neigh|next hop|gateway|ndisc|NDP',
  },
];
