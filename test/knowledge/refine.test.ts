/**
 * Refined causes (kb/refinements.yaml): a reason several causes share is told
 * apart by the drop location's function, the counters that moved and the
 * configuration read at the time; the texts name what matched (the nft rule,
 * the qdisc, sysctl values); bad refinement files fail the build with the
 * entry and field named. All from fixed inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigFacts, NftFacts, NftRuleFact, QdiscFact, TcFilterFact } from '../../src/core/config-facts.js';
import { Diagnoser } from '../../src/core/diagnosis.js';
import type { RefineContext } from '../../src/core/knowledge-view.js';
import { DropmonError } from '../../src/core/errors.js';
import { KnowledgeBase } from '../../src/knowledge/base.js';
import { compileKnowledge } from '../../src/knowledge/compile.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { cachedKnowledgeView } from '../../src/knowledge/views.js';

const kb = loadKnowledge();
const refined = (reason: string, ctx: RefineContext) => kb.refine(reason, ctx)?.name;
const config = (c: Partial<ConfigFacts>): ConfigFacts => ({ sysctls: {}, ...c });
const moved = (...names: string[]) => new Set(names);

function rule(r: Partial<NftRuleFact>): NftRuleFact {
  return { family: 'inet', table: 'filter', chain: 'input', handle: 7, text: 'udp dport 9999 counter drop', verdict: 'drop', ...r };
}
const nft = (rules: NftRuleFact[], extra: Partial<NftFacts> = {}): NftFacts => ({ dropRules: rules, dropPolicies: [], rules: rules.length, ...extra });
function qdisc(q: Partial<QdiscFact>): QdiscFact {
  return { iface: 'eth0', kind: 'pfifo_fast', handle: '0:0', parent: 'root', drops: 0, ...q };
}

test('by location: IP_INHDR at ip_forward is a TTL that ran out, at ip_rcv_core a bad header', () => {
  assert.equal(refined('IP_INHDR', { function: 'ip_forward+0x2b4/0x5d0' }), 'IP_INHDR/ttl-expired');
  assert.equal(refined('IP_INHDR', { function: 'ip6_forward' }), 'IP_INHDR/ttl-expired');
  assert.equal(refined('SKB_DROP_REASON_IP_INHDR', { function: 'ip_rcv_core+0x1a0/0x2f0 [kernel]' }), 'IP_INHDR/bad-header');
  assert.equal(refined('IP_INHDR', { function: 'br_nf_pre_routing' }), 'IP_INHDR/bridge-netfilter');
  assert.equal(refined('IP_INHDR', { function: 'some_other_function' }), undefined, 'nothing applies: the reason stands');
  assert.equal(refined('IP_INHDR', {}), undefined, 'no location, no refinement by location');
  const ttl = kb.refine('IP_INHDR', { function: 'ip_forward' });
  assert.ok(ttl);
  assert.equal(ttl.refines, 'IP_INHDR');
  assert.doesNotMatch(ttl.summary, /header \(version/, 'not the generic header text');
  assert.ok(ttl.fix.some((f) => /loop/.test(f)));
});

test('by location: NO_SOCKET for UDP and TCP; SOCKET_FILTER apart from them', () => {
  assert.equal(refined('NO_SOCKET', { function: '__udp4_lib_rcv+0x4bc' }), 'NO_SOCKET/udp-closed-port');
  assert.equal(refined('NO_SOCKET', { function: '__udp6_lib_rcv' }), 'NO_SOCKET/udp-closed-port');
  assert.equal(refined('NO_SOCKET', { function: 'tcp_v4_rcv+0x88' }), 'NO_SOCKET/tcp-closed-port');
  assert.equal(refined('NO_SOCKET', { countersMoved: moved('Udp:NoPorts') }), 'NO_SOCKET/udp-closed-port', 'the counter says UDP when the location is unknown');
  assert.equal(refined('SOCKET_FILTER', { function: 'udp_queue_rcv_one_skb' }), 'SOCKET_FILTER/udp');
  assert.equal(refined('SOCKET_FILTER', { function: 'tcp_v4_rcv' }), 'SOCKET_FILTER/tcp');
  assert.notDeepEqual(kb.refine('NO_SOCKET', { function: 'tcp_v4_rcv' })?.fix, kb.refine('SOCKET_FILTER', { function: 'tcp_v4_rcv' })?.fix);
});

test('forwarding off: IP_INADDRERRORS at ip_error (what ip_forward=0 reports), IPv6 by its sysctl', () => {
  const off = kb.refine('IP_INADDRERRORS', { function: 'ip_error', config: config({ sysctls: { 'net.ipv4.ip_forward': '0' } }) });
  assert.equal(off?.name, 'IP_INADDRERRORS/forwarding-off');
  assert.deepEqual(off.evidence, ['sysctl net.ipv4.ip_forward = 0'], 'the value read is evidence');
  assert.ok(off.fix.some((f) => f.includes('net.ipv4.ip_forward=1')));
  assert.equal(refined('IP_INADDRERRORS', { function: 'ip_error' }), 'IP_INADDRERRORS/forwarding-off', 'ip_error reports it only when forwarding is off');
  assert.equal(kb.refine('IP_INADDRERRORS', { function: 'ip_error' })?.evidence, undefined, 'nothing read, nothing shown');
  const v6 = (fwd: string) => refined('IP_INADDRERRORS', { function: 'ip6_forward', config: config({ sysctls: { 'net.ipv6.conf.all.forwarding': fwd } }) });
  assert.equal(v6('0'), 'IP_INADDRERRORS/forwarding-off');
  assert.equal(v6('1'), 'IP_INADDRERRORS/ipv6-unforwardable');
  assert.equal(refined('IP_OUTNOROUTES', { function: '__ip_queue_xmit' }), 'IP_OUTNOROUTES/connection-lost-route');
});

test('rp_filter: strict or loose from the sysctls read, the effective value being the larger', () => {
  const rp = (sysctls: Record<string, string>) => refined('IP_RPFILTER', { function: 'ip_rcv_finish_core', config: config({ sysctls }) });
  assert.equal(rp({ 'net.ipv4.conf.all.rp_filter': '1', 'net.ipv4.conf.eth0.rp_filter': '1' }), 'IP_RPFILTER/strict');
  const strict = kb.refine('IP_RPFILTER', { config: config({ sysctls: { 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.eth1.rp_filter': '1', 'net.ipv4.conf.eth2.rp_filter': '0' } }) });
  assert.deepEqual(strict?.evidence, ['sysctl net.ipv4.conf.eth1.rp_filter = 1'], 'the sysctls that decided');
  assert.equal(rp({ 'net.ipv4.conf.all.rp_filter': '2', 'net.ipv4.conf.eth0.rp_filter': '1' }), 'IP_RPFILTER/loose');
  assert.equal(rp({ 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.eth0/100.rp_filter': '1' }), 'IP_RPFILTER/strict', 'an interface in strict mode (dots of its name are slashes)');
  assert.equal(rp({ 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.eth0.rp_filter': '2' }), 'IP_RPFILTER/loose-interface');
  assert.equal(rp({}), undefined, 'no configuration read: the reason stands');
});

test('netfilter: a full conntrack table, a clash, a conntrack-state rule, a counted rule, an uncounted one', () => {
  const at = 'nft_do_chain+0x46f/0x690';
  assert.equal(refined('NETFILTER_DROP', { function: 'nf_hook_slow', countersMoved: moved('conntrack:drop') }), 'NETFILTER_DROP/conntrack-full');
  assert.equal(refined('NETFILTER_DROP', { function: 'nf_hook_slow', countersMoved: moved('conntrack:insert_failed@') }), 'NETFILTER_DROP/conntrack-clash');

  // The counted "ct state invalid" rule moved: a conntrack-state drop, not a full table.
  const ct = rule({ handle: 2, text: 'ct state invalid counter drop', ctStates: ['invalid'], packets: 40, moved: 40 });
  const plain = rule({ handle: 3, packets: 9, moved: 0 });
  const inv = kb.refine('NETFILTER_DROP', { function: at, countersMoved: moved('conntrack:invalid'), config: config({ nft: nft([ct, plain]) }) });
  assert.equal(inv?.name, 'NETFILTER_DROP/ct-invalid-rule');
  assert.match(inv.summary, /"ct state invalid counter drop" \(table inet filter, chain input, handle 2\)/);
  assert.ok(!inv.fix.some((f) => /nf_conntrack_max/.test(f)), 'never the fix of a full table');
  assert.ok(inv.check.some((c) => c.includes('nft -a list chain inet filter input')), JSON.stringify(inv.check));
  assert.ok(inv.fix.some((f) => f.includes('handle 2')));
  assert.deepEqual(inv.evidence, ['nft rule "ct state invalid counter drop" (table inet filter, chain input, handle 2): +40 packets']);
  // Uncounted, with conntrack saying it marked packets invalid.
  const ctNoCounter = rule({ handle: 2, text: 'ct state invalid drop', ctStates: ['invalid'] });
  const unnamed = kb.refine('NETFILTER_DROP', {
    function: at,
    countersMoved: moved('conntrack:invalid'),
    config: config({ nft: nft([ctNoCounter]), sysctls: { 'net.netfilter.nf_conntrack_tcp_be_liberal': '0' } }),
  });
  assert.equal(unnamed?.name, 'NETFILTER_DROP/ct-invalid');
  assert.deepEqual(unnamed.evidence, ['nft rule "ct state invalid drop" (table inet filter, chain input, handle 2): no counter', 'sysctl net.netfilter.nf_conntrack_tcp_be_liberal = 0']);

  // The rule whose counter moved is named, with its table, chain and handle.
  const named = kb.refine('NETFILTER_DROP', { function: at, config: config({ nft: nft([ct, rule({ handle: 3, packets: 300, moved: 300 })].map((r, i) => (i === 0 ? { ...r, moved: 0 } : r))) }) });
  assert.equal(named?.name, 'NETFILTER_DROP/rule');
  assert.match(named.summary, /"udp dport 9999 counter drop" \(table inet filter, chain input, handle 3\)/);
  assert.ok(named.fix.some((f) => f.includes('nft delete rule inet filter input handle 3')));
  assert.match(named.meaning ?? '', /by 300 packets/);
  assert.deepEqual(named.evidence, ['nft rule "udp dport 9999 counter drop" (table inet filter, chain input, handle 3): +300 packets']);
  // More drops than the counted rule explains: the rest is a rule without a counter's, and that is said.
  const mixed = kb.refine('NETFILTER_DROP', { function: at, packets: 400, config: config({ nft: nft([rule({ handle: 3, packets: 300, moved: 300 }), rule({ handle: 4, text: 'udp dport 5556 drop' })]) }) });
  assert.equal(mixed?.name, 'NETFILTER_DROP/rule');
  assert.match(mixed.evidence?.[1] ?? '', /^100 of the 400 drops are counted by no rule: .*inet filter input: udp dport 5556 drop \(handle 4\).*add counter/);
  assert.equal(kb.refine('NETFILTER_DROP', { function: at, packets: 310, config: config({ nft: nft([rule({ handle: 3, packets: 300, moved: 300 }), rule({ handle: 4 })]) }) })?.evidence?.length, 1, 'close enough: nothing unexplained');

  // No counter moved, rules without a counter: say which could have, and to add counters.
  const unc = kb.refine('NETFILTER_DROP', {
    function: at,
    config: config({ nft: nft([rule({ handle: 4, text: 'tcp dport 7777 drop' })], { dropPolicies: [{ family: 'inet', table: 'filter', chain: 'fw', hook: 'forward' }] }) }),
  });
  assert.equal(unc?.name, 'NETFILTER_DROP/uncounted-rule');
  assert.match(unc.summary, /counter/);
  assert.match(unc.meaning ?? '', /tcp dport 7777 drop \(handle 4\); inet filter fw: policy drop/);
  assert.match(unc.evidence?.[0] ?? '', /^nft: no counted drop rule moved; could have dropped: inet filter input: tcp dport 7777 drop/);

  // Nothing in nftables drops, yet a hook did: a legacy or other hook.
  assert.equal(refined('NETFILTER_DROP', { function: 'nf_hook_slow', config: config({ nft: nft([]) }) }), 'NETFILTER_DROP/iptables-legacy');
  // The ruleset could not be read and no counter says more: the reason stands.
  assert.equal(refined('NETFILTER_DROP', { function: at, config: config({}) }), undefined);
  assert.equal(refined('NETFILTER_DROP', { function: at, countersMoved: moved('conntrack:invalid'), config: config({}) }), 'NETFILTER_DROP/ct-invalid', 'nft unreadable, conntrack says invalid');
});

test('qdiscs: the kind whose drops moved, and its parameters', () => {
  const q = (qdiscs: QdiscFact[]) => kb.refine('QDISC_DROP', { function: '__dev_queue_xmit', config: config({ qdiscs }) });
  const tbf = q([qdisc({ kind: 'tbf', handle: '8001:0', drops: 900, moved: 900, params: { limit: 3000, rate: 125000 } }), qdisc({ kind: 'bfifo', handle: '0:0', parent: '8001:1', drops: 900, moved: 900 })]);
  assert.equal(tbf?.name, 'QDISC_DROP/tbf', 'the shaper, not its internal FIFO');
  assert.deepEqual(tbf.evidence, ['qdisc tbf 8001:0 on eth0 (parent root): +900 drops; limit 3000, rate 125000']);
  assert.match(tbf.summary, /tbf 8001:0 on eth0 queues only 3000 bytes/);
  assert.ok(tbf.check.includes('tc -s qdisc show dev eth0   (rate, burst, lat, dropped, overlimits)'));
  assert.equal(q([qdisc({ kind: 'netem', moved: 50, params: { loss: 10, limit: 1000 } })])?.name, 'QDISC_DROP/netem-loss');
  assert.match(q([qdisc({ kind: 'netem', moved: 50, params: { loss: 12.5, limit: 1000 } })])?.summary ?? '', /12\.5%/);
  assert.equal(q([qdisc({ kind: 'netem', moved: 50, params: { loss: 0, lossModel: 1, limit: 10 } })])?.name, 'QDISC_DROP/netem-loss', 'a loss model');
  assert.equal(q([qdisc({ kind: 'netem', moved: 50, params: { loss: 0, limit: 10 } })])?.name, 'QDISC_DROP/netem-limit');
  const fqc = (over: number) => q([qdisc({ kind: 'fq_codel', moved: 30, params: { limit: 10240, dropOverlimit: 100 }, movedParams: { dropOverlimit: over } })])?.name;
  assert.equal(fqc(30), 'QDISC_DROP/fq-codel-overlimit');
  assert.equal(fqc(0), 'QDISC_DROP/fq-codel-aqm');
  // htb counts its children's drops too: the leaf FIFO says what is full.
  assert.equal(q([qdisc({ kind: 'htb', handle: '1:0', moved: 40 }), qdisc({ kind: 'pfifo', handle: '8002:0', parent: '1:1', moved: 40, params: { limit: 5 } })])?.name, 'QDISC_DROP/fifo-limit');
  // A qdisc that did not drop in between is not the cause, however many drops it has.
  assert.equal(q([qdisc({ kind: 'tbf', drops: 5000, moved: 0 }), qdisc({ kind: 'pfifo_fast', drops: 10, moved: 10, params: { limit: 1000 } })])?.name, 'QDISC_DROP/fifo-limit');
  // A single reading (nothing diffed): the qdiscs with drops.
  assert.equal(q([qdisc({ kind: 'tbf', drops: 5000 })])?.name, 'QDISC_DROP/tbf');
  assert.equal(q([])?.name, undefined);
});

test('neighbours: a next hop that never answers, or a burst, told by res_failed', () => {
  assert.equal(refined('NEIGH_QUEUEFULL', { function: '__neigh_event_send', countersMoved: moved('arp_cache:res_failed') }), 'NEIGH_QUEUEFULL/unresolved-next-hop');
  assert.equal(refined('NEIGH_QUEUEFULL', { function: '__neigh_event_send', countersMoved: moved('arp_cache:unresolved_discards') }), 'NEIGH_QUEUEFULL/burst');
  assert.equal(refined('NEIGH_FAILED', { function: 'neigh_invalidate', countersMoved: moved('ndisc_cache:res_failed') }), 'NEIGH_FAILED/ndisc');
  // IPv6's error report frees queued packets without a reason (6.18): the location tells, the counter confirms.
  const nd = kb.refine('NOT_SPECIFIED', { function: 'neigh_invalidate+0x7e', countersMoved: moved('ndisc_cache:res_failed') });
  assert.equal(nd?.name, 'NOT_SPECIFIED/ndisc-failed');
  assert.deepEqual(nd.confirmedBy, ['ndisc_cache:res_failed'], 'the counter that made it hold is named');
  assert.equal(refined('NOT_SPECIFIED', { function: 'neigh_invalidate' }), 'NOT_SPECIFIED/ndisc-failed', 'without counters, the location alone');
});

test('netfilter, single reading: a rule first read after its drops counts with its whole counter', () => {
  const r = kb.refine('NETFILTER_DROP', { function: 'nft_do_chain', config: config({ nft: nft([rule({ handle: 4, packets: 300 })]) }) });
  assert.equal(r?.name, 'NETFILTER_DROP/rule');
  assert.deepEqual(r.evidence, ['nft rule "udp dport 9999 counter drop" (table inet filter, chain input, handle 4): 300 packets (one reading: no baseline)']);
});

test('socket receive side: UDP buffer, UDP memory, TCP buffer, TCP memory pressure, out-of-order queue', () => {
  const rcv = kb.refine('SOCKET_RCVBUFF', { function: '__udp_queue_rcv_skb', config: config({ sysctls: { 'net.core.rmem_default': '212992', 'net.core.rmem_max': '212992' } }) });
  assert.equal(rcv?.name, 'SOCKET_RCVBUFF/udp');
  assert.match(rcv.meaning ?? '', /net\.core\.rmem_default \(212992\)/);
  assert.equal(refined('SOCKET_RCVBUFF', { function: 'raw_rcv_skb' }), 'SOCKET_RCVBUFF/raw');
  assert.equal(refined('PROTO_MEM', { function: '__udp_queue_rcv_skb', countersMoved: moved('Udp:MemErrors') }), 'PROTO_MEM/udp-mem');
  assert.equal(refined('PROTO_MEM', { function: 'tcp_data_queue', countersMoved: moved('TcpExt:TCPRcvQDrop') }), 'PROTO_MEM/tcp-receive-buffer-full');
  assert.equal(refined('PROTO_MEM', { function: 'tcp_data_queue', countersMoved: moved('TcpExt:TCPRcvQDrop', 'TcpExt:TCPMemoryPressures') }), 'PROTO_MEM/tcp-memory-pressure');
  assert.equal(refined('PROTO_MEM', { function: 'tcp_data_queue_ofo' }), 'PROTO_MEM/tcp-out-of-order-queue');
});

test('tc verdicts: a policer, a drop action, a BPF filter, or no filter at all (a tcx program)', () => {
  const f = (x: Partial<TcFilterFact>): TcFilterFact => ({ iface: 'eth0', direction: 'ingress', kind: 'u32', pref: 10, actions: [], ...x });
  const tc = (reason: string, tcFilters: TcFilterFact[]) => kb.refine(reason, { function: 'tcf_classify', config: config({ tcFilters }) });
  assert.equal(tc('TC_INGRESS', [f({ kind: 'matchall', actions: ['police'] })])?.name, 'TC_INGRESS/police');
  const drop = tc('TC_INGRESS', [f({ actions: ['mirred'] }), f({ kind: 'flower', pref: 49152, actions: ['gact'], dropAction: true })]);
  assert.equal(drop?.name, 'TC_INGRESS/drop-action');
  assert.ok(drop.fix.includes('delete or narrow the filter if the traffic should pass (tc filter del dev eth0 ingress pref 49152)'), JSON.stringify(drop.fix));
  assert.deepEqual(drop.evidence, ['tc flower filter pref 49152, actions gact on the ingress of eth0']);
  const bpf = tc('TC_EGRESS', [f({ direction: 'egress', kind: 'bpf', program: 'cil_to_netdev', directAction: true })]);
  assert.equal(bpf?.name, 'TC_EGRESS/bpf-filter');
  assert.match(bpf.summary, /\(cil_to_netdev\)/);
  assert.equal(tc('TC_INGRESS', [f({ direction: 'egress', kind: 'bpf' })])?.name, 'TC_INGRESS/tcx-program', 'nothing on the ingress hook');
  assert.equal(kb.refine('TC_INGRESS', { function: 'tcf_classify', config: config({}) }), undefined, 'filters not read: the reason stands');
});

test('XDP: a failed redirect, and generic XDP drops that the kernel reports as NOT_SPECIFIED', () => {
  assert.equal(refined('XDP', { function: 'do_xdp_generic+0x1f0' }), 'XDP/redirect-failed');
  assert.equal(refined('NOT_SPECIFIED', { function: 'netif_receive_generic_xdp+0x3c' }), 'NOT_SPECIFIED/generic-xdp-drop');
  assert.equal(refined('NOT_SPECIFIED', { function: 'do_xdp_generic+0x2a4' }), 'NOT_SPECIFIED/generic-xdp-drop', 'inlined into do_xdp_generic (6.18)');
  assert.equal(refined('NOT_SPECIFIED', { function: 'ip_error' }), 'NOT_SPECIFIED/reject-route');
  assert.equal(refined('NOT_SPECIFIED', { function: 'udp_destruct_common' }), undefined);
});

test('refined causes are explained by name, never pair with counters, and the cached view refines too', () => {
  assert.equal(kb.reason('ip_inhdr/ttl-expired')?.name, 'IP_INHDR/ttl-expired', 'dropmon explain finds them');
  const shown = kb.reason('NETFILTER_DROP/rule');
  assert.match(shown?.summary ?? '', /^The nftables rule "RULE" \(table FAMILY TABLE, chain CHAIN\) dropped them\.$/, 'explained with stand-ins, not {{names}}');
  assert.ok(shown?.fix.some((f) => f.includes('nft delete rule FAMILY TABLE CHAIN handle HANDLE')));
  assert.match(kb.reason('SOCKET_RCVBUFF/udp')?.meaning ?? '', /net\.core\.rmem_default \(<net\.core\.rmem_default>\)/);
  assert.ok(!kb.all().some((e) => /\{\{/.test([e.summary, e.meaning ?? '', ...e.check, ...e.fix].join(' '))), 'no {{name}} is shown');
  assert.ok(!kb.reasonsForCounter('Ip:InHdrErrors').some((r) => r.includes('/')), 'correlation pairs counters with reasons only');
  assert.ok(!kb.countersForReason('IP_INHDR/ttl-expired').length);
  assert.equal(kb.refine('IP_INHDR/ttl-expired', { function: 'ip_forward' }), undefined, 'a refined cause is not refined again');
  assert.ok(kb.refinementsOf('NETFILTER_DROP').length >= 5);
  assert.equal(cachedKnowledgeView(kb).refine?.('IP_INHDR', { function: 'ip_forward' })?.name, 'IP_INHDR/ttl-expired');
});

test('diagnosis: the finding of a shared reason carries the refined cause, its benignness and its fix', () => {
  const dg = new Diagnoser(kb, (a) => (a === 1n ? 'ip_forward+0x2b4' : 'nft_do_chain+0x46f'));
  const point = (reasonName: string, count: number, location: bigint) => ({ location, reason: 0, reasonName, protocol: 0x0800, origin: 'software' as const, count });
  dg.add([point('IP_INHDR', 120, 1n), point('NETFILTER_DROP', 80, 2n)], [{ name: 'Ip:InHdrErrors', scope: '', layer: 'ip', delta: 120, value: 120, rate: 120, source: 'snmp' }], 1);
  const cfg = config({ nft: nft([rule({ handle: 3, packets: 80, moved: 80 })]) });
  const f = dg.findings(cfg);
  const ttl = f.find((x) => x.key === 'IP_INHDR/ttl-expired');
  assert.ok(ttl, f.map((x) => x.key).join(', '));
  assert.equal(ttl.benign, 'sometimes');
  assert.match(ttl.cause, /TTL/);
  assert.ok(ttl.evidence.some((e) => e.startsWith('Ip:InHdrErrors +120')));
  const nf = f.find((x) => x.key === 'NETFILTER_DROP/rule');
  assert.ok(nf);
  assert.match(nf.cause, /udp dport 9999/);
  assert.ok(nf.evidence.includes('nft rule "udp dport 9999 counter drop" (table inet filter, chain input, handle 3): +80 packets'), JSON.stringify(nf.evidence));
  // Without the configuration, the same drops are the reason's.
  assert.ok(dg.findings().some((x) => x.key === 'NETFILTER_DROP'));
});

/** A knowledge base from a folder: the four kb files plus refinements.yaml. */
function compileWith(refinements: string): KnowledgeBase {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-kb-refine-'));
  try {
    writeFileSync(join(dir, 'reasons.yaml'), '- name: SOME_REASON\n  layer: ip\n  summary: A test reason.\n  benign: no\n');
    for (const f of ['counters', 'traps', 'symbols']) writeFileSync(join(dir, `${f}.yaml`), '[]\n');
    writeFileSync(join(dir, 'refinements.yaml'), refinements);
    return new KnowledgeBase(compileKnowledge(dir).entries);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const GOOD = `- name: SOME_REASON/at-home
  refines: SOME_REASON
  when: { function: [home_fn] }
  layer: ip
  summary: 'At home, {{sysctl:net.ipv4.ip_forward}}.'
  benign: no
  check: ['cat /proc/sys/net/ipv4/ip_forward']
  fix: ['sysctl -w net.ipv4.ip_forward=1']
  kernel: net/home.c home_fn()
`;

function assertRefineError(text: string, ...parts: RegExp[]): void {
  assert.throws(
    () => compileWith(text),
    (err: unknown) => {
      assert.ok(err instanceof DropmonError, String(err));
      for (const p of parts) assert.match(err.message, p);
      return true;
    },
  );
}

test('the build validates refinements: conditions, the reason refined, a check and a fix, template names', () => {
  const small = compileWith(GOOD);
  assert.equal(small.refine('SOME_REASON', { function: 'home_fn+0x10' })?.summary, 'At home, <net.ipv4.ip_forward>.', 'no configuration read: the name');
  assert.equal(small.refine('SOME_REASON', { function: 'home_fn', config: config({}) })?.summary, 'At home, ?.', 'read, but not there');
  assert.equal(small.refine('SOME_REASON', { function: 'home_fn', config: config({ sysctls: { 'net.ipv4.ip_forward': '1' } }) })?.summary, 'At home, 1.');
  assertRefineError(GOOD.replace('refines: SOME_REASON', 'refines: OTHER_REASON').replace('SOME_REASON/at-home', 'OTHER_REASON/at-home'), /refinements\.yaml/, /"refines" names no reason/);
  assertRefineError(GOOD.replace('SOME_REASON/at-home', 'SOME_REASON/At_Home'), /"name" must be SOME_REASON\/a-short-name/);
  assertRefineError(GOOD.replace('{ function: [home_fn] }', '{ location: [home_fn] }'), /"when" "location" is not a condition/);
  assertRefineError(GOOD.replace('{ function: [home_fn] }', '{ nft: [bogus] }'), /"when" "nft" must list flags/);
  assertRefineError(GOOD.replace('{ function: [home_fn] }', "{ qdisc: [tbf], qdiscParam: { limit: 'big' } }"), /comparison like ">0"/);
  assertRefineError(GOOD.replace('{ function: [home_fn] }', '[]'), /"when" must be a mapping/);
  assertRefineError(GOOD.replace('{ function: [home_fn] }', '{ tc: [sideways:bpf] }'), /"tc" must list HOOK:WHAT tokens/);
  assertRefineError(GOOD.replace("  fix: ['sysctl -w net.ipv4.ip_forward=1']\n", ''), /"fix" is required for a refined cause/);
  assertRefineError(GOOD.replace("  check: ['cat /proc/sys/net/ipv4/ip_forward']\n", ''), /"check" is required for a refined cause/);
  assertRefineError(GOOD.replace('  kernel: net/home.c home_fn()\n', ''), /"kernel" is required/);
  assertRefineError(GOOD.replace('{{sysctl:net.ipv4.ip_forward}}', '{{colour}}'), /"summary" names \{\{colour\}\}/);
  assertRefineError(GOOD + '  counters: [Udp:NoPorts]\n', /"counters" is not for refined causes/);
  assertRefineError(GOOD + '  sysctls: [ip_forward]\n', /"sysctls" names "ip_forward", not a dotted sysctl name/);
  // refines/when belong in refinements.yaml only.
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-kb-refine-'));
  try {
    writeFileSync(join(dir, 'reasons.yaml'), '- name: SOME_REASON\n  layer: ip\n  summary: A test reason.\n  benign: no\n  refines: X\n');
    for (const f of ['counters', 'traps', 'symbols']) writeFileSync(join(dir, `${f}.yaml`), '[]\n');
    assert.throws(() => compileKnowledge(dir), /"refines" is for refined causes only/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
