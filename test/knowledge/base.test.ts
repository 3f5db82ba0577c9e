/**
 * Lookups of the knowledge base: the spellings kernels and tools print,
 * counter and reason pairs from either side, and the benign policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadKnowledge } from '../../src/knowledge/load.js';
import type { KnowledgeBase } from '../../src/knowledge/base.js';

const kb: KnowledgeBase = loadKnowledge();

test('exact lookups accept the spellings kernels and tools print', () => {
  assert.equal(kb.reason('SKB_DROP_REASON_SOCKET_RCVBUFF')?.name, 'SOCKET_RCVBUFF');
  assert.equal(kb.reason('socket_rcvbuff')?.name, 'SOCKET_RCVBUFF');
  assert.equal(kb.reason('PTYPE_ABSENT')?.name, 'UNHANDLED_PROTO', 'the 5.18 name is an alias');
  assert.equal(kb.symbol('udp_destruct_common+0x5c/0x90')?.name, 'udp_destruct_common');
  assert.equal(kb.symbol('nf_hook_slow+0x3a1/0x4c0 [nf_tables]')?.name, 'nf_hook_slow');
  assert.equal(kb.counter('Udp:RcvbufErrors@udp 127.0.0.1:53')?.name, 'Udp:RcvbufErrors');
  assert.equal(kb.counter('udp6:rcvbuferrors')?.name, 'Udp:RcvbufErrors', 'IPv6 twin is an alias');
  assert.equal(kb.counter('ethtool-S:rx_queue_3_drops')?.name, 'ethtool-S:rx_queue_N_drops', 'driver names match patterns');
  assert.equal(kb.counter('trap:blackhole_route')?.name, 'trap:<name>');
  assert.equal(kb.trap('trap:blackhole_route')?.name, 'blackhole_route');
  assert.equal(kb.lookup('trap:tail_drop')?.kind, 'trap', 'a trap name wins over the trap-counter family');
  assert.equal(kb.lookup('SKB_DROP_REASON_NO_SOCKET')?.name, 'NO_SOCKET');
  assert.equal(kb.lookup('conntrack:chaintoolong')?.name, 'conntrack:chainlength');
  assert.equal(kb.lookup('no such thing'), undefined);
});

test('counter <-> reason pairs work from either side (the pairs watch correlates)', () => {
  const pairs: [string, string][] = [
    ['Udp:RcvbufErrors', 'SOCKET_RCVBUFF'],
    ['Udp:InErrors', 'SOCKET_RCVBUFF'],
    ['Udp6:RcvbufErrors', 'SOCKET_RCVBUFF'],
    ['socket:drops', 'SOCKET_RCVBUFF'],
    ['Udp:MemErrors', 'PROTO_MEM'],
    ['Udp:NoPorts', 'NO_SOCKET'],
    ['softnet:dropped', 'CPU_BACKLOG'],
    ['link:rx_dropped', 'UNHANDLED_PROTO'],
    ['link:rx_dropped', 'CPU_BACKLOG'],
    ['link:rx_otherhost_dropped', 'OTHERHOST'],
    ['TcpExt:IPReversePathFilter', 'IP_RPFILTER'],
    ['IpExt:InNoRoutes', 'IP_INNOROUTES'],
    ['Ip:InAddrErrors', 'IP_INADDRERRORS'],
    ['Ip:InHdrErrors', 'IP_CSUM'],
    ['Tcp:InCsumErrors', 'TCP_CSUM'],
    ['TcpExt:TCPBacklogDrop', 'SOCKET_BACKLOG'],
    ['TcpExt:ListenOverflows', 'TCP_LISTEN_OVERFLOW'],
    ['TcpExt:TCPRcvQDrop', 'PROTO_MEM'],
    ['TcpExt:TCPZeroWindowDrop', 'TCP_ZEROWINDOW'],
    ['qdisc:drops', 'QDISC_DROP'],
    ['qdisc:drops', 'TC_INGRESS'],
    ['qdisc:drops', 'TC_EGRESS'],
    ['Ip:OutDiscards', 'TC_EGRESS'],
    ['Udp:SndbufErrors', 'TC_EGRESS'],
    ['link:rx_frame_errors', 'VXLAN_INVALID_HDR'],
    ['conntrack:drop', 'NETFILTER_DROP'],
    ['arp_cache:unresolved_discards', 'NEIGH_QUEUEFULL'],
  ];
  for (const [counter, reason] of pairs) {
    assert.ok(kb.reasonsForCounter(counter).includes(reason), `${counter} -> ${reason}: ${kb.reasonsForCounter(counter).join(',')}`);
    const canonical = kb.counter(counter)!.name;
    assert.ok(kb.countersForReason(reason).includes(canonical), `${reason} -> ${canonical}: ${kb.countersForReason(reason).join(',')}`);
  }
  assert.ok(kb.reasonsForCounter('link:rx_dropped').includes('PTYPE_ABSENT'), "old spellings pair too (events of 5.18)");
  assert.deepEqual(kb.reasonsForCounter('link:rx_missed_errors'), [], 'NIC overruns have no drop reason');
  // A counter-only cause is named after the counter's first reason, the most general: a clsact's drops are no CAKE_FLOOD.
  assert.equal(kb.reasonsForCounter('qdisc:drops')[0], 'QDISC_DROP');
  assert.equal(kb.counter('link:rx_missed_errors')?.blindSpot, true);
  assert.equal(kb.counter('softnet:time_squeeze')?.drop, false);
  assert.equal(kb.counter('socket:rx_queue')?.gauge, true);
});

test('benign policy: teardown and promiscuous noise is benign, real loss is not', () => {
  assert.equal(kb.benign('QUEUE_PURGE'), 'usually');
  assert.equal(kb.benign('TCP_CLOSE'), 'usually');
  assert.equal(kb.benign('OTHERHOST'), 'usually');
  assert.equal(kb.benign('UNHANDLED_PROTO'), 'sometimes', 'benign on a promiscuous port, a missing module otherwise');
  assert.equal(kb.benign('SKB_DROP_REASON_NOT_SPECIFIED', 'udp_destruct_common+0x5c/0x90'), 'usually');
  assert.equal(kb.benign('NOT_SPECIFIED', 'unix_release_sock'), 'usually', 'a benign site with no listed reasons covers any reason');
  assert.equal(kb.benign('NOT_SPECIFIED'), 'sometimes');
  assert.equal(kb.benign('SOCKET_RCVBUFF'), 'no');
  assert.equal(kb.benign('SOCKET_RCVBUFF', 'udp_destruct_common'), 'no', 'a symbol decides only for the reasons it lists');
  assert.equal(kb.benign('CPU_BACKLOG', 'tcp_v4_rcv'), 'no');
  // ip_rcv_core also drops bad headers (benign: no) but does not list OTHERHOST: frames for another host stay usually benign.
  assert.equal(kb.benign('OTHERHOST', 'ip_rcv_core+0x22c'), 'usually');
  assert.equal(kb.benign('IP_INHDR', 'ip_rcv_core'), 'no');
  assert.equal(kb.benign('SOME_FUTURE_REASON'), 'no', 'unknown reasons are never called benign');
});
