/**
 * Fixed inputs for the formatter tests, written out by hand: a small symbol
 * table, drop points, intervals, counter deltas and a knowledge view. Nothing
 * here reads the host (no kallsyms, no namespaces, no knowledge base files).
 */
import type { DropPoint, IntervalReport } from '../../src/core/interval.js';
import type { CounterDelta, CounterReading } from '../../src/core/counter.js';
import type { CounterKnowledge, EntryKnowledge, KnowledgeView } from '../../src/core/knowledge-view.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';

/** Code addresses of the symbol table below. */
export const UDP_RCV = 0xffffffff81abc4bcn; // __udp4_lib_rcv+0x4bc
export const UDP_ENQUEUE = 0xffffffff81abd020n; // __udp_enqueue_schedule_skb+0x20
export const KFREE_SKB = 0xffffffff81abe010n; // kfree_skb_reason+0x10
export const TRACE_FRAME = 0xffffffff81abf008n; // trace_event_raw_event_kfree_skb+0x8
export const TCP_DISCONNECT = 0xffffffff81ac0100n; // tcp_disconnect+0x100
export const NFT_DO_CHAIN = 0xffffffffc0001010n; // nft_do_chain+0x10 [nf_tables]
/** An address below the first symbol: no symbol covers it. */
export const UNKNOWN = 0xffffffff80001000n;

export const SYMBOLS = new Symbolizer(
  KallsymsTable.parse(
    [
      'ffffffff81abc000 t __udp4_lib_rcv',
      'ffffffff81abd000 t __udp_enqueue_schedule_skb',
      'ffffffff81abe000 T kfree_skb_reason',
      'ffffffff81abf000 t trace_event_raw_event_kfree_skb',
      'ffffffff81ac0000 T tcp_disconnect',
      'ffffffff81ac1000 T _etext',
      'ffffffffc0001000 t nft_do_chain\t[nf_tables]',
      'ffffffffc0001400 t nft_other\t[nf_tables]',
      '',
    ].join('\n'),
  ),
);

/** A software drop point: NO_SOCKET, IPv4, at __udp4_lib_rcv+0x4bc, unless told otherwise. */
export function point(more: Partial<DropPoint> = {}): DropPoint {
  return { location: UDP_RCV, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software', count: 1, ...more };
}

/** Interval 7: the second up to 2024-01-02T03:04:05Z; its drops are its points' counts. */
export const START = Date.UTC(2024, 0, 2, 3, 4, 4);
export const END = START + 1000;

export function interval(points: readonly DropPoint[], more: Partial<IntervalReport> = {}): IntervalReport {
  return {
    start: START,
    end: END,
    seq: 7,
    points,
    overflow: { drops: 0, points: 0, pointsCapped: false },
    drops: points.reduce((n, p) => n + p.count, 0),
    lost: new Map(),
    lostTotal: 0,
    ...more,
  };
}

export function reading(name: string, value: number, more: Partial<CounterReading> = {}): CounterReading {
  return { name, scope: '', layer: 'udp', value, source: '/proc/net/snmp', ...more };
}

export function delta(name: string, d: number, more: Partial<CounterDelta> = {}): CounterDelta {
  return { name, scope: '', layer: 'udp', value: 1000 + d, source: '/proc/net/snmp', delta: d, rate: d, ...more };
}

/**
 * A knowledge view of five counters: Udp:RcvbufErrors (a drop, paired with
 * SOCKET_RCVBUFF), Udp:InErrors (an error paired with it), Udp:InDatagrams
 * (traffic), link:rx_dropped and socket:drops (drops). Any other counter is
 * unknown to it.
 */
export const KNOWLEDGE: KnowledgeView = (() => {
  const counters = new Map<string, CounterKnowledge>([
    ['Udp:RcvbufErrors', { name: 'Udp:RcvbufErrors', summary: 'UDP datagrams dropped: the socket receive buffer was full', drop: true }],
    ['Udp:InErrors', { name: 'Udp:InErrors', summary: 'UDP datagrams that could not be delivered' }],
    ['Udp:InDatagrams', { name: 'Udp:InDatagrams', summary: 'UDP datagrams delivered' }],
    ['link:rx_dropped', { name: 'link:rx_dropped', summary: 'packets the device or the stack dropped on receive', drop: true }],
    ['socket:drops', { name: 'socket:drops', summary: 'packets a socket dropped', drop: true }],
  ]);
  const pairs: Record<string, string[]> = { 'Udp:RcvbufErrors': ['SOCKET_RCVBUFF'], 'Udp:InErrors': ['SOCKET_RCVBUFF'] };
  const none = (): EntryKnowledge | undefined => undefined;
  return {
    counter: (name) => counters.get(name),
    reason: none,
    symbol: none,
    trap: none,
    reasonsForCounter: (name) => pairs[name] ?? [],
    countersForReason: (reason) => Object.keys(pairs).filter((c) => pairs[c].includes(reason)),
    benign: () => 'no',
    explainReason: (name) => ({ name, summary: '', known: false }),
  };
})();

const MACS = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];

/** An IPv4 header (no options) for `payloadLength` bytes of protocol `proto`, 10.0.0.1 -> 10.0.0.2. */
function ipv4Header(proto: number, payloadLength: number): number[] {
  const total = 20 + payloadLength;
  return [0x45, 0, total >> 8, total & 0xff, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
}

/** Ethernet, IPv4, UDP 10.0.0.1:5000 -> 10.0.0.2:9, no payload: 42 bytes. */
export function ipv4Udp(): Uint8Array {
  return Uint8Array.from([...MACS, 0x08, 0x00, ...ipv4Header(17, 8), 0x13, 0x88, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00]);
}

/** Ethernet, IPv4, ICMP echo request 10.0.0.1 -> 10.0.0.2. */
export function ipv4Icmp(): Uint8Array {
  return Uint8Array.from([...MACS, 0x08, 0x00, ...ipv4Header(1, 8), 8, 0, 0, 0, 0, 1, 0, 1]);
}

/** An IPv6 header, 2001:db8::1 -> 2001:db8::2, then TCP [2001:db8::1]:443 -> [2001:db8::2]:51000 (a bare SYN-ACK header). */
export function ipv6TcpL3(): Uint8Array {
  const addr = (last: number) => [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
  const tcp = [0x01, 0xbb, 0xc7, 0x38, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0];
  return Uint8Array.from([0x60, 0, 0, 0, 0, tcp.length, 6, 64, ...addr(1), ...addr(2), ...tcp]);
}

/** The same with its Ethernet header. */
export function ipv6Tcp(): Uint8Array {
  return Uint8Array.from([...MACS, 0x86, 0xdd, ...ipv6TcpL3()]);
}
