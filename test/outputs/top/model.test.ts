/**
 * The model and view of `dropmon top` on fixed intervals: totals, rates and
 * sparklines, sort, grouping, filter, benign rows, pause and clear; frames at
 * 80x24 and the diffing screen (nothing written when nothing changed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveInterval, LivePoint } from '../../../src/core/live.js';
import { TopModel } from '../../../src/outputs/top/model.js';
import { Screen, printable, BOLD, RED } from '../../../src/outputs/top/screen.js';
import { columns, tableFrame, detailLines } from '../../../src/outputs/top/view.js';
import { TopApp } from '../../../src/outputs/top/app.js';
import { shortCount, shortRate, sparkline, wrap } from '../../../src/outputs/top/format.js';
import { loadKnowledge } from '../../../src/knowledge/load.js';

function pt(reason: string, fn: string, count: number, more: Partial<LivePoint> = {}): LivePoint {
  return {
    reason,
    function: fn,
    symbol: `${fn}+0x10`,
    location: `0xffffffff8100${fn.length.toString(16).padStart(4, '0')}`,
    protocol: 'ipv4',
    origin: 'software',
    netns: 'init',
    container: '',
    ifname: 'lo',
    count,
    benign: 'no',
    ...more,
  };
}

let seq = 0;
function iv(points: LivePoint[], extra: Partial<LiveInterval> = {}): LiveInterval {
  seq++;
  return {
    seq,
    start: seq * 1000,
    end: seq * 1000 + 1000,
    drops: points.reduce((n, p) => n + p.count, 0),
    lost: 0,
    lostByCause: {},
    points,
    overflow: { drops: 0, points: 0 },
    ...extra,
  };
}

const text = (lines: { text: string }[][]) => lines.map((l) => l.map((s) => s.text).join(''));

test('model: totals, rate of the last interval, sparkline history, namespaces with drops', () => {
  const m = new TopModel(5);
  m.add(iv([pt('NO_SOCKET', '__udp4_lib_rcv', 10), pt('SOCKET_RCVBUFF', 'udp_queue_rcv_one_skb', 4, { netns: 'ns1' })]));
  m.add(iv([pt('NO_SOCKET', '__udp4_lib_rcv', 30)]));
  assert.equal(m.totalDrops, 44);
  const rows = m.rows();
  assert.deepEqual(rows.map((r) => [r.reason, r.total, r.rate, r.active]), [
    ['NO_SOCKET', 40, 30, true],
    ['SOCKET_RCVBUFF', 4, 0, false],
  ]);
  assert.deepEqual(rows[0].spark, [0, 0, 0, 10, 30]);
  assert.deepEqual(rows[1].spark, [0, 0, 0, 4, 0]);
  assert.equal(m.activeNamespaces(), 1);
  for (let i = 0; i < 5; i++) m.add(iv([]));
  assert.deepEqual(m.rows()[0].spark, [0, 0, 0, 0, 0], 'history older than the window is gone');
});

test('model: sort by rate, total, name; group by reason, namespace; filter; benign hidden', () => {
  const m = new TopModel(10);
  m.add(iv([pt('A_REASON', 'f1', 100), pt('B_REASON', 'f2', 1, { netns: 'ns1', container: 'docker abc' })]));
  m.add(iv([pt('A_REASON', 'f1', 1), pt('B_REASON', 'f2', 50, { netns: 'ns1', container: 'docker abc' }), pt('QUEUE_PURGE', 'tcp_disconnect', 5, { benign: 'usually' })]));
  assert.deepEqual(m.rows().map((r) => r.reason), ['B_REASON', 'QUEUE_PURGE', 'A_REASON']);
  m.sort = 'total';
  assert.deepEqual(m.rows().map((r) => r.reason), ['A_REASON', 'B_REASON', 'QUEUE_PURGE']);
  m.sort = 'name';
  assert.deepEqual(m.rows().map((r) => r.reason), ['A_REASON', 'B_REASON', 'QUEUE_PURGE']);
  m.group = 'netns';
  const byNs = m.rows();
  assert.equal(byNs.length, 2);
  assert.deepEqual(byNs.map((r) => [r.netns, r.total, r.reason]), [['init', 106, '(2)'], ['ns1', 51, 'B_REASON']]);
  m.group = 'point';
  m.filter = 'docker';
  assert.deepEqual(m.rows().map((r) => r.reason), ['B_REASON']);
  m.filter = '';
  m.hideBenign = true;
  assert.ok(!m.rows().some((r) => r.reason === 'QUEUE_PURGE'));
});

test('model: pause holds intervals back and loses none; clear forgets', () => {
  const m = new TopModel(10);
  m.add(iv([pt('A', 'f', 1)]));
  m.setPaused(true);
  m.add(iv([pt('A', 'f', 2)]));
  m.add(iv([pt('A', 'f', 3)]));
  assert.equal(m.totalDrops, 1);
  assert.equal(m.waitingIntervals, 2);
  m.setPaused(false);
  assert.equal(m.totalDrops, 6);
  m.clear();
  assert.equal(m.totalDrops, 0);
  assert.equal(m.rows().length, 0);
});

test('format: rates, counts, sparklines, wrapping', () => {
  assert.equal(shortRate(0), '0');
  assert.equal(shortRate(0.5), '0.5');
  assert.equal(shortRate(1234), '1234');
  assert.equal(shortRate(12345), '12.3k');
  assert.equal(shortRate(1_600_000), '1.6M');
  assert.equal(shortCount(1234567), '1234567');
  assert.equal(shortCount(12_345_678), '12.3M');
  assert.equal(sparkline([0, 1, 2, 4], 4, true), ' ▂▄█');
  assert.equal(sparkline([0, 1, 2, 4], 4, false), ' :+@');
  assert.equal(sparkline([0, 0], 3, true), '   ');
  assert.equal(sparkline([1, 8, 0, 0, 0, 0], 3, true), '█  ');
  for (const l of wrap('a few words that go on and on beyond the width of the line', 20, 2)) assert.ok(l.length <= 20, l);
  assert.equal(printable('a\x1b[2Jb\u4e2d'), 'a?[2Jb?');
});

test('view: an 80x24 frame fits, names the figures, columns add up to the width', () => {
  for (const w of [40, 60, 80, 100, 132, 250]) {
    const c = columns(w);
    const sum = Object.values(c).reduce((a, b) => a + b, 0) + Object.values(c).filter((x) => x > 0).length - 1;
    assert.ok(sum <= w, `${w}: ${sum}`);
    if (w >= 80) assert.equal(sum, w);
  }
  const m = new TopModel(60);
  m.add(
    iv([pt('NO_SOCKET', '__udp4_lib_rcv', 12, { netns: 'ns1' })], {
      counters: [{ name: 'TcpExt:ListenOverflows', scope: '', delta: 3, rate: 3, class: 'drop', meaning: 'x', blindSpot: 'no drop event' }],
      lost: 2,
    }),
  );
  const frame = tableFrame(
    { model: m, origin: { host: 'h1', kernel: '6.1.0', source: 'bpf', intervalMs: 1000 }, rows: m.rows(), selected: undefined, scroll: 0, editing: undefined, status: '', unicode: true },
    80,
    24,
  );
  assert.equal(frame.length, 24);
  const t = text(frame as { text: string }[][]);
  for (const l of t) assert.ok(l.length <= 80, l);
  assert.match(t[0], /host h1 +kernel 6\.1\.0 +source bpf/);
  assert.match(t[1], /drops\/s 12 +total 12 +lost 2 +netns with drops 1/);
  assert.match(t.join('\n'), /NO_SOCKET +__udp4_lib_rcv +ns1 +lo +ipv4 +12/);
  assert.match(t.join('\n'), /! +\+3 .*TcpExt:ListenOverflows.*blind spot/);
  assert.match(t[23], /q quit/);
});

test('view: the explanation of a row comes from the knowledge base, with its evidence', () => {
  const m = new TopModel(60);
  m.add(iv([pt('SOCKET_RCVBUFF', 'udp_queue_rcv_one_skb', 7)], { correlated: [{ reasons: ['SOCKET_RCVBUFF'], counters: ['Udp:RcvbufErrors'], drops: 7 }], counters: [{ name: 'Udp:RcvbufErrors', scope: '', delta: 7, rate: 7, class: 'drop', meaning: 'm' }] }));
  const lines = text(detailLines(m.rows()[0], m, loadKnowledge(), 80, true) as { text: string }[][]).join('\n');
  assert.match(lines, /Reason SOCKET_RCVBUFF/);
  assert.match(lines, /Check:/);
  assert.match(lines, /Fix:/);
  assert.match(lines, /Evidence/);
  assert.match(lines, /Udp:RcvbufErrors \+7/);
});

test('screen: the first frame is whole, an unchanged one writes nothing, a change writes only its cells', () => {
  let out = '';
  const s = new Screen((t) => (out += t), true);
  const frame = [[{ text: 'hello ' }, { text: 'world', style: BOLD | RED }], [{ text: 'second line' }]];
  s.draw(frame, 20, 3);
  assert.match(out, /hello/);
  assert.ok(out.includes('\x1b[0;1;31mworld'), JSON.stringify(out));
  out = '';
  assert.equal(s.draw(frame, 20, 3), 0);
  assert.equal(out, '');
  s.draw([[{ text: 'hello ' }, { text: 'world', style: BOLD | RED }], [{ text: 'second lime' }]], 20, 3);
  assert.ok(out.length < 20, JSON.stringify(out));
  assert.match(out, /m/);
  out = '';
  const mono = new Screen((t) => (out += t), false);
  mono.draw(frame, 20, 3);
  assert.ok(!new RegExp(String.fromCharCode(27) + '\\[[0-9;]*;3[1-7]m').test(out), 'no colour codes without colours');
});

test('app: keys sort, group, filter, open the explanation and quit; an idle refresh writes nothing', () => {
  let out = '';
  let quit = 0;
  const app = new TopApp({
    terminal: { write: (t) => (out += t), columns: 80, rows: 24 },
    origin: { host: 'h', kernel: 'k', source: 'bpf', intervalMs: 1000 },
    kb: loadKnowledge(),
    color: false,
    unicode: false,
    onQuit: () => quit++,
  });
  app.interval(iv([pt('NO_SOCKET', '__udp4_lib_rcv', 5), pt('SOCKET_RCVBUFF', 'udp_queue_rcv_one_skb', 9)]));
  app.key('s', { name: 's' });
  assert.equal(app.model.sort, 'total');
  app.key('g', { name: 'g' });
  assert.equal(app.model.group, 'reason');
  app.key('/', { sequence: '/' });
  for (const ch of 'rcvbuf') app.key(ch, { name: ch, sequence: ch });
  app.key(undefined, { name: 'return' });
  assert.equal(app.model.filter, 'rcvbuf');
  assert.equal(app.model.rows().length, 1);
  out = '';
  app.key(undefined, { name: 'return' });
  assert.match(out, /explanation/);
  app.key(undefined, { name: 'escape' });
  const before = app.written;
  app.render();
  assert.equal(app.written, before, 'nothing changed, nothing written');
  app.key('q', { name: 'q' });
  app.key(undefined, { name: 'c', ctrl: true });
  assert.equal(quit, 2);
});
