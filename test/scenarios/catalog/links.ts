/** Drops at the link layer and below IP: unknown protocols, a full receive backlog, tunnels, tc programs. */
import { fileURLToPath } from 'node:url';
import { runDropgen } from '../../helpers/dropgen.js';
import type { TestNetns } from '../../helpers/netns.js';
import { background, macOf, py, restoreGlobals, setGlobalSysctl, sleep, tcLacks } from '../net.js';
import type { Scenario } from '../scenario.js';
import { PACED } from './sockets.js';

/** A classic BPF program, "ret #2" (TC_ACT_SHOT), as a direct-action filter on IPv4 only: ARP still passes. */
function dropIpv4(ns: TestNetns, dev: string, hook: 'ingress' | 'egress'): void {
  ns.exec('tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
  ns.exec('tc', ['filter', 'add', 'dev', dev, hook, 'protocol', 'ip', 'pref', '10', 'bpf', 'da', 'bytecode', '1,6 0 0 2,']);
}

/** Attach an XDP program that drops everything to `dev` (generic mode), held by a background process; wait until it is on. */
async function xdpDropAll(ns: TestNetns, dev: string): Promise<void> {
  background.start(ns, process.execPath, [fileURLToPath(new URL('../xdp-drop.js', import.meta.url)), dev]);
  for (const end = Date.now() + 20_000; Date.now() < end; await sleep(50)) if (/xdpgeneric/.test(ns.ip('-d', 'link', 'show', dev))) return;
  throw new Error(`no XDP program on ${dev} in ${ns.name} within 20 s`);
}

const needsClsBpf = () => tcLacks('filter', 'bpf', ['da', 'bytecode', '1,6 0 0 0,']);

export const LINK_SCENARIOS: readonly Scenario[] = [
  {
    name: 'unknown EtherType',
    where: 'b',
    cause: ({ a }) => void runDropgen(['-m', 'ethproto', '-n', '400', '-i', 'a0', ...PACED], a.name),
    cause_key: 'UNHANDLED_PROTO',
    kind: 'drops',
    counterDeltas: [{ name: 'link:rx_dropped', min: 400 }],
    fix: 'protocol|sender',
  },
  {
    name: 'receive backlog of one packet (netdev_max_backlog=1)',
    where: 'b',
    // With the veth's own UDP segmentation off, one GSO datagram reaches the
    // receive backlog as ten segments at once; a backlog of one keeps one.
    setup: ({ a }) => void a.exec('ethtool', ['-K', 'a0', 'tx-udp-segmentation', 'off']),
    cause: ({ a }) => {
      setGlobalSysctl('net.core.netdev_max_backlog', '1');
      try {
        runDropgen(['-m', 'udp', '-n', '40', '-a', '10.1.0.2', '-l', '14000', '-g', '1400'], a.name);
      } finally {
        restoreGlobals();
      }
    },
    cause_key: 'CPU_BACKLOG',
    kind: 'drops',
    counterDeltas: [{ name: 'softnet:dropped', min: 1 }],
    fix: 'netdev_max_backlog',
  },
  {
    name: 'VXLAN packets with a malformed header',
    where: 'b',
    setup: ({ b }) => {
      b.ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', '100', 'dstport', '4789', 'local', '10.1.0.2', 'dev', 'b0');
      b.ip('link', 'set', 'vx0', 'up');
    },
    // VNI 100 with the I flag and one flag bit no VXLAN extension defines: the device is found,
    // the unknown flag makes the header malformed (counted as a frame error on the device).
    cause: ({ a }) =>
      void py(
        a,
        's=socket.socket(2,2)\nhdr=bytes([0x09,0,0,0,0,0,100,0])\nframe=b"\\xff"*6+b"\\x02"*6+b"\\x08\\x00"+b"x"*28\nfor i in range(300):\n    s.sendto(hdr+frame,("10.1.0.2",4789)); PACE(i)\n',
      ),
    cause_key: 'VXLAN_INVALID_HDR',
    kind: 'drops',
    counterDeltas: [{ name: 'link:rx_frame_errors', min: 300 }],
    fix: 'VXLAN|VNI|sender',
  },
  {
    name: 'tc ingress filter that drops',
    where: 'b',
    skip: needsClsBpf,
    setup: ({ b }) => dropIpv4(b, 'b0', 'ingress'),
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '300', '-a', '10.1.0.2', '-p', '47030', ...PACED], a.name),
    cause_key: 'TC_INGRESS/bpf-filter',
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 300 }],
    fix: 'program|filter',
  },
  {
    name: 'tc egress filter that drops',
    where: 'a',
    skip: needsClsBpf,
    setup: ({ a }) => dropIpv4(a, 'a0', 'egress'),
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '300', '-a', '10.1.0.2', '-p', '47031', ...PACED], a.name),
    cause_key: 'TC_EGRESS/bpf-filter',
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 300 }],
    fix: 'program|filter',
  },
  {
    name: 'XDP program that drops (generic mode)',
    where: 'b',
    // XDP drops ARP too: a knows b's address without asking.
    setup: ({ a, b }) => a.ip('neigh', 'add', '10.1.0.2', 'lladdr', macOf(b, 'b0'), 'dev', 'a0'),
    cause: async ({ a, b }) => {
      await xdpDropAll(b, 'b0');
      runDropgen(['-m', 'udp', '-n', '300', '-a', '10.1.0.2', '-p', '47032', ...PACED], a.name);
    },
    cause_key: 'NOT_SPECIFIED/generic-xdp-drop',
    kind: 'drops',
    // No kernel counter counts XDP_DROP in generic mode: the drop location is the evidence (the
    // count may be split between offsets of that function, so none is asked of one line).
    evidence: '^\\d+ drops at (netif_receive_generic_xdp|bpf_prog_run_generic_xdp|do_xdp_generic)\\+',
    fix: 'XDP|xdpgeneric',
  },
];
