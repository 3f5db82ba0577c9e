/** Counters beside the drops that explain them, per interval, as text lines and JSON (outputs/correlation.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_REASON } from '../../src/core/drop.js';
import type { Correlation } from '../../src/core/interval.js';
import type { Attribution } from '../../src/core/attribution.js';
import { CorrelationJsonOutput, CorrelationTextOutput, correlationJson, formatCorrelationText } from '../../src/outputs/correlation.js';
import { NFT_DO_CHAIN, SYMBOLS, TCP_DISCONNECT, UDP_ENQUEUE, UNKNOWN, delta, interval, point } from './inputs.js';

const rcvbuf = point({ location: UDP_ENQUEUE, reason: 6, reasonName: 'SOCKET_RCVBUFF', count: 120 });
const socketFull = delta('socket:drops', 120, { scope: 'udp 10.1.0.2:47001', layer: 'socket', detail: 'pid 812 (named)' });
const RCVBUF_GROUP = {
  reasons: ['SOCKET_RCVBUFF'],
  counters: [delta('Udp:RcvbufErrors', 120, { rate: 0.12345 }), delta('Udp:InErrors', 120), socketFull],
  points: [rcvbuf],
  drops: 120,
};
const MISSED = { counter: delta('link:rx_missed_errors', 50, { scope: 'eth0', layer: 'nic' }), why: 'these drops never reach kfree_skb, so no drop event can show them' };
const purge = point({ location: TCP_DISCONNECT, reason: 2, reasonName: 'QUEUE_PURGE', count: 3 });

test('text: a group per cause (counters, drop points, sockets), blind spots, benign drops; lists cut with "…"', () => {
  const correlation: Correlation = {
    groups: [
      RCVBUF_GROUP,
      {
        // Only sockets counted these: the counters part says so.
        reasons: ['NO_SOCKET', 'NETFILTER_DROP'],
        counters: [
          delta('socket:drops', 2, { scope: 'udp 10.1.0.2:53', layer: 'socket' }),
          delta('socket:drops', 1, { scope: 'udp 10.1.0.2:54', layer: 'socket', detail: 'pid 9 (x)' }),
          delta('socket:drops', 1, { scope: 'udp 10.1.0.2:55', layer: 'socket' }),
        ],
        points: [point({ count: 5 }), point({ location: NFT_DO_CHAIN, reason: 7, reasonName: 'NETFILTER_DROP', count: 3 }), point({ count: 1 })],
        drops: 9,
      },
      {
        // Interfaces named after "on"; sockets' scopes (udp, raw, icmp) are not.
        reasons: ['NOT_SPECIFIED'],
        counters: [
          delta('Ip:InDiscards', 1),
          delta('link:rx_dropped', 2, { scope: 'eth0', layer: 'nic' }),
          delta('Icmp:InErrors', 3, { scope: 'icmp' }),
          delta('ethtool:rx_missed', 4, { scope: 'eth0', layer: 'driver' }),
          delta('Ip:OutDiscards', 5),
        ],
        points: [point({ location: UNKNOWN, reason: 2, reasonName: 'NOT_SPECIFIED', count: 1 })],
        drops: 1,
      },
    ],
    blindSpots: [MISSED, ...[1, 2, 3, 4, 5, 6].map((i) => ({ counter: delta(`ethtool:rx_queue_${i}_drops`, i, { scope: 'eth0', layer: 'driver' }), why: 'no drop event matched' }))],
  };
  const benignPoints = [
    purge,
    point({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count: 2, trap: { name: 'ingress_vlan_filter' } }),
    point({ count: 1 }),
    point({ count: 1 }),
  ];
  assert.deepEqual(formatCorrelationText(interval([], { correlation, benignPoints }), SYMBOLS), [
    '= Udp:RcvbufErrors +120, Udp:InErrors +120  <->  120 x SOCKET_RCVBUFF at __udp_enqueue_schedule_skb  [socket udp 10.1.0.2:47001: pid 812 (named) +120]',
    '= socket drops  <->  5 x NO_SOCKET at __udp4_lib_rcv, 3 x NETFILTER_DROP at nft_do_chain, …  [socket udp 10.1.0.2:53 +2; socket udp 10.1.0.2:54: pid 9 (x) +1]',
    '= Ip:InDiscards +1, link:rx_dropped +2 on eth0, Icmp:InErrors +3, ethtool:rx_missed +4 on eth0, …  <->  1 x NOT_SPECIFIED at 0xffffffff80001000',
    '! blind spot: link:rx_missed_errors +50 on eth0: these drops never reach kfree_skb, so no drop event can show them',
    '! blind spot: ethtool:rx_queue_1_drops +1 on eth0: no drop event matched',
    '! blind spot: ethtool:rx_queue_2_drops +2 on eth0: no drop event matched',
    '! blind spot: ethtool:rx_queue_3_drops +3 on eth0: no drop event matched',
    '! blind spot: ethtool:rx_queue_4_drops +4 on eth0: no drop event matched',
    '! blind spot: ethtool:rx_queue_5_drops +5 on eth0: no drop event matched',
    '! … 1 more counters moved with no drop event',
    '~ usually benign: 7 drops (3 QUEUE_PURGE at tcp_disconnect, 2 drops at ingress_vlan_filter, 1 NO_SOCKET at __udp4_lib_rcv, …)',
  ]);
  assert.deepEqual(formatCorrelationText(interval([point()]), SYMBOLS), [], 'nothing without counters or benign drops');
  assert.deepEqual(formatCorrelationText(interval([], { correlation: { groups: [RCVBUF_GROUP], blindSpots: [] } }), undefined), [
    '= Udp:RcvbufErrors +120, Udp:InErrors +120  <->  120 x SOCKET_RCVBUFF at 0xffffffff81abd020  [socket udp 10.1.0.2:47001: pid 812 (named) +120]',
  ], 'without kallsyms a point is its address');
});

test('JSON: counters that moved (no gauges), groups, blind spots and benign points; none without counters', () => {
  const r = interval([rcvbuf], {
    counters: [...RCVBUF_GROUP.counters, delta('conntrack:count', 4, { layer: 'netfilter', gauge: true })],
    correlation: { groups: [RCVBUF_GROUP], blindSpots: [MISSED] },
    benignPoints: [purge],
  });
  const udp = (name: string, rate: number) => ({ name, scope: '', layer: 'udp', delta: 120, rate });
  const socket = { name: 'socket:drops', scope: 'udp 10.1.0.2:47001', layer: 'socket', delta: 120, rate: 120, detail: 'pid 812 (named)' };
  assert.deepEqual(correlationJson(r, SYMBOLS, 'bpf'), {
    type: 'counters',
    time: '2024-01-02T03:04:05.000Z',
    interval: 7,
    source: 'bpf',
    moved: [udp('Udp:RcvbufErrors', 0.123), udp('Udp:InErrors', 120), socket],
    correlated: [{ reasons: ['SOCKET_RCVBUFF'], drops: 120, counters: [udp('Udp:RcvbufErrors', 0.123), udp('Udp:InErrors', 120), socket], points: [{ reason: 'SOCKET_RCVBUFF', function: '__udp_enqueue_schedule_skb', count: 120 }] }],
    blind_spots: [{ name: 'link:rx_missed_errors', scope: 'eth0', layer: 'nic', delta: 50, rate: 50, why: MISSED.why }],
    benign: [{ reason: 'QUEUE_PURGE', function: 'tcp_disconnect', count: 3 }],
  });
  assert.deepEqual(correlationJson(interval([], { benignPoints: [] }), SYMBOLS, 'bpf'), {
    type: 'counters', time: '2024-01-02T03:04:05.000Z', interval: 7, source: 'bpf', moved: [], correlated: [], blind_spots: [], benign: [],
  });
  assert.equal(correlationJson(interval([rcvbuf]), SYMBOLS, 'bpf'), undefined);
});

test('outputs: text lines and one JSON line per interval, nothing written when there is nothing to say', () => {
  const written: string[] = [];
  const text = new CorrelationTextOutput((t) => written.push(t), SYMBOLS);
  const json = new CorrelationJsonOutput((t) => written.push(t), SYMBOLS, 'tracefs');
  text.interval(interval([point()]));
  json.interval(interval([point()]));
  assert.deepEqual(written, []);
  text.interval(interval([], { benignPoints: [purge] }));
  json.interval(interval([], { benignPoints: [purge] }));
  assert.deepEqual(written, [
    '~ usually benign: 3 drops (3 QUEUE_PURGE at tcp_disconnect)\n',
    '{"type":"counters","time":"2024-01-02T03:04:05.000Z","interval":7,"source":"tracefs","moved":[],"correlated":[],"blind_spots":[],' +
      '"benign":[{"reason":"QUEUE_PURGE","function":"tcp_disconnect","count":3}]}\n',
  ]);
});

test('namespaces: a group says where its drops were, a counter read elsewhere says where; the initial namespace is left out as in the drop lines', () => {
  const INIT = 4026531840;
  const WEB1 = 4026532871;
  const WEB2 = 4026532999;
  const names: Record<number, { name?: string; container?: string; gone?: number }> = {
    [INIT]: { name: 'init' },
    [WEB1]: { name: 'web-1', container: 'docker 3f2a1b0c9d8e' },
    [WEB2]: { name: 'web-2', gone: Date.UTC(2024, 0, 2, 3, 4, 5) },
  };
  const attribution: Attribution = { initInode: INIT, ownInode: INIT, netns: (i) => names[i], ifname: () => undefined };
  const inWeb1 = point({ count: 9, netns: WEB1 });
  const noPorts = delta('Udp:NoPorts', 9, { netns: WEB1 });
  const unplaced = point({ location: UDP_ENQUEUE, reason: 6, reasonName: 'SOCKET_RCVBUFF', count: 80 });
  const correlation: Correlation = {
    groups: [
      { reasons: ['NO_SOCKET'], counters: [noPorts], points: [inWeb1], drops: 9, netns: WEB1 },
      { reasons: ['SOCKET_RCVBUFF'], counters: [delta('Udp:RcvbufErrors', 80, { netns: WEB2 })], points: [unplaced], drops: 80 },
      { reasons: ['NO_SOCKET'], counters: [delta('Udp:NoPorts', 2, { netns: INIT })], points: [point({ count: 2, netns: INIT })], drops: 2, netns: INIT },
    ],
    blindSpots: [
      { counter: delta('TcpExt:ListenOverflows', 38, { layer: 'tcp', netns: WEB1 }), why: 'these drops never reach kfree_skb' },
      { counter: delta('link:rx_missed_errors', 5, { scope: 'eth0', layer: 'nic' }), why: 'these drops never reach kfree_skb' },
    ],
  };
  const r = interval([inWeb1, unplaced], { correlation, counters: [noPorts] });
  assert.deepEqual(formatCorrelationText(r, SYMBOLS, attribution), [
    '= netns web-1 (docker 3f2a…): Udp:NoPorts +9  <->  9 x NO_SOCKET at __udp4_lib_rcv',
    '= Udp:RcvbufErrors +80 in netns web-2 (gone at 03:04:05 UTC)  <->  80 x SOCKET_RCVBUFF at __udp_enqueue_schedule_skb',
    '= Udp:NoPorts +2  <->  2 x NO_SOCKET at __udp4_lib_rcv',
    '! blind spot: TcpExt:ListenOverflows +38 in netns web-1 (docker 3f2a…): these drops never reach kfree_skb',
    '! blind spot: link:rx_missed_errors +5 on eth0: these drops never reach kfree_skb',
  ]);
  const json = correlationJson(r, SYMBOLS, 'bpf', attribution) as { moved: unknown[]; correlated: Record<string, unknown>[]; blind_spots: Record<string, unknown>[] };
  assert.deepEqual(json.moved, [{ name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: 9, rate: 9, netns: WEB1, netns_name: 'web-1' }]);
  assert.deepEqual(
    json.correlated.map((g) => [g.netns, g.netns_name]),
    [
      [WEB1, 'web-1'],
      [undefined, undefined],
      [INIT, 'init'],
    ],
  );
  assert.deepEqual(
    json.blind_spots.map((b) => [b.name, b.netns]),
    [
      ['TcpExt:ListenOverflows', WEB1],
      ['link:rx_missed_errors', undefined],
    ],
  );
});
