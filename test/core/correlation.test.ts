/**
 * Counter deltas, correlation and diagnosis on hand-made intervals, with the
 * project's real knowledge base (the scenario tests do the same on real drops).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffReadings, type CounterDelta, type CounterReading } from '../../src/core/counter.js';
import { correlate } from '../../src/core/correlate.js';
import { Diagnoser } from '../../src/core/diagnosis.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { counterMeaning } from '../../src/core/counter-meaning.js';
import type { DropPoint } from '../../src/core/interval.js';

const kb = loadKnowledge();

const reading = (name: string, value: number, scope = '', extra: Partial<CounterReading> = {}): CounterReading => ({
  name,
  scope,
  value,
  layer: 'udp',
  source: 'test',
  ...extra,
});

const delta = (name: string, d: number, scope = '', extra: Partial<CounterDelta> = {}): CounterDelta => ({
  ...reading(name, 1000 + d, scope),
  delta: d,
  rate: d,
  ...extra,
});

const point = (reasonName: string, count: number, location = 0xffffffff81000000n): DropPoint => ({
  location,
  reason: 1,
  reasonName,
  protocol: 0x0800,
  origin: 'software',
  count,
});

test('diffReadings: totals, resets, new instances, gauges, vanished', () => {
  const before = [reading('Udp:NoPorts', 10), reading('link:rx_dropped', 50, 'eth0'), reading('qdisc:backlog', 3, 'eth0', { gauge: true }), reading('x:gone', 1)];
  const now = [reading('Udp:NoPorts', 15), reading('link:rx_dropped', 7, 'eth0'), reading('qdisc:backlog', 5, 'eth0', { gauge: true }), reading('link:rx_dropped', 4, 'veth9')];
  const d = diffReadings(before, now, 2);
  const by = new Map(d.map((x) => [`${x.name}@${x.scope}`, x]));
  assert.equal(by.get('Udp:NoPorts@')?.delta, 5);
  assert.equal(by.get('Udp:NoPorts@')?.rate, 2.5);
  assert.equal(by.get('link:rx_dropped@eth0')?.delta, 7);
  assert.equal(by.get('link:rx_dropped@eth0')?.reset, true);
  assert.equal(by.get('qdisc:backlog@eth0')?.delta, 2);
  assert.equal(by.get('link:rx_dropped@veth9')?.delta, 4);
  assert.equal(d.length, 4);
  assert.deepEqual(diffReadings([], now, 1), [], 'no baseline: nothing moved');
});

test('counterMeaning: the knowledge base decides; unknown driver names by their wording', () => {
  assert.equal(counterMeaning({ name: 'Udp:RcvbufErrors' }, kb).class, 'drop');
  assert.ok(counterMeaning({ name: 'Udp:RcvbufErrors' }, kb).meaning.length > 0);
  assert.equal(counterMeaning({ name: 'Udp:InDatagrams' }, kb).class, 'info');
  assert.equal(counterMeaning({ name: 'ethtool-S:rx_fancy_hw_discards' }, kb).class, 'drop');
  assert.equal(counterMeaning({ name: 'ethtool-S:tx_bytes_nic' }, kb).class, 'info');
});

test('correlate: counters join the drop points with their reason; unmatched drop counters are blind spots', () => {
  const points = [point('SOCKET_RCVBUFF', 120), point('NO_SOCKET', 7)];
  const deltas = [delta('Udp:RcvbufErrors', 120), delta('Udp:InErrors', 120), delta('link:rx_missed_errors', 50, 'eth0'), delta('Udp:InDatagrams', 999)];
  const c = correlate(points, deltas, kb);
  const g = c.groups.find((x) => x.reasons.includes('SOCKET_RCVBUFF'));
  assert.ok(g, c.groups.map((x) => x.reasons.join('+')).join(', '));
  assert.equal(g.drops, 120);
  assert.ok(g.counters.some((d) => d.name === 'Udp:RcvbufErrors'));
  assert.ok(c.blindSpots.some((b) => b.counter.name === 'link:rx_missed_errors'), JSON.stringify(c.blindSpots));
  assert.ok(!c.blindSpots.some((b) => b.counter.name === 'Udp:InDatagrams'));
});

test('correlate: a filter that hides a reason does not make its counter a blind spot', () => {
  const c = correlate([], [delta('Udp:NoPorts', 9)], kb, new Set(['SOCKET_RCVBUFF']));
  assert.equal(c.blindSpots.length, 0);
  const c2 = correlate([], [delta('Udp:NoPorts', 9)], kb);
  assert.equal(c2.blindSpots.length, 1);
});

test('diagnosis: most packets first, counters as evidence, benign last, counter-only causes marked', () => {
  const dg = new Diagnoser(kb, (a) => (a === 1n ? 'tcp_disconnect+0xa9' : '__udp_enqueue_schedule_skb+0x10'));
  dg.add([point('QUEUE_PURGE', 5000, 1n), point('SOCKET_RCVBUFF', 300, 2n)], [delta('Udp:RcvbufErrors', 300), delta('TcpExt:ListenOverflows', 40)], 1);
  const f = dg.findings();
  assert.equal(f[0].key, 'SOCKET_RCVBUFF/udp', 'the UDP cause of the reason');
  assert.equal(f[0].packets, 300);
  assert.ok(f[0].counters.some((c) => c.name === 'Udp:RcvbufErrors'));
  assert.ok(f[0].evidence.some((e) => e.includes('__udp_enqueue_schedule_skb')));
  assert.ok(f[0].fix.length > 0, 'a fix is offered');
  const listen = f.find((x) => x.counters.some((c) => c.name === 'TcpExt:ListenOverflows'));
  assert.ok(listen && listen.kind === 'counter' && listen.blindSpot);
  const purge = f.find((x) => x.key === 'QUEUE_PURGE');
  assert.ok(purge && purge.benign === 'usually');
  assert.ok(f.indexOf(purge) > f.indexOf(listen), 'benign after real causes even with more packets');
});

test('diagnosis: NETFILTER_DROP with conntrack:drop is a full conntrack table', () => {
  const dg = new Diagnoser(kb, () => 'nf_hook_slow+0x7d');
  dg.add([point('NETFILTER_DROP', 40)], [delta('conntrack:drop', 40)], 1);
  const f = dg.findings()[0];
  assert.equal(f.key, 'NETFILTER_DROP/conntrack-full');
  assert.match(f.cause, /conntrack/i);
});

test('diagnosis: a full conntrack table outranks fewer closed-port drops (the refined cause is not "sometimes benign")', () => {
  const dg = new Diagnoser(kb, (a) => (a === 1n ? 'nf_hook_slow+0x7d' : '__udp4_lib_rcv+0x4bc'));
  dg.add([point('NETFILTER_DROP', 38, 1n), point('NO_SOCKET', 22, 2n)], [delta('conntrack:drop', 38), delta('Udp:NoPorts', 22)], 1);
  const f = dg.findings();
  assert.equal(f[0].key, 'NETFILTER_DROP/conntrack-full');
  assert.equal(f[0].benign, 'no');
  assert.match(f[0].cause, /conntrack/i);
});

test('diagnosis: a reason newer than the knowledge base is a real cause, explained honestly (known: false)', () => {
  const dg = new Diagnoser(kb, () => 'udp_queue_rcv_one_skb+0x1c');
  dg.add([point('BRAND_NEW_REASON', 70), point('QUEUE_PURGE', 500, 2n)], [], 1);
  const f = dg.findings();
  assert.equal(f[0].key, 'BRAND_NEW_REASON', 'never ranked as benign');
  assert.equal(f[0].known, false);
  assert.equal(f[0].benign, 'no');
  assert.match(f[0].cause, /not in this version's knowledge base/);
  assert.ok(f[0].check.some((c) => c.includes('dropmon watch -r BRAND_NEW_REASON')));
  assert.ok(f[0].fix.length > 0);
  assert.equal(f[1].known, true);
});

test('diagnosis of one namespace: a host-wide counter with no drop of its own is not a cause there', () => {
  const softnet = delta('softnet:dropped', 320, 'cpu0', { layer: 'softnet', hostWide: true });
  const one = new Diagnoser(kb, () => 'udp_queue_rcv_one_skb+0x1c', true);
  one.add([point('SOCKET_RCVBUFF', 50)], [softnet], 1);
  assert.deepEqual(one.findings().map((f) => f.key), ['SOCKET_RCVBUFF/udp'], 'another namespace moved softnet_stat');
  // The whole host: the same counter is a blind spot worth reporting.
  const host = new Diagnoser(kb, () => 'udp_queue_rcv_one_skb+0x1c');
  host.add([point('SOCKET_RCVBUFF', 50)], [softnet], 1);
  assert.ok(host.findings().some((f) => f.counters.some((c) => c.name === 'softnet:dropped')));
  // Paired with a drop of the namespace, it stays evidence.
  const paired = new Diagnoser(kb, () => 'enqueue_to_backlog+0x1c', true);
  paired.add([point('CPU_BACKLOG', 300)], [softnet], 1);
  assert.ok(paired.findings()[0].counters.some((c) => c.name === 'softnet:dropped'));
});

test('correlate per namespace: a counter joins the drops of its own namespace, else those whose namespace nobody knows', () => {
  const WEB1 = 4026532871;
  const WEB2 = 4026532999;
  const inWeb1 = { ...point('SOCKET_RCVBUFF', 120, 1n), netns: WEB1 };
  const inWeb2 = { ...point('SOCKET_RCVBUFF', 30, 2n), netns: WEB2 };
  const c = correlate([inWeb1, inWeb2], [delta('Udp:RcvbufErrors', 120, '', { netns: WEB1 }), delta('Udp:NoPorts', 9, '', { netns: WEB2 })], kb);
  assert.deepEqual(
    c.groups.map((g) => [g.netns, g.reasons, g.counters.map((d) => d.name), g.drops]),
    [[WEB1, ['SOCKET_RCVBUFF'], ['Udp:RcvbufErrors'], 120]],
    "web-2's drops are not what web-1's counter counted",
  );
  assert.deepEqual(
    c.blindSpots.map((b) => [b.counter.name, b.counter.netns]),
    [['Udp:NoPorts', WEB2]],
  );

  // A counter of web-2 with drops only in web-1: a blind spot of web-2, not evidence for web-1.
  const other = correlate([inWeb1], [delta('Udp:RcvbufErrors', 40, '', { netns: WEB2 })], kb);
  assert.deepEqual(other.groups, []);
  assert.equal(other.blindSpots.length, 1);

  // Drops whose namespace the source cannot tell (tracefs): a counter of any namespace may be theirs.
  const unplaced = correlate([point('SOCKET_RCVBUFF', 50)], [delta('Udp:RcvbufErrors', 50, '', { netns: WEB2 })], kb);
  assert.deepEqual(
    unplaced.groups.map((g) => [g.netns, g.drops]),
    [[undefined, 50]],
  );

  // Counters without a namespace mark: dropmon's own when it is known, else they may be anyone's.
  const own = correlate([inWeb1], [delta('Udp:RcvbufErrors', 120)], kb, undefined, WEB2);
  assert.deepEqual(own.groups, []);
  const anyone = correlate([inWeb1], [delta('Udp:RcvbufErrors', 120)], kb);
  assert.deepEqual(
    anyone.groups.map((g) => [g.netns, g.drops]),
    [[WEB1, 120]],
  );

  // A host-wide counter: beside the drops of its reasons in every namespace.
  const backlog = correlate(
    [
      { ...point('CPU_BACKLOG', 5, 3n), netns: WEB1 },
      { ...point('CPU_BACKLOG', 4, 4n), netns: WEB2 },
    ],
    [delta('softnet:dropped', 9, 'cpu0', { layer: 'softnet', hostWide: true })],
    kb,
  );
  assert.deepEqual(
    backlog.groups.map((g) => [g.netns, g.drops]),
    [[undefined, 9]],
  );
});
