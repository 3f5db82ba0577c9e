/**
 * Drop scenarios: each builds a small network of namespaces, makes one kind of
 * drop happen for real, and says what dropmon must conclude: the drop reason
 * (or, for drops no tracer sees, the counter) that `diagnose` ranks first,
 * and the counters that must have moved, in which namespace.
 *
 * The network: namespaces A and B joined by a veth pair a0 (10.1.0.1/24) and
 * b0 (10.1.0.2/24), IPv6 off so that no background chatter competes.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { TestNetns, sh } from '../helpers/netns.js';
import { runDropgen } from '../helpers/dropgen.js';

export interface Net {
  readonly a: TestNetns;
  readonly b: TestNetns;
}

export interface Scenario {
  readonly name: string;
  /** Why the scenario cannot run here, if it cannot. */
  skip?(): string | undefined;
  /** Extra set-up before dropmon starts (qdiscs, rules, listeners). */
  setup?(net: Net): void;
  /** Make the drops happen; dropmon is running. */
  cause(net: Net): void | Promise<void>;
  /** Undo changes outside the namespaces (global sysctls). */
  restore?(): void;
  /** The namespace whose counters tell the story. */
  readonly counters: 'a' | 'b';
  /** The key of the first (non-benign) finding: a drop reason, or a counter-only cause. */
  readonly cause_key: string | readonly string[];
  readonly kind: 'drops' | 'counter';
  /** Counters that must have moved (name and a minimum increase), in the finding's evidence. */
  readonly counterDeltas?: ReadonlyArray<{ name: string; min: number }>;
  /** The process that must be named as the owner of the socket that dropped. */
  readonly socketOwner?: string;
  /** Words the explanation chosen must contain (case-insensitive). */
  readonly causeMentions?: readonly string[];
}

export function buildNet(label: string): Net {
  const a = new TestNetns(`${label}a`);
  const b = new TestNetns(`${label}b`);
  TestNetns.vethPair(a, 'a0', b, 'b0');
  a.ip('addr', 'add', '10.1.0.1/24', 'dev', 'a0');
  b.ip('addr', 'add', '10.1.0.2/24', 'dev', 'b0');
  return { a, b };
}

function macOf(ns: TestNetns, ifname: string): string {
  return ns.exec('cat', [`/sys/class/net/${ifname}/address`]).trim();
}

/** A background process inside a namespace, killed by `stop()`. */
export class Background {
  private readonly pid: number;
  constructor(ns: TestNetns, cmd: string, args: string[]) {
    const out = execFileSync('sh', ['-c', `ip netns exec "$0" "$@" >/dev/null 2>&1 & echo $!`, ns.name, cmd, ...args], { encoding: 'utf8' });
    this.pid = Number(out.trim());
  }
  stop(): void {
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

let keep: Background | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait (bounded) until a UDP socket is bound to `port` in `ns`: a process started in the background takes its time. */
async function udpBound(ns: TestNetns, port: number, ms = 20_000): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    if (ns.exec('cat', ['/proc/net/udp']).includes(hex)) return;
  }
  throw new Error(`nothing bound UDP port ${port} in ${ns.name} within ${ms} ms`);
}

/**
 * Senders are paced: an unpaced burst of thousands of packets through a veth
 * also overflows the per-CPU receive backlog on a slow or loaded machine
 * (ksoftirqd does not run while the sender spins), which makes a second cause
 * (CPU_BACKLOG) that can outnumber the scenario's own. At 10,000 packets a
 * second in bursts of 16 the backlog (1000 by default) never fills.
 */
const PACED = ['-r', '10000'];

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'tiny socket receive buffer',
    counters: 'b',
    setup: ({ b }) => {
      // A UDP socket with the smallest receive buffer that never reads, alive while dropmon samples it.
      keep = new Background(b, 'python3', ['-c', 'import socket,time\ns=socket.socket(2,2)\ns.setsockopt(1,8,1)\ns.bind(("10.1.0.2",47001))\ntime.sleep(30)']);
    },
    cause: async ({ a, b }) => {
      await udpBound(b, 47001);
      runDropgen(['-m', 'udp', '-n', '2000', '-a', '10.1.0.2', '-p', '47001', '-l', '200', ...PACED], a.name);
    },
    restore: () => keep?.stop(),
    cause_key: 'SOCKET_RCVBUFF/udp',
    kind: 'drops',
    counterDeltas: [{ name: 'Udp:RcvbufErrors', min: 1000 }, { name: 'socket:drops', min: 1000 }],
    socketOwner: 'python3',
  },
  {
    name: 'closed UDP port',
    counters: 'b',
    cause: ({ a }) => void runDropgen(['-m', 'noport', '-n', '300', '-a', '10.1.0.2', ...PACED], a.name),
    cause_key: 'NO_SOCKET/udp-closed-port',
    kind: 'drops',
    counterDeltas: [{ name: 'Udp:NoPorts', min: 300 }],
  },
  {
    name: 'nftables drop rule',
    counters: 'b',
    setup: ({ b }) => {
      b.exec('nft', ['add', 'table', 'inet', 'dmtest']);
      b.exec('nft', ['add', 'chain', 'inet', 'dmtest', 'in', '{ type filter hook input priority 0; }']);
      b.exec('nft', ['add', 'rule', 'inet', 'dmtest', 'in', 'udp', 'dport', '47002', 'counter', 'drop']);
    },
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '300', '-a', '10.1.0.2', '-p', '47002', ...PACED], a.name),
    cause_key: 'NETFILTER_DROP/rule',
    kind: 'drops',
  },
  {
    name: 'TCP listen backlog overflow',
    counters: 'b',
    // The kernel frees SYNs refused by a full accept queue without a drop event: counters only.
    cause: ({ b }) => void runDropgen(['-m', 'listen', '-n', '60', '-a', '127.0.0.1', '-p', '47003'], b.name),
    cause_key: ['TcpExt:ListenOverflows', 'TcpExt:ListenDrops', 'TCP_LISTEN_OVERFLOW'],
    kind: 'counter',
    counterDeltas: [{ name: 'TcpExt:ListenOverflows', min: 40 }],
  },
  {
    name: 'reverse-path filter',
    counters: 'b',
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
  },
  {
    name: 'tbf qdisc over its rate',
    counters: 'a',
    setup: ({ a }) => a.exec('tc', ['qdisc', 'add', 'dev', 'a0', 'root', 'tbf', 'rate', '1mbit', 'burst', '2k', 'limit', '3k']),
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '1000', '-a', '10.1.0.2', '-l', '1000', ...PACED], a.name),
    cause_key: 'QDISC_DROP/tbf',
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 900 }],
  },
  {
    name: 'unknown EtherType',
    counters: 'b',
    cause: ({ a }) => void runDropgen(['-m', 'ethproto', '-n', '400', '-i', 'a0', ...PACED], a.name),
    cause_key: 'UNHANDLED_PROTO',
    kind: 'drops',
    counterDeltas: [{ name: 'link:rx_dropped', min: 400 }],
  },
  {
    name: 'neighbour that never answers',
    counters: 'a',
    setup: ({ a }) => a.sysctl('net.ipv4.neigh.a0.unres_qlen_bytes', '2000'),
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '200', '-a', '10.1.0.77', '-l', '200', ...PACED], a.name),
    cause_key: ['NEIGH_QUEUEFULL/unresolved-next-hop', 'NEIGH_QUEUEFULL/burst'],
    kind: 'drops',
  },
  {
    name: 'receive backlog of one packet (netdev_max_backlog=1)',
    counters: 'b',
    setup: ({ a }) => {
      // With the veth's own UDP segmentation off, one GSO datagram reaches the
      // receive backlog as ten segments at once; a backlog of one keeps one.
      a.exec('ethtool', ['-K', 'a0', 'tx-udp-segmentation', 'off']);
      saved.backlog = readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim();
    },
    cause: ({ a }) => {
      sh('sysctl', ['-q', '-w', 'net.core.netdev_max_backlog=1']);
      try {
        runDropgen(['-m', 'udp', '-n', '40', '-a', '10.1.0.2', '-l', '14000', '-g', '1400'], a.name);
      } finally {
        restoreBacklog();
      }
    },
    restore: () => restoreBacklog(),
    cause_key: 'CPU_BACKLOG',
    kind: 'drops',
    counterDeltas: [{ name: 'softnet:dropped', min: 1 }],
  },
  {
    name: 'conntrack table full',
    counters: 'b',
    skip: () => {
      // The limit is global: lower it only where no namespace here tracks connections but ours.
      let count = 0;
      try {
        count = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8'));
      } catch {
        /* conntrack not loaded: nobody tracks */
      }
      return count > 0 ? 'the host tracks connections: lowering the global nf_conntrack_max would hurt them' : undefined;
    },
    setup: ({ b }) => {
      b.exec('nft', ['add', 'table', 'inet', 'dmct']);
      b.exec('nft', ['add', 'chain', 'inet', 'dmct', 'in', '{ type filter hook input priority 0; }']);
      b.exec('nft', ['add', 'rule', 'inet', 'dmct', 'in', 'ct', 'state', 'new', 'counter']);
      saved.ctmax = readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').trim();
    },
    cause: ({ a }) => {
      sh('sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_max=20']);
      try {
        // 60 senders, 60 source ports, 60 new connections: 40 find the table full.
        runDropgen(['-m', 'noport', '-n', '60', '-P', '60', '-a', '10.1.0.2'], a.name);
      } finally {
        restoreCtMax();
      }
    },
    restore: () => restoreCtMax(),
    cause_key: 'NETFILTER_DROP/conntrack-full',
    kind: 'drops',
    counterDeltas: [{ name: 'conntrack:drop', min: 30 }],
    causeMentions: ['conntrack'],
  },
];

const saved: { backlog?: string; ctmax?: string } = {};

function restoreBacklog(): void {
  if (saved.backlog) sh('sysctl', ['-q', '-w', `net.core.netdev_max_backlog=${saved.backlog}`]);
}

function restoreCtMax(): void {
  if (saved.ctmax) sh('sysctl', ['-q', '-w', `net.netfilter.nf_conntrack_max=${saved.ctmax}`]);
}
