/**
 * Reading a namespace's configuration: the nftables rules that can drop (from
 * nft's JSON), qdisc parameters, sysctl names; then, in a namespace made for
 * the test, sysctls, a ruleset loaded with `nft -f -` and a qdisc read from
 * inside it, and two readings saying which rule counter moved.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { parseNftRuleset, readNftRuleset } from '../../../src/sources/config/nftables.js';
import { qdiscParams } from '../../../src/sources/config/qdiscs.js';
import { parseFilterMessage, RTM_NEWTFILTER } from '../../../src/sources/config/tcfilters.js';
import { ConfigSampler, readConfigFacts } from '../../../src/sources/config/reader.js';
import { sysctlName } from '../../../src/sources/config/sysctls.js';
import { releaseNetns, resolveNetns } from '../../../src/kernel/setns.js';
import { loadKnowledge } from '../../../src/knowledge/load.js';
import { fixtureText } from '../../helpers/fixtures.js';
import { kernelSkipReason } from '../../helpers/env.js';
import { TestNetns } from '../../helpers/netns.js';

after(() => TestNetns.cleanupAll());

test('nft -j list ruleset: drop and reject rules, their counters and conntrack states, drop policies', () => {
  const f = parseNftRuleset(fixtureText('nft/ruleset-1.0.6.json'));
  assert.equal(f.rules, 9, 'every rule is counted, the masquerade and the jump too');
  assert.deepEqual(
    f.dropRules.map((r) => [r.chain, r.handle, r.verdict, r.packets ?? null, r.ctStates ?? null]),
    [
      ['input', 5, 'drop', 0, ['invalid']],
      ['input', 7, 'drop', null, ['invalid', 'untracked']],
      ['input', 8, 'drop', 0, null],
      ['input', 10, 'reject', null, null],
      ['input', 11, 'drop', 0, null],
      ['input', 12, 'drop', null, null],
      ['sub', 14, 'drop', null, null],
    ],
  );
  assert.deepEqual(
    f.dropRules.map((r) => r.text),
    [
      'ct state invalid counter drop',
      'ct state { invalid, untracked } drop',
      'udp dport 9999 counter drop',
      'tcp dport { 22, 80 } reject with tcp reset',
      'ip saddr @deny counter drop',
      'iifname "eth0" ip saddr 10.1.0.0/16 meta l4proto udp limit rate over 10/second drop',
      'ip daddr 10.9.9.9 log prefix "x " drop',
    ],
    'close to what nft list ruleset prints',
  );
  assert.deepEqual(f.dropPolicies, [{ family: 'inet', table: 't', chain: 'fw', hook: 'forward' }]);
});

test('nft JSON: verdict maps that drop, named counters, and a bounded number of rules', () => {
  const doc = {
    nftables: [
      { counter: { family: 'ip', table: 'f', name: 'blocked', handle: 3, packets: 42, bytes: 4200 } },
      { rule: { family: 'ip', table: 'f', chain: 'in', handle: 4, expr: [{ vmap: { key: { payload: { protocol: 'tcp', field: 'dport' } }, data: { set: [[22, { accept: null }], [23, { drop: null }]] } } }] } },
      { rule: { family: 'ip', table: 'f', chain: 'in', handle: 5, expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '10.0.0.9' } }, { counter: 'blocked' }, { drop: null }] } },
      { rule: { family: 'ip', table: 'f', chain: 'in', handle: 6, expr: [{ match: { op: '!=', left: { ct: { key: 'state' } }, right: 'invalid' } }, { accept: null }] } },
    ],
  };
  const f = parseNftRuleset(JSON.stringify(doc));
  assert.deepEqual(
    f.dropRules.map((r) => [r.handle, r.verdict, r.packets ?? null]),
    [
      [4, 'drop', null],
      [5, 'drop', 42],
    ],
  );
  assert.equal(f.rules, 3);
  assert.match(f.dropRules[0].text, /tcp dport vmap/);
  assert.throws(() => parseNftRuleset('Error: not json'), SyntaxError);
  const many = { nftables: Array.from({ length: 2100 }, (_, i) => ({ rule: { family: 'ip', table: 'f', chain: 'in', handle: i, expr: [{ drop: null }] } })) };
  const big = parseNftRuleset(JSON.stringify(many));
  assert.equal(big.dropRules.length, 2000);
  assert.equal(big.truncated, true);
});

test('nft missing or failing: an error line, never a throw', () => {
  const r = readNftRuleset({ nft: '/nonexistent/nft' });
  assert.ok('error' in r);
  assert.match(r.error, /not installed/);
  const bad = readNftRuleset({ nft: '/bin/false' });
  assert.ok('error' in bad);
  assert.match(bad.error, /failed/);
});

function u32s(...v: number[]): Uint8Array {
  const b = new Uint8Array(v.length * 4);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(i * 4, x, true));
  return b;
}
function attr(type: number, data: Uint8Array): Uint8Array {
  const len = 4 + data.length;
  const b = new Uint8Array((len + 3) & ~3);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, len, true);
  dv.setUint16(2, type, true);
  b.set(data, 4);
  return b;
}
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

test('qdisc parameters: FIFO limits, txqueuelen, tbf, netem loss, fq_codel limits and overlimit drops', () => {
  assert.deepEqual(qdiscParams('pfifo', u32s(5), undefined), { limit: 5 });
  assert.deepEqual(qdiscParams('pfifo_fast', new Uint8Array(20), undefined, 1000), { limit: 1000 });
  // struct tc_tbf_qopt: rate (rate u32 at byte 8), peakrate, limit at byte 24.
  const tbf = new Uint8Array(36);
  new DataView(tbf.buffer).setUint32(8, 125000, true);
  new DataView(tbf.buffer).setUint32(24, 3000, true);
  assert.deepEqual(qdiscParams('tbf', attr(1, tbf), undefined), { limit: 3000, rate: 125000 });
  // struct tc_netem_qopt { latency, limit, loss, gap, duplicate, jitter }: loss is a fraction of 2^32-1.
  assert.deepEqual(qdiscParams('netem', u32s(0, 1000, Math.round(0xffffffff * 0.1), 0, 0, 0), undefined), { limit: 1000, loss: 10 });
  assert.deepEqual(qdiscParams('netem', cat(u32s(0, 10, 0, 0, 0, 0), attr(5, new Uint8Array(4))), undefined), { limit: 10, loss: 0, lossModel: 1 });
  const xstats = u32s(0, 1514, 77, 0, 0, 0, 0, 0, 0, 3);
  assert.deepEqual(qdiscParams('fq_codel', cat(attr(2, u32s(10240)), attr(9, u32s(33554432))), xstats), { limit: 10240, memoryLimit: 33554432, dropOverlimit: 77, dropOvermemory: 3 });
  assert.deepEqual(qdiscParams('htb', undefined, undefined), {});
});

/** An attribute whose data is a run of attributes (NLA_F_NESTED set, as the kernel sends nests). */
function nest(type: number, ...children: Uint8Array[]): Uint8Array {
  const a = attr(type, cat(...children));
  new DataView(a.buffer).setUint16(2, type | 0x8000, true);
  return a;
}
const str = (s: string) => new TextEncoder().encode(`${s}\0`);

test('tc filters: the classifier, its actions, a gact drop, a policer, a BPF program in direct-action mode', () => {
  const tcmsg = (pref: number) => {
    const b = new Uint8Array(20);
    new DataView(b.buffer).setUint32(16, (pref << 16) | 0x0300, true);
    return b;
  };
  const msg = (payload: Uint8Array) => ({ type: RTM_NEWTFILTER, flags: 0, seq: 1, pid: 0, length: 16 + payload.length, payload });
  const gact = (verdict: number) => nest(1, attr(1, str('gact')), nest(2, attr(2, u32s(1, 0, verdict, 1, 1))));
  // matchall (TCA_MATCHALL_ACT = 2) with action drop (TC_ACT_SHOT = 2)
  const drop = parseFilterMessage(msg(cat(tcmsg(49152), attr(1, str('matchall')), nest(2, nest(2, gact(2))))), 'eth0', 'ingress');
  assert.deepEqual(drop, { iface: 'eth0', direction: 'ingress', kind: 'matchall', pref: 49152, actions: ['gact'], dropAction: true });
  // the same with action pass (TC_ACT_OK = 0): not a drop
  assert.equal(parseFilterMessage(msg(cat(tcmsg(1), attr(1, str('matchall')), nest(2, nest(2, gact(0))))), 'eth0', 'ingress')?.dropAction, undefined);
  // bpf (TCA_BPF_ACT = 1) with a police action, its name and the direct-action flag
  const bpf = parseFilterMessage(msg(cat(tcmsg(1), attr(1, str('bpf')), nest(2, nest(1, nest(1, attr(1, str('police')))), attr(7, str('cil_from_netdev')), attr(8, u32s(1))))), 'eth0', 'egress');
  assert.deepEqual(bpf, { iface: 'eth0', direction: 'egress', kind: 'bpf', pref: 1, actions: ['police'], program: 'cil_from_netdev', directAction: true });
  // u32's hash table head (no selector) is no filter
  assert.equal(parseFilterMessage(msg(cat(tcmsg(20), attr(1, str('u32')), nest(2, attr(4, u32s(1))))), 'eth0', 'egress'), undefined);
});

test('sysctl names as sysctl prints them; dots in interface names are slashes', () => {
  assert.equal(sysctlName('net/ipv4/ip_forward'), 'net.ipv4.ip_forward');
  assert.equal(sysctlName('net/ipv4/conf/eth0.100/rp_filter'), 'net.ipv4.conf.eth0/100.rp_filter');
  assert.equal(sysctlName('net/ipv4/neigh/default/unres_qlen_bytes'), 'net.ipv4.neigh.default.unres_qlen_bytes');
});

const RULESET = `table inet dmcfg {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state invalid counter drop
    udp dport 47999 counter drop
    tcp dport 47998 drop
  }
  chain fw {
    type filter hook forward priority 0; policy drop;
  }
}
`;

function nftAvailable(): string | undefined {
  const why = kernelSkipReason();
  if (why) return why;
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'nft is not installed';
  }
  return undefined;
}

test('a namespace made for the test: its sysctls, its ruleset and its qdiscs, read from inside it', { skip: nftAvailable() ?? false }, () => {
  const a = new TestNetns('cfga');
  const b = new TestNetns('cfgb');
  try {
    TestNetns.vethPair(a, 'cfg0', b, 'cfg1');
    a.ip('addr', 'add', '10.77.0.1/24', 'dev', 'cfg0');
    b.ip('addr', 'add', '10.77.0.2/24', 'dev', 'cfg1');
    b.sysctl('net.ipv4.ip_forward', '1');
    b.sysctl('net.ipv4.conf.cfg1.rp_filter', '2');
    b.exec('nft', ['-f', '-'], RULESET);
    b.exec('tc', ['qdisc', 'add', 'dev', 'cfg1', 'root', 'tbf', 'rate', '1mbit', 'burst', '4k', 'limit', '8k']);
    b.exec('tc', ['qdisc', 'add', 'dev', 'cfg1', 'clsact']);
    b.exec('tc', ['filter', 'add', 'dev', 'cfg1', 'ingress', 'pref', '10', 'bpf', 'bytecode', '1,6 0 0 4294967295,', 'action', 'mirred', 'egress', 'mirror', 'dev', 'lo']);
    b.exec('tc', ['filter', 'add', 'dev', 'cfg1', 'egress', 'pref', '20', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'mirror', 'dev', 'lo']);
    const target = resolveNetns(`/run/netns/${b.name}`);

    const sampler = new ConfigSampler({ netns: target });
    const first = sampler.baseline();
    assert.equal(first.sysctls['net.ipv4.ip_forward'], '1', 'the namespace\'s own value, not the host\'s');
    assert.equal(first.sysctls['net.ipv4.conf.cfg1.rp_filter'], '2');
    assert.ok(first.nft, JSON.stringify(first.errors));
    assert.deepEqual(
      first.nft.dropRules.map((r) => [r.table, r.chain, r.text]),
      [
        ['dmcfg', 'input', 'ct state invalid counter drop'],
        ['dmcfg', 'input', 'udp dport 47999 counter drop'],
        ['dmcfg', 'input', 'tcp dport 47998 drop'],
      ],
      'only the namespace\'s ruleset',
    );
    assert.deepEqual(first.nft.dropPolicies.map((p) => p.chain), ['fw']);
    const tbf = first.qdiscs?.find((q) => q.kind === 'tbf');
    assert.ok(tbf, JSON.stringify(first.qdiscs));
    assert.equal(tbf.iface, 'cfg1');
    assert.equal(tbf.params?.limit, 8192);
    assert.equal(tbf.params?.rate, 125000);
    assert.deepEqual(
      first.tcFilters?.map((f) => [f.iface, f.direction, f.kind, f.pref, f.actions.join(' ')]),
      [
        ['cfg1', 'ingress', 'bpf', 10, 'mirred'],
        ['cfg1', 'egress', 'u32', 20, 'mirred'],
      ],
      JSON.stringify(first.errors),
    );

    // 25 datagrams into the counted rule: the second reading says it moved by 25.
    a.exec('python3', ['-c', "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(25): s.sendto(b'x', ('10.77.0.2', 47999))"]);
    const second = sampler.sample();
    const moved = second.nft?.dropRules.find((r) => r.text.startsWith('udp dport 47999'));
    assert.equal(moved?.packets, 25);
    assert.equal(moved?.moved, 25);
    assert.equal(second.nft?.dropRules.find((r) => r.text.startsWith('ct state'))?.moved, 0);
    assert.equal(second.nft?.dropRules.find((r) => r.text.startsWith('tcp dport'))?.moved, undefined, 'no counter, nothing to say');
    const cause = loadKnowledge().refine('NETFILTER_DROP', { function: 'nft_do_chain+0x46f', config: second });
    assert.equal(cause?.name, 'NETFILTER_DROP/rule');
    assert.match(cause.summary, /"udp dport 47999 counter drop" \(table inet dmcfg, chain input, handle \d+\)/);

    // The host's own ruleset is not the namespace's.
    const own = readConfigFacts({ qdiscs: false });
    assert.ok(!own.nft?.dropRules.some((r) => r.table === 'dmcfg'));
  } finally {
    a.delete();
    b.delete();
  }
});

test('a namespace deleted after it was opened is still read (held by its descriptor); one that cannot be opened: an error line and empty facts, never a throw', { skip: kernelSkipReason() ?? false }, () => {
  const ns = new TestNetns('cfggone');
  const target = resolveNetns(`/run/netns/${ns.name}`);
  ns.delete();
  try {
    const held = readConfigFacts({ netns: target });
    assert.ok(Object.keys(held.sysctls).length > 0, JSON.stringify(held.errors));
  } finally {
    releaseNetns(target);
  }
  const f = readConfigFacts({ netns: { spec: 'gone', path: `/run/netns/${ns.name}`, inode: target.inode } });
  assert.deepEqual(f.sysctls, {});
  assert.ok(f.errors?.some((e) => /cannot open the network namespace/.test(e)), JSON.stringify(f.errors));
});
