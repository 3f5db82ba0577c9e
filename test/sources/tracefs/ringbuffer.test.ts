import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PageDecoder, kfreeSkbLayout, kernelStackLayout } from '../../../src/sources/tracefs/ringbuffer.js';
import { parseEventFormat } from '../../../src/sources/tracefs/format.js';
import { DropTally } from '../../../src/core/tally.js';
import { NO_REASON, type DropSample } from '../../../src/core/drop.js';
import { ParseError } from '../../../src/core/errors.js';
import { fixture, fixtureText, kernelLayout, words } from '../../helpers/fixtures.js';
import { PageBuilder, watched } from '../../helpers/pages.js';

function decodeAll(version: string, file: string) {
  const L = kernelLayout(version);
  const tally = new DropTally(L.kfree.symbolic.get('reason') ?? new Map());
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally);
  const buf = fixture(file);
  const u32 = words(buf);
  let drops = 0, missedPages = 0, missedCount = 0;
  for (let off = 0; off < buf.length; off += 4096) {
    const info = dec.decode(u32, off, 4096);
    drops += info.drops;
    if (info.missed) missedPages++;
    missedCount += info.missedCount;
  }
  return { samples: tally.take(), drops, missedPages, missedCount };
}

function sum(samples: DropSample[], pred: (s: DropSample) => boolean): number {
  return samples.filter(pred).reduce((n, s) => n + s.count, 0);
}

test('real 6.18 pages: exact counts of the drops caused during the capture', () => {
  const { samples, drops } = decodeAll('6.18', 'kernel-6.18/pages.bin');
  assert.equal(sum(samples, (s) => s.reasonName === 'UNHANDLED_PROTO' && s.protocol === 0x88b5), 5500);
  assert.equal(sum(samples, (s) => s.reasonName === 'NO_SOCKET' && s.protocol === 0x0800), 1000);
  assert.equal(drops, sum(samples, () => true));
  for (const s of samples) assert.equal(s.location >> 32n, 0xffffffffn, 'kernel text address');
});

test('real 6.18 overrun pages: the missed-events flag and count', () => {
  const meta = JSON.parse(fixture('kernel-6.18/pages-overrun.json').toString()) as { cpu0: Record<string, number> };
  const { drops, missedPages, missedCount } = decodeAll('6.18', 'kernel-6.18/pages-overrun.bin');
  assert.equal(drops, meta.cpu0.entries, 'every event left in the buffer is decoded');
  assert.ok(missedPages >= 1, 'the kernel flagged the lost events');
  assert.ok(missedCount <= meta.cpu0.overrun);
});

const SLOTS_518 = { id: 1352, locationOffset: 16, protocolOffset: 24, reasonOffset: -1, size: 26 };
const SLOTS_517 = { id: 1456, locationOffset: 16, protocolOffset: 24, reasonOffset: 28, size: 32 };

test('5.10 layout (no reason): drops count with NO_REASON', () => {
  const L = kernelLayout('5.10');
  const tally = new DropTally(new Map());
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally);
  const b = new PageBuilder();
  for (let i = 0; i < 10; i++) b.drop(SLOTS_518, { location: 0xffffffff81000010n, reason: 0, protocol: 0x0800 });
  const info = dec.decode(words(b.build()), 0, 4096);
  assert.equal(info.drops, 10);
  const s = tally.take();
  assert.equal(s.length, 1);
  assert.equal(s[0].reason, NO_REASON);
  assert.equal(s[0].reasonName, '');
  assert.equal(s[0].location, 0xffffffff81000010n);
});

test('5.17 layout: every event encoding, time records and padding', () => {
  const L = kernelLayout('5.17');
  const tally = new DropTally(L.kfree.symbolic.get('reason')!);
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally);
  const b = new PageBuilder();
  const a = { location: 0xffffffff81000020n, reason: 1, protocol: 0x86dd };
  const c = { location: 0xffffffffc0001000n, reason: 3, protocol: 0x0800 };
  b.drop(SLOTS_517, a);
  b.timeExtend();
  b.drop(SLOTS_517, a, 1, true); // length-word form
  b.raw(new Uint8Array([7, 0, 0, 0, 1, 2, 3, 4])); // another event type
  b.absoluteStamp();
  b.padding(12); // a discarded event
  b.drop(SLOTS_517, c);
  b.drop(SLOTS_517, a);
  const info = dec.decode(words(b.build({ missed: true, missedCount: 42 })), 0, 4096);
  assert.equal(info.drops, 4);
  assert.equal(info.otherEvents, 1);
  assert.equal(info.missed, true);
  assert.equal(info.missedCount, 42);
  const s = tally.take().sort((x, y) => x.reason - y.reason);
  assert.deepEqual(s.map((x) => [x.reasonName, x.count, x.protocol]), [['NO_SOCKET', 3, 0x86dd], ['TCP_CSUM', 1, 0x0800]]);
});

test('reasons beyond the fast key range and odd high words are counted too', () => {
  const L = kernelLayout('5.17');
  const tally = new DropTally(new Map());
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally);
  const b = new PageBuilder();
  b.drop(SLOTS_517, { location: 0xffffffff81000020n, reason: 0x10005, protocol: 1 }); // a subsystem reason
  b.drop(SLOTS_517, { location: 0x0000000000401000n, reason: 2, protocol: 1 });
  b.drop(SLOTS_517, { location: 0x0000000000401000n, reason: 2, protocol: 1 });
  dec.decode(words(b.build()), 0, 4096);
  const s = tally.take().sort((x, y) => x.count - y.count);
  assert.deepEqual(s.map((x) => [x.location, x.reason, x.count]), [[0xffffffff81000020n, 0x10005, 1], [0x401000n, 2, 2]]);
});

test('truncated page: ParseError, and the events before the cut are counted', () => {
  const L = kernelLayout('6.18');
  const tally = new DropTally(L.kfree.symbolic.get('reason')!);
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally);
  const page = fixture('kernel-6.18/pages.bin').subarray(0, 4096);
  const full = new DropTally(new Map());
  const total = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), full).decode(words(page), 0, 4096).drops;
  assert.throws(() => dec.decode(words(page), 0, 1000), (e: unknown) => e instanceof ParseError && /truncated page/.test(e.message));
  const got = tally.take().reduce((n, s) => n + s.count, 0);
  assert.ok(got > 0 && got < total, `counted ${got} of ${total}`);
  assert.throws(() => dec.decode(words(page), 0, 8), /truncated header/);
});

/** Words of a page whose data is `data`, followed (outside the bytes given) by `after`. */
function pageThen(data: number[], after: number): { u32: Uint32Array; length: number } {
  const u32 = new Uint32Array(4 + data.length + 4).fill(after);
  u32.set([0, 0, data.length * 4, 0, ...data]);
  return { u32, length: (4 + data.length) * 4 };
}

test('an event whose length word counts only itself is refused, not typed by the word after it', () => {
  // Found by the fuzzer: data of 0 bytes made the decoder read the event type past the data.
  const L = kernelLayout('6.18');
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), new DropTally(new Map()));
  for (const after of [0, L.kfree.id]) {
    const { u32, length } = pageThen([1 << 5, 4], after);
    assert.throws(() => dec.decode(u32, 0, length), (e: unknown) => e instanceof ParseError && /bad event length 4/.test(e.message));
  }
});

test('stack mode: a stack record too short for its size field reads nothing past it', () => {
  const L = kernelLayout('6.18');
  const stack = kernelStackLayout(parseEventFormat(fixtureText('kernel-6.18/kernel_stack.format')));
  const kfree = kfreeSkbLayout(L.kfree);
  const drop = new Uint32Array(kfree.minBytes / 4 + 1);
  drop[0] = kfree.id;
  drop[kfree.locationWord] = 0x81000010;
  drop[kfree.locationWord + 1] = 0xffffffff;
  const tally = new DropTally(new Map());
  const dec = new PageDecoder(L.page, L.header, kfree, tally, stack);
  // a drop, then a stack record holding only its type word, at the end of the bytes given
  const { u32, length } = pageThen([drop.length, ...drop, 1, stack.id], 7);
  const w = watched(u32);
  dec.decode(w.view, 0, length);
  dec.flushPending();
  assert.ok(w.highest() < length / 4, `read word ${w.highest()} of ${length / 4}`);
  assert.deepEqual(tally.take().map((s) => s.stack), [[]]);
});
