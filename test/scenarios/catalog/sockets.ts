/** Drops at sockets: full receive buffers, closed ports, filters, accept queues. */
import { runDropgen } from '../../helpers/dropgen.js';
import { background, bound, py } from '../net.js';
import type { Scenario } from '../scenario.js';

/**
 * Senders are paced: an unpaced burst of thousands of packets through a veth
 * also overflows the per-CPU receive backlog on a slow or loaded machine
 * (ksoftirqd does not run while the sender spins), which makes a second cause
 * (CPU_BACKLOG) that can outnumber the scenario's own. At 10,000 packets a
 * second in bursts of 16 the backlog (1000 by default) never fills.
 */
export const PACED = ['-r', '10000'];

/** A Python socket that never reads: SO_RCVBUF (option 8) at its minimum, alive for 30 s. */
const neverReads = (family: number, type: number, proto: number, bind: string) =>
  `import socket,time\ns=socket.socket(${family},${type},${proto})\ns.setsockopt(1,8,1)\ns.bind(${bind})\ntime.sleep(30)`;

export const SOCKET_SCENARIOS: readonly Scenario[] = [
  {
    name: 'tiny UDP socket receive buffer',
    where: 'b',
    setup: ({ b }) => void background.start(b, 'python3', ['-c', neverReads(2, 2, 0, '("10.1.0.2",47001)')]),
    cause: async ({ a, b }) => {
      await bound(b, 47001);
      runDropgen(['-m', 'udp', '-n', '2000', '-a', '10.1.0.2', '-p', '47001', '-l', '200', ...PACED], a.name);
    },
    cause_key: 'SOCKET_RCVBUFF/udp',
    kind: 'drops',
    counterDeltas: [{ name: 'Udp:RcvbufErrors', min: 1000 }, { name: 'socket:drops', min: 1000 }],
    fix: 'SO_RCVBUF|rmem',
    socketOwner: 'python3',
  },
  {
    name: 'closed UDP port',
    where: 'b',
    cause: ({ a }) => void runDropgen(['-m', 'noport', '-n', '300', '-a', '10.1.0.2', ...PACED], a.name),
    cause_key: 'NO_SOCKET/udp-closed-port',
    kind: 'drops',
    counterDeltas: [{ name: 'Udp:NoPorts', min: 300 }],
    fix: 'start the service|bind',
  },
  {
    name: 'closed UDP port over IPv6',
    net: { ipv6: true },
    where: 'b',
    cause: ({ a }) => void py(a, 's=socket.socket(10,2)\nfor i in range(300):\n    s.sendto(b"x",("fd01::2",9)); PACE(i)\n'),
    cause_key: 'NO_SOCKET/udp-closed-port',
    kind: 'drops',
    counterDeltas: [{ name: 'Udp6:NoPorts', min: 300 }],
    fix: 'start the service|bind',
  },
  {
    name: 'closed TCP port',
    where: 'b',
    // Non-blocking connects: each SYN meets no listener, is dropped, and a reset goes back.
    cause: ({ a }) =>
      void py(
        a,
        'socks=[]\nfor i in range(300):\n    s=socket.socket(2,1); s.setblocking(False)\n    try: s.connect(("10.1.0.2",47004))\n    except OSError: pass\n    socks.append(s); PACE(i)\ntime.sleep(0.5)\n',
      ),
    cause_key: 'NO_SOCKET/tcp-closed-port',
    kind: 'drops',
    counterDeltas: [{ name: 'Tcp:OutRsts', min: 250 }],
    fix: 'start the service|bind',
  },
  {
    name: 'socket filter that refuses every datagram',
    where: 'b',
    // SO_ATTACH_FILTER (26) with classic BPF "ret #0": the socket takes nothing.
    setup: ({ b }) =>
      void background.start(b, 'python3', [
        '-c',
        'import socket,struct,ctypes,time\ns=socket.socket(2,2)\ns.bind(("10.1.0.2",47005))\nprog=ctypes.create_string_buffer(struct.pack("HBBI",6,0,0,0))\nfprog=struct.pack("HL",1,ctypes.addressof(prog))\ns.setsockopt(1,26,fprog)\ntime.sleep(30)',
      ]),
    cause: async ({ a, b }) => {
      await bound(b, 47005);
      runDropgen(['-m', 'udp', '-n', '500', '-a', '10.1.0.2', '-p', '47005', ...PACED], a.name);
    },
    cause_key: 'SOCKET_FILTER/udp',
    kind: 'drops',
    counterDeltas: [{ name: 'socket:drops', min: 400 }],
    fix: 'filter',
    socketOwner: 'python3',
  },
  {
    name: 'TCP listen backlog overflow',
    where: 'b',
    // The kernel frees SYNs refused by a full accept queue without a drop event: counters only.
    cause: ({ b }) => void runDropgen(['-m', 'listen', '-n', '200', '-a', '127.0.0.1', '-p', '47003'], b.name),
    cause_key: ['TcpExt:ListenOverflows', 'TcpExt:ListenDrops', 'TCP_LISTEN_OVERFLOW'],
    kind: 'counter',
    counterDeltas: [{ name: 'TcpExt:ListenOverflows', min: 100 }],
    fix: 'backlog|somaxconn|accept',
  },
];
