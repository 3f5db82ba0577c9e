/**
 * Structured fuzzing of the ring-buffer page decoder (ringbuffer.ts): pages
 * built from records of every type (kfree_skb in both length forms, kernel
 * stacks, devlink trap reports, other events, padding, null padding, time
 * extends and stamps, stray words), then mutated (header commit and flags,
 * event headers and length words, single bits, the read length).
 *
 * Properties: the decoder returns or throws a ParseError, nothing else; it
 * ends (the test has a deadline); it never reads outside the bytes it was
 * given: no word outside them is read (a proxy watches the indexes), and the
 * page sits between guard bytes filled two different ways (trap reports read
 * bytes through another view), both decodes giving the same answer, counts
 * and error. An
 * unmutated page decodes to exactly what was written.
 *
 * DROPMON_FUZZ_RUNS sets the number of pages per property (`npm run fuzz`
 * runs the nightly size).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ParseError } from '../../../src/core/errors.js';
import { DropTally } from '../../../src/core/tally.js';
import { PageDecoder, kfreeSkbLayout, kernelStackLayout } from '../../../src/sources/tracefs/ringbuffer.js';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage } from '../../../src/sources/tracefs/format.js';
import { TrapReportTally, trapReportLayout } from '../../../src/sources/tracefs/traps.js';
import { fixtureText } from '../../helpers/fixtures.js';
import { watched } from '../../helpers/pages.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 1500);
const PAGE = 4096;

const pageFmt = parseHeaderPage(fixtureText('devlink-6.1/header_page'));
const header = parseHeaderEvent(fixtureText('kernel-6.18/header_event'));
const kfreeFmt = parseEventFormat(fixtureText('devlink-6.1/kfree_skb.format'));
const kfree = kfreeSkbLayout(kfreeFmt);
const stack = kernelStackLayout(parseEventFormat(fixtureText('kernel-6.18/kernel_stack.format')));
const trapFmt = parseEventFormat(fixtureText('devlink-6.1/devlink_trap_report.format'));
const trapLayout = trapReportLayout(trapFmt);
const DATA = pageFmt.dataOffset;

/** One record of the page, as the kernel writes it. */
type Rec =
  | { kind: 'kfree'; location: bigint; reason: number; protocol: number; long: boolean }
  | { kind: 'stack'; callers: bigint[]; declared: number }
  | { kind: 'trap'; bus: string; dev: string; trap: string; group: string; input: string }
  | { kind: 'other'; id: number; bytes: Uint8Array; long: boolean }
  | { kind: 'empty' }
  | { kind: 'padding'; bytes: number }
  | { kind: 'extend' | 'stamp'; delta: number }
  | { kind: 'word'; value: number };

function eventWords(data: Uint8Array, long: boolean, delta: number): number[] {
  const padded = new Uint8Array(Math.ceil(data.length / 4) * 4);
  padded.set(data);
  const body = [...new Uint32Array(padded.buffer)];
  const n = body.length;
  if (!long && n >= 1 && n <= header.dataMaxTypeLen) return [((delta << header.typeLenBits) | n) >>> 0, ...body];
  return [(delta << header.typeLenBits) >>> 0, n * 4 + 4, ...body];
}

function kfreeData(r: Extract<Rec, { kind: 'kfree' }>): Uint8Array {
  const d = new Uint8Array(kfree.minBytes + 4);
  const v = new DataView(d.buffer);
  v.setUint16(0, kfree.id, true);
  v.setBigUint64(kfree.locationWord * 4, r.location, true);
  v.setUint16(kfree.protocolWord * 4 + kfree.protocolShift / 8, r.protocol, true);
  v.setUint32(kfree.reasonWord * 4, r.reason, true);
  return d;
}

function stackData(r: Extract<Rec, { kind: 'stack' }>): Uint8Array {
  const d = new Uint8Array(stack.callerWord * 4 + r.callers.length * 8);
  const v = new DataView(d.buffer);
  v.setUint16(0, stack.id, true);
  v.setUint32(stack.sizeWord * 4, r.declared, true);
  r.callers.forEach((c, i) => v.setBigUint64(stack.callerWord * 4 + i * 8, c, true));
  return d;
}

/** A devlink_trap_report record: its __data_loc strings after the fixed part. */
function trapData(r: Extract<Rec, { kind: 'trap' }>): Uint8Array {
  const strings: [string, string][] = [['bus_name', r.bus], ['dev_name', r.dev], ['driver_name', 'netdevsim'], ['trap_name', r.trap], ['trap_group_name', r.group]];
  const tail = strings.map(([, s]) => Buffer.from(`${s}\0`, 'latin1'));
  const fixed = trapLayout.minBytes;
  const d = new Uint8Array(fixed + tail.reduce((n, b) => n + b.length, 0));
  const v = new DataView(d.buffer);
  v.setUint16(0, trapLayout.id, true);
  let at = fixed;
  strings.forEach(([name], i) => {
    const f = trapFmt.fields.get(name)!;
    const off = f.dynamic === 'rel_loc' ? at - f.offset - 4 : at;
    v.setUint32(f.offset, ((tail[i].length << 16) | off) >>> 0, true);
    d.set(tail[i], at);
    at += tail[i].length;
  });
  const input = trapFmt.fields.get('input_dev_name')!;
  d.set(Buffer.from(r.input.slice(0, input.size - 1), 'latin1'), input.offset);
  return d;
}

function recordWords(r: Rec, delta: number): number[] {
  switch (r.kind) {
    case 'kfree':
      return eventWords(kfreeData(r), r.long, delta);
    case 'stack':
      return eventWords(stackData(r), false, delta);
    case 'trap':
      return eventWords(trapData(r), false, delta);
    case 'other': {
      const d = new Uint8Array(Math.max(4, r.bytes.length));
      d.set(r.bytes);
      new DataView(d.buffer).setUint16(0, r.id, true);
      return eventWords(d, r.long, delta);
    }
    case 'empty':
      // A length word that counts only itself: an event without even a type.
      return [(delta << header.typeLenBits) >>> 0, 4];
    case 'padding':
      return [(header.padding | (1 << header.typeLenBits)) >>> 0, r.bytes + 4, ...new Array<number>(r.bytes / 4).fill(0)];
    case 'extend':
      return [(header.timeExtend | (r.delta << header.typeLenBits)) >>> 0, r.delta];
    case 'stamp':
      return [(header.timeStamp | (r.delta << header.typeLenBits)) >>> 0, r.delta];
    case 'word':
      return [r.value];
  }
}

const name = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 });
const record: fc.Arbitrary<Rec> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('kfree' as const), location: fc.bigInt({ min: 0xffffffff80000000n, max: 0xffffffffffffffffn }), reason: fc.nat(120), protocol: fc.constantFrom(0x0800, 0x86dd, 0x88b5), long: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stack' as const), callers: fc.array(fc.bigInt({ min: 1n, max: 0xffffffffffffffffn }), { maxLength: 8 }), declared: fc.oneof(fc.nat(8), fc.constant(0xffffffff)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('trap' as const), bus: name, dev: name, trap: name, group: name, input: fc.string({ maxLength: 15 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('other' as const), id: fc.nat(0xffff), bytes: fc.uint8Array({ maxLength: 140 }), long: fc.boolean() }) },
  fc.constant({ kind: 'empty' as const }),
  fc.record({ kind: fc.constant('padding' as const), bytes: fc.nat(16).map((n) => n * 4) }),
  fc.record({ kind: fc.constantFrom('extend' as const, 'stamp' as const), delta: fc.nat(0x7ffffff) }),
  fc.record({ kind: fc.constant('word' as const), value: fc.nat(0xffffffff) }),
);

/** What counts the unmutated page should give. */
function expected(recs: readonly Rec[]): { drops: number; traps: number; other: number } {
  let drops = 0, traps = 0, other = 0;
  for (const r of recs) {
    if (r.kind === 'kfree') drops++;
    else if (r.kind === 'trap') traps++;
    else if (r.kind === 'stack' || r.kind === 'other') {
      if (r.kind === 'other' && (r.id === kfree.id || r.id === trapLayout.id)) continue;
      other++;
    }
  }
  return { drops, traps, other };
}

/** Data words of a page of `recs` (stopping before the page is full). */
function layOut(recs: readonly Rec[]): { words: number[]; used: Rec[] } {
  const words: number[] = [];
  const used: Rec[] = [];
  for (const r of recs) {
    const w = recordWords(r, 1 + (used.length % 7));
    if (DATA + (words.length + w.length) * 4 + 8 > PAGE) break;
    words.push(...w);
    used.push(r);
  }
  return { words, used };
}

interface Mutations {
  /** New commit word: keep, a random one, or the right size with the missed flags. */
  readonly commit: { kind: 'keep' } | { kind: 'value'; value: number } | { kind: 'shift'; by: number } | { kind: 'flags'; bits: number };
  /** Changes to data words: set a value, flip a bit, or change a type_len. */
  readonly edits: readonly { at: number; how: 'set' | 'flip' | 'typelen'; value: number }[];
  /** Bytes handed to the decoder: the whole page, just header and data, or cut short. */
  readonly length: { kind: 'page' } | { kind: 'exact' } | { kind: 'cut'; at: number };
}

const mutations: fc.Arbitrary<Mutations> = fc.record({
  commit: fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'keep' as const }) },
    fc.record({ kind: fc.constant('value' as const), value: fc.nat(0xffffffff) }),
    fc.record({ kind: fc.constant('shift' as const), by: fc.integer({ min: -64, max: 64 }) }),
    fc.record({ kind: fc.constant('flags' as const), bits: fc.constantFrom(0x80000000, 0x40000000, 0xc0000000) }),
  ),
  edits: fc.array(fc.record({ at: fc.nat(1100), how: fc.constantFrom('set' as const, 'flip' as const, 'typelen' as const), value: fc.nat(0xffffffff) }), { maxLength: 4 }),
  length: fc.oneof(fc.constant({ kind: 'page' as const }), fc.constant({ kind: 'exact' as const }), fc.record({ kind: fc.constant('cut' as const), at: fc.nat(PAGE) })),
});

/** The page's bytes and how many of them the decoder is given. */
function buildPage(dataWords: readonly number[], m: Mutations): { page: Uint8Array; length: number } {
  const words = [...dataWords];
  for (const e of m.edits) {
    if (words.length === 0) break;
    const i = e.at % words.length;
    if (e.how === 'set') words[i] = e.value;
    else if (e.how === 'flip') words[i] = (words[i] ^ (1 << (e.value % 32))) >>> 0;
    else words[i] = ((words[i] & ~((1 << header.typeLenBits) - 1)) | (e.value & ((1 << header.typeLenBits) - 1))) >>> 0;
  }
  const page = new Uint8Array(PAGE);
  const v = new DataView(page.buffer);
  v.setBigUint64(pageFmt.timestampOffset, 123456789n, true);
  const size = words.length * 4;
  let commit = size;
  if (m.commit.kind === 'value') commit = m.commit.value;
  else if (m.commit.kind === 'shift') commit = Math.max(0, size + m.commit.by * 4 + (m.commit.by & 3));
  else if (m.commit.kind === 'flags') commit = (size | m.commit.bits) >>> 0;
  v.setUint32(pageFmt.commitOffset, commit >>> 0, true);
  words.forEach((w, i) => v.setUint32(DATA + i * 4, w, true));
  if (m.commit.kind === 'flags' && DATA + size + 8 <= PAGE) v.setUint32(DATA + size, 77, true);
  const length = m.length.kind === 'page' ? PAGE : m.length.kind === 'exact' ? Math.min(PAGE, DATA + size) : m.length.at;
  return { page, length };
}

/** Everything one decode tells: the answer or the error, and what it counted. */
function outcome(dec: PageDecoder, tally: DropTally, traps: TrapReportTally, u32: Uint32Array, byteOffset: number, length: number): string {
  let head: string;
  const w = watched(u32);
  try {
    head = JSON.stringify(dec.decode(w.view, byteOffset, length));
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    head = `ParseError ${e.message} ${JSON.stringify(dec.info)}`;
  }
  if (w.highest() >= 0) {
    assert.ok(w.lowest() >= byteOffset / 4, `read word ${w.lowest()}, before the page at word ${byteOffset / 4}`);
    assert.ok(w.highest() < (byteOffset + length) / 4, `read word ${w.highest()}, past the ${length} bytes given at word ${byteOffset / 4}`);
  }
  dec.flushPending();
  const drops = tally.take().map((s) => `${s.location}:${s.reason}:${s.protocol}:${s.count}:${s.stack?.join(',') ?? ''}`).sort();
  const reports = traps.take().map((t) => `${JSON.stringify(t.report)}x${t.count}`).sort();
  return `${head}\n${drops.join(' ')}\n${reports.join(' ')}`;
}

function decoder(withStack: boolean): { dec: PageDecoder; tally: DropTally; traps: TrapReportTally } {
  const tally = new DropTally(new Map());
  const traps = new TrapReportTally(trapLayout);
  return { dec: new PageDecoder(pageFmt, header, kfree, tally, withStack ? stack : undefined, traps), tally, traps };
}

/**
 * Two different words to fill the guard with, often the ids the decoder looks
 * for (a read past the end then counts or refuses something it should not).
 */
const guardWord = fc.oneof(fc.constantFrom(kfree.id, trapLayout.id, stack.id, 0, 0xffffffff, 4, 8), fc.nat(0xffffffff));
const guardFills = fc.tuple(guardWord, guardWord).filter(([a, b]) => a !== b);

for (const withStack of [false, true]) {
  test(`page decoder${withStack ? ' (stack mode)' : ''}: records of every type, mutated, never read outside the bytes given`, { timeout: 3_600_000 }, () => {
    const { dec, tally, traps } = decoder(withStack);
    fc.assert(
      fc.property(fc.array(record, { maxLength: 90 }), mutations, fc.nat(2), guardFills, (recs, m, where, fills) => {
        const { page, length } = buildPage(layOut(recs).words, m);
        // The page at the start, the middle or the end of a three-page buffer; the rest is guard.
        const byteOffset = where * PAGE;
        const answers = fills.map((g) => {
          const buf = new Uint8Array(3 * PAGE);
          new Uint32Array(buf.buffer).fill(g);
          buf.set(page.subarray(0, length), byteOffset);
          return outcome(dec, tally, traps, new Uint32Array(buf.buffer), byteOffset, Math.min(length, 3 * PAGE - byteOffset));
        });
        assert.equal(answers[1], answers[0], 'the bytes around the page changed the answer');
      }),
      { numRuns: RUNS },
    );
  });
}

test('page decoder: an unmutated page of every record type decodes to exactly what was written', () => {
  const valid = record.filter((r) => r.kind !== 'word' && r.kind !== 'empty' && !(r.kind === 'other' && (r.id === kfree.id || r.id === trapLayout.id || r.id === stack.id)));
  fc.assert(
    fc.property(fc.array(valid, { maxLength: 90 }), (recs) => {
      const { words, used } = layOut(recs);
      const { dec, tally, traps } = decoder(false);
      const { page } = buildPage(words, { commit: { kind: 'keep' }, edits: [], length: { kind: 'page' } });
      const info = dec.decode(new Uint32Array(page.buffer), 0, PAGE);
      const want = expected(used);
      assert.deepEqual({ drops: info.drops, traps: info.trapReports, other: info.otherEvents }, want);
      assert.equal(info.dataBytes, words.length * 4);
      assert.equal(tally.take().reduce((n, s) => n + s.count, 0), want.drops);
      assert.equal(traps.take().reduce((n, t) => n + t.count, 0), want.traps);
    }),
    { numRuns: Math.max(10, Math.floor(RUNS / 4)) },
  );
});
