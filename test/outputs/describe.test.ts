/**
 * The wording text and JSON share (outputs/describe.ts): a point's location,
 * reason and protocol, its interface and namespace, a trap's details, stacks.
 * Points here carry no namespace, so nothing is looked up on the host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_REASON } from '../../src/core/drop.js';
import { attributionText, describeFrame, describePoint, describeStack, trapInputName, trapText } from '../../src/outputs/describe.js';
import { KFREE_SKB, NFT_DO_CHAIN, SYMBOLS, TRACE_FRAME, UDP_RCV, UNKNOWN, point } from './inputs.js';

const NO_ATTRIBUTION = { ifindex: null, ifname: null, netns: null, netnsName: null, container: null, initNetns: false };

test('describePoint: where, symbol, function, offset, module, address, reason, protocol', () => {
  assert.deepEqual(describePoint(point(), SYMBOLS, undefined), {
    where: '__udp4_lib_rcv+0x4bc', symbol: '__udp4_lib_rcv+0x4bc/0x1000', function: '__udp4_lib_rcv', offset: 0x4bc, module: null,
    address: '0xffffffff81abc4bc', reason: 'NO_SOCKET', protocol: 'ipv4', ...NO_ATTRIBUTION,
  });
  const mod = describePoint(point({ location: NFT_DO_CHAIN, protocol: 0x86dd }), SYMBOLS, undefined);
  assert.deepEqual([mod.where, mod.symbol, mod.function, mod.offset, mod.module, mod.protocol], ['nft_do_chain+0x10 [nf_tables]', 'nft_do_chain+0x10/0x400 [nf_tables]', 'nft_do_chain', 16, 'nf_tables', 'ipv6']);
  const unknown = describePoint(point({ location: UNKNOWN, reason: 200, reasonName: '', protocol: 0x88b5 }), SYMBOLS, undefined);
  assert.deepEqual([unknown.where, unknown.symbol, unknown.function, unknown.offset, unknown.module, unknown.reason, unknown.protocol], ['0xffffffff80001000', '0xffffffff80001000', null, null, null, 'reason 200', '0x88b5']);
  const bare = describePoint(point({ reason: NO_REASON, reasonName: '', protocol: 0 }), undefined, undefined);
  assert.deepEqual([bare.where, bare.reason, bare.protocol], ['0xffffffff81abc4bc', '', '']);
  assert.equal(describePoint(point({ ifindex: 4 }), SYMBOLS, undefined).ifindex, 4, 'an interface without a namespace: its index, no lookup');
});

test('attributionText: device by name or index, the namespace unless it is the initial one, the container', () => {
  assert.equal(attributionText(NO_ATTRIBUTION), '');
  assert.equal(attributionText({ ...NO_ATTRIBUTION, ifindex: 4 }), ' dev ifindex 4');
  const inNs = { ifindex: 4, ifname: 'veth0', netns: 4026532000, netnsName: 'ns1', container: 'docker 3f2a1b0c9d8e', initNetns: false };
  assert.equal(attributionText(inNs), ' dev veth0 netns ns1 (docker 3f2a1b0c9d8e)');
  assert.equal(attributionText({ ...inNs, netnsName: null, container: null }), ' dev veth0 netns 4026532000', 'an unnamed namespace by its inode');
  assert.equal(attributionText({ ...inNs, initNetns: true, container: null }), ' dev veth0');
});

test('trapText and trapInputName: group first, then type, action, input port, namespace, devlink device', () => {
  const trap = { name: 'blackhole_route', group: 'l3_drops', type: 'drop', action: 'trap', device: 'netdevsim/netdevsim10', inputName: 'eth1' };
  const hw = point({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', trap });
  assert.equal(trapText(hw, NO_ATTRIBUTION), ' l3_drops type drop action trap dev eth1 devlink netdevsim/netdevsim10');
  assert.equal(trapInputName(hw, { ifname: 'eth9' }), 'eth1', 'the source\'s own name of the port first');
  const bare = point({ origin: 'hardware', trap: { name: 'ingress_vlan_filter' } });
  assert.equal(trapText(bare, NO_ATTRIBUTION), '');
  assert.equal(trapText(bare, { ...NO_ATTRIBUTION, ifindex: 3 }), ' dev ifindex 3');
  assert.equal(trapText(bare, { ...NO_ATTRIBUTION, ifindex: 3, ifname: 'eth3', netns: 4026532000, netnsName: 'ns1' }), ' dev eth3 netns ns1');
  assert.equal(trapInputName(bare, { ifname: null }), null);
  assert.equal(trapText(point(), NO_ATTRIBUTION), '', 'a software point has no trap text');
});

test('describeStack: frames symbolized with their size; the tracing code\'s own frames on top dropped, never the last one', () => {
  assert.equal(describeFrame(KFREE_SKB, SYMBOLS), 'kfree_skb_reason+0x10/0x1000');
  assert.equal(describeFrame(UNKNOWN, SYMBOLS), '0xffffffff80001000');
  assert.deepEqual(describeStack([TRACE_FRAME, KFREE_SKB, UDP_RCV], SYMBOLS), ['kfree_skb_reason+0x10/0x1000', '__udp4_lib_rcv+0x4bc/0x1000']);
  assert.deepEqual(describeStack([TRACE_FRAME], SYMBOLS), ['trace_event_raw_event_kfree_skb+0x8/0x1000']);
  assert.deepEqual(describeStack([KFREE_SKB, TRACE_FRAME], SYMBOLS), ['kfree_skb_reason+0x10/0x1000', 'trace_event_raw_event_kfree_skb+0x8/0x1000'], 'only frames on top');
  assert.deepEqual(describeStack([], SYMBOLS), []);
});
