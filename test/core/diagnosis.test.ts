/**
 * The diagnosis per network namespace (core/diagnosis.ts): findings per
 * (namespace, cause), counters paired within their namespace only, names from
 * the attribution it is given, host-wide counters, and nothing said of where
 * when the source cannot tell. Fixed inputs, the project's knowledge base, an
 * attribution written out by hand (nothing is read on the host).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CounterDelta } from '../../src/core/counter.js';
import type { Attribution, NetnsNames } from '../../src/core/attribution.js';
import { Diagnoser, type Finding } from '../../src/core/diagnosis.js';
import type { DropPoint } from '../../src/core/interval.js';
import { loadKnowledge } from '../../src/knowledge/load.js';

const kb = loadKnowledge();

const INIT = 4026531840;
const WEB1 = 4026532871;
const WEB2 = 4026532999;
/** Unnamed: no bind mount, no process. */
const LOST = 4026533111;
const GONE_AT = Date.UTC(2024, 0, 2, 3, 4, 5);

const NAMES: Record<number, NetnsNames> = {
  [INIT]: { name: 'init' },
  [WEB1]: { name: 'web-1', container: 'docker 3f2a1b0c9d8e' },
  [WEB2]: { name: 'web-2', container: 'docker 77aa00bb11cc', gone: GONE_AT },
};

/** What a host with two containers would answer; the lookups are counted. */
function attribution(): Attribution & { lookups: number } {
  const a = {
    lookups: 0,
    initInode: INIT,
    ownInode: INIT,
    netns(inode: number) {
      a.lookups++;
      return NAMES[inode];
    },
    ifname(netns: number, ifindex: number) {
      return netns === WEB1 && ifindex === 2 ? 'eth0' : netns === INIT && ifindex === 1 ? 'lo' : undefined;
    },
  };
  return a;
}

const point = (reasonName: string, count: number, more: Partial<DropPoint> = {}): DropPoint => ({
  location: 0xffffffff81000000n,
  reason: 1,
  reasonName,
  protocol: 0x0800,
  origin: 'software',
  count,
  ...more,
});

const delta = (name: string, d: number, more: Partial<CounterDelta> = {}): CounterDelta => ({
  name,
  scope: '',
  layer: 'udp',
  value: 1000 + d,
  source: 'test',
  delta: d,
  rate: d,
  ...more,
});

const UDP_RCV = () => 'udp_queue_rcv_one_skb+0x1c';
const where = (f: Finding) => ({ netns: f.netns, netnsName: f.netnsName, container: f.container, gone: f.gone });

test('two namespaces with the same cause are two findings, each saying where, most packets first', () => {
  const dg = new Diagnoser(kb, UDP_RCV, false, attribution());
  dg.add(
    [point('SOCKET_RCVBUFF', 1000, { netns: WEB1, ifindex: 2 }), point('SOCKET_RCVBUFF', 300, { netns: WEB2, ifindex: 5 })],
    [
      delta('Udp:RcvbufErrors', 1000, { netns: WEB1 }),
      delta('socket:drops', 1000, { netns: WEB1, layer: 'socket', scope: 'udp 10.1.0.2:7001 inode 5521', detail: 'pid 812 (python3)' }),
      delta('Udp:RcvbufErrors', 300, { netns: WEB2 }),
    ],
    1,
  );
  const f = dg.findings();
  assert.deepEqual(
    f.map((x) => [x.rank, x.key, x.netnsName, x.packets]),
    [
      [1, 'SOCKET_RCVBUFF/udp', 'web-1', 1000],
      [2, 'SOCKET_RCVBUFF/udp', 'web-2', 300],
    ],
  );
  assert.deepEqual(where(f[0]), { netns: WEB1, netnsName: 'web-1', container: 'docker 3f2a1b0c9d8e', gone: undefined });
  assert.deepEqual(f[0].interfaces, [{ name: 'eth0', ifindex: 2, count: 1000 }]);
  assert.deepEqual(f[0].sockets, ['udp 10.1.0.2:7001 pid 812 (python3)'], 'the socket without its inode, with its process');
  assert.deepEqual(
    f[0].counters.map((c) => [c.name, c.delta, c.netns]),
    [
      ['Udp:RcvbufErrors', 1000, WEB1],
      ['socket:drops', 1000, WEB1],
    ],
  );
  assert.deepEqual(f[1].interfaces, [{ ifindex: 5, count: 300 }], 'an interface whose name is not known keeps its index');
  assert.deepEqual(f[1].sockets, []);
  assert.deepEqual(
    f[1].counters.map((c) => [c.name, c.delta]),
    [['Udp:RcvbufErrors', 300]],
  );
  assert.ok(f[0].evidence.includes('Udp:RcvbufErrors +1000'), 'a counter of the finding\'s own namespace needs no place in the evidence');
});

test('a counter pairs only with drops of its own namespace; elsewhere it is a cause of its own there', () => {
  const dg = new Diagnoser(kb, UDP_RCV, false, attribution());
  dg.add([point('SOCKET_RCVBUFF', 500, { netns: WEB1 })], [delta('Udp:RcvbufErrors', 40, { netns: WEB2 })], 1);
  const f = dg.findings();
  assert.equal(f.length, 2, JSON.stringify(f.map((x) => [x.key, x.netns])));
  const drops = f.find((x) => x.kind === 'drops')!;
  assert.equal(drops.netns, WEB1);
  assert.deepEqual(drops.counters, [], 'web-2\'s counter is no evidence for web-1\'s drops');
  const blind = f.find((x) => x.kind === 'counter')!;
  assert.equal(blind.netns, WEB2);
  assert.equal(blind.netnsName, 'web-2');
  assert.equal(blind.blindSpot, true);
  assert.deepEqual(
    blind.counters.map((c) => c.name),
    ['Udp:RcvbufErrors'],
  );
});

test('counters read in dropmon\'s own namespace (no mark) are that namespace\'s: host/init', () => {
  const dg = new Diagnoser(kb, () => '__udp4_lib_rcv+0x4bc', false, attribution());
  dg.add([point('NO_SOCKET', 20, { netns: INIT, ifindex: 1 }), point('NO_SOCKET', 7, { netns: WEB1 })], [delta('Udp:NoPorts', 20)], 1);
  const f = dg.findings();
  assert.deepEqual(
    f.map((x) => [x.netnsName, x.packets, x.counters.map((c) => c.name)]),
    [
      ['init', 20, ['Udp:NoPorts']],
      ['web-1', 7, []],
    ],
  );
  assert.deepEqual(f[0].interfaces, [{ name: 'lo', ifindex: 1, count: 20 }]);
});

test('a namespace that went away says so, and when; an unnamed one keeps its inode', () => {
  const dg = new Diagnoser(kb, UDP_RCV, false, attribution());
  dg.add([point('SOCKET_RCVBUFF', 10, { netns: WEB2 }), point('SOCKET_RCVBUFF', 5, { netns: LOST })], [], 1);
  const [gone, unnamed] = dg.findings();
  assert.deepEqual(where(gone), { netns: WEB2, netnsName: 'web-2', container: 'docker 77aa00bb11cc', gone: GONE_AT });
  assert.deepEqual(where(unnamed), { netns: LOST, netnsName: undefined, container: undefined, gone: undefined });
});

test('where the source cannot tell (tracefs), the finding says nothing of where; counters of a namespace still pair, and say theirs', () => {
  const a = attribution();
  const dg = new Diagnoser(kb, UDP_RCV, false, a);
  dg.add([point('SOCKET_RCVBUFF', 80)], [delta('Udp:RcvbufErrors', 80, { netns: WEB1 })], 1);
  const [f] = dg.findings();
  assert.deepEqual(where(f), { netns: undefined, netnsName: undefined, container: undefined, gone: undefined });
  assert.deepEqual(f.interfaces, []);
  assert.deepEqual(
    f.counters.map((c) => [c.name, c.netns, c.netnsName]),
    [['Udp:RcvbufErrors', WEB1, 'web-1']],
  );
  assert.ok(f.evidence.includes('Udp:RcvbufErrors +80 in netns web-1'), f.evidence.join('; '));

  // Without an attribution: no names, no own namespace, the numbers only; counters pair as before namespaces were told apart.
  const bare = new Diagnoser(kb, UDP_RCV);
  bare.add([point('SOCKET_RCVBUFF', 80, { netns: WEB1, ifindex: 2 })], [delta('Udp:RcvbufErrors', 80)], 1);
  const [b] = bare.findings();
  assert.deepEqual(where(b), { netns: WEB1, netnsName: undefined, container: undefined, gone: undefined });
  assert.deepEqual(b.interfaces, [{ ifindex: 2, count: 80 }]);
  assert.deepEqual(
    b.counters.map((c) => c.name),
    ['Udp:RcvbufErrors'],
  );
});

test('a host-wide counter is evidence beside a drop seen anywhere, never a cause of its own in a namespace', () => {
  const softnet = delta('softnet:dropped', 320, { scope: 'cpu0', layer: 'softnet', hostWide: true });
  const backlog = () => '__enqueue_to_backlog+0x1c';
  const anywhere = new Diagnoser(kb, backlog, false, attribution());
  anywhere.add([point('CPU_BACKLOG', 200, { netns: WEB1 }), point('CPU_BACKLOG', 100, { netns: WEB2 })], [softnet], 1);
  const f = anywhere.findings();
  assert.deepEqual(
    f.map((x) => [x.netnsName, x.counters.map((c) => c.name)]),
    [
      ['web-1', ['softnet:dropped']],
      ['web-2', ['softnet:dropped']],
    ],
  );
  assert.ok(f[0].evidence.includes('softnet:dropped +320 on cpu0 (host-wide)'), f[0].evidence.join('; '));

  // No drop of its reasons: of the whole host it is a cause, of no namespace; of one namespace, someone else moved it.
  const host = new Diagnoser(kb, UDP_RCV, false, attribution());
  host.add([point('SOCKET_RCVBUFF', 50, { netns: WEB1 })], [softnet], 1);
  const own = host.findings().find((x) => x.counters.some((c) => c.name === 'softnet:dropped'));
  assert.ok(own && own.kind === 'counter');
  assert.equal(own.netns, undefined, 'a host-wide cause is in no namespace');
  const one = new Diagnoser(kb, UDP_RCV, true, attribution());
  one.add([point('SOCKET_RCVBUFF', 50, { netns: WEB1 })], [softnet], 1);
  assert.deepEqual(
    one.findings().map((x) => x.key),
    ['SOCKET_RCVBUFF/udp'],
  );
});

test('one namespace (diagnose --netns): counters without a mark are that namespace\'s, whatever dropmon\'s own is', () => {
  const dg = new Diagnoser(kb, UDP_RCV, true, attribution());
  dg.add([point('SOCKET_RCVBUFF', 60, { netns: WEB1 })], [delta('Udp:RcvbufErrors', 60)], 1);
  const f = dg.findings();
  assert.equal(f.length, 1);
  assert.deepEqual(
    f[0].counters.map((c) => [c.name, c.netns]),
    [['Udp:RcvbufErrors', undefined]],
  );
});

test('names are looked up when the findings are made, not per interval', () => {
  const a = attribution();
  const dg = new Diagnoser(kb, UDP_RCV, false, a);
  for (let i = 0; i < 50; i++) dg.add([point('SOCKET_RCVBUFF', 1, { netns: WEB1 })], [delta('Udp:RcvbufErrors', 1, { netns: WEB1 })], 1);
  assert.equal(a.lookups, 0);
  dg.findings();
  assert.ok(a.lookups > 0 && a.lookups < 10, `${a.lookups} lookups`);
});

test('a refined cause carries the counters that told it apart, though its reason pairs with none of them', () => {
  const dg = new Diagnoser(kb, () => 'neigh_invalidate+0x7e', false, attribution());
  dg.add([point('NOT_SPECIFIED', 200, { netns: WEB1 })], [delta('ndisc_cache:res_failed', 1, { hostWide: true })], 1);
  const [f] = dg.findings();
  assert.equal(f.key, 'NOT_SPECIFIED/ndisc-failed');
  assert.deepEqual(
    f.counters.map((c) => [c.name, c.delta]),
    [['ndisc_cache:res_failed', 1]],
  );
});

test('usually benign noise never ranks above a real cause, whatever its volume', () => {
  const dg = new Diagnoser(kb, (a) => (a === 1n ? 'ip_rcv_core+0x22c' : 'ip_forward+0x2b4'), false, attribution());
  dg.add([point('OTHERHOST', 5000, { netns: WEB2, location: 1n }), point('IP_INHDR', 30, { netns: WEB1, location: 2n })], [], 1);
  const f = dg.findings();
  assert.deepEqual(
    f.map((x) => [x.key, x.benign]),
    [
      ['IP_INHDR/ttl-expired', 'sometimes'],
      ['OTHERHOST', 'usually'],
    ],
  );
});

test('a counter that confirms a refined cause is not also a cause of its own', () => {
  const dg = new Diagnoser(kb, () => 'nf_hook_slow+0x9c', false, attribution());
  dg.add([point('NETFILTER_DROP', 40, { netns: WEB1 })], [delta('conntrack:chainlength', 40, { netns: WEB1, layer: 'netfilter' })], 1);
  const f = dg.findings();
  assert.deepEqual(
    f.map((x) => [x.key, x.kind, x.counters.map((c) => c.name)]),
    [['NETFILTER_DROP/conntrack-chain-too-long', 'drops', ['conntrack:chainlength']]],
  );
});
