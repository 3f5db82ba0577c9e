/**
 * Property-based fuzzing of the tracefs parsers of kernel-provided input (ring
 * buffer pages, trap reports, event formats, headers, per-CPU stats): whatever
 * the bytes, a parser returns or throws a ParseError; it never throws
 * anything else, never hangs, never crashes the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ParseError } from '../../../src/core/errors.js';
import { DropTally } from '../../../src/core/tally.js';
import { PageDecoder, kfreeSkbLayout, kernelStackLayout } from '../../../src/sources/tracefs/ringbuffer.js';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage } from '../../../src/sources/tracefs/format.js';
import { parseCpuStats } from '../../../src/sources/tracefs/source.js';
import { fixture, fixtureText, kernelLayout, words } from '../../helpers/fixtures.js';
import { PageBuilder } from '../../helpers/pages.js';
import { TrapReportTally, decodeTrapReport, trapReportLayout } from '../../../src/sources/tracefs/traps.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);

function onlyParseErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
  }
}

const L = kernelLayout('6.18');
const stackFmt = parseEventFormat(fixtureText('kernel-6.18/kernel_stack.format'));
const realPage = fixture('kernel-6.18/pages.bin').subarray(0, 4096);

for (const withStack of [false, true]) {
  test(`page decoder${withStack ? ' (stack mode)' : ''}: random pages and random lengths`, () => {
    const tally = new DropTally(new Map());
    const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally, withStack ? kernelStackLayout(stackFmt) : undefined);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.nat(4096), (bytes, len) => {
        const page = new Uint8Array(4096);
        page.set(bytes);
        onlyParseErrors(() => dec.decode(words(page), 0, Math.min(len, 4096)));
        tally.take();
      }),
      { numRuns: RUNS },
    );
  });
}

test('page decoder: a real page with random bytes flipped', () => {
  const tally = new DropTally(new Map());
  const dec = new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(4095), fc.nat(255)), { minLength: 1, maxLength: 16 }), (flips) => {
      const page = Uint8Array.from(realPage);
      for (const [at, v] of flips) page[at] = v;
      onlyParseErrors(() => dec.decode(words(page), 0, 4096));
      tally.take();
    }),
    { numRuns: RUNS },
  );
});

test('page decoder: valid synthetic pages decode to exactly what was written', () => {
  const slots = { id: L.kfree.id, locationOffset: 16, protocolOffset: 32, reasonOffset: 36, size: 40 };
  const drop = fc.record({
    location: fc.bigInt({ min: 0xffffffff80000000n, max: 0xffffffffffffffffn }),
    reason: fc.nat(200),
    protocol: fc.constantFrom(0x0800, 0x86dd, 0x88b5),
  });
  fc.assert(
    fc.property(fc.array(fc.tuple(drop, fc.boolean(), fc.nat(3)), { maxLength: 80 }), (events) => {
      const b = new PageBuilder();
      const want = new Map<string, number>();
      for (const [d, long, extra] of events) {
        if (!b.fits(60)) break;
        if (extra === 1) b.timeExtend();
        if (extra === 2) b.padding(8);
        b.drop(slots, d, 1, long);
        const k = `${d.location}:${d.reason}:${d.protocol}`;
        want.set(k, (want.get(k) ?? 0) + 1);
      }
      const tally = new DropTally(new Map());
      new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), tally).decode(words(b.build()), 0, 4096);
      const got = new Map(tally.take().map((s) => [`${s.location}:${s.reason}:${s.protocol}`, s.count]));
      assert.deepEqual(got, want);
    }),
    { numRuns: RUNS / 4 },
  );
});

const trapFmt = parseEventFormat(fixtureText('devlink-6.1/devlink_trap_report.format'));
const trapLayout = trapReportLayout(trapFmt);

test('devlink_trap_report decoder: random event bytes and lengths', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(300), (bytes, len) => {
      onlyParseErrors(() => {
        const r = decodeTrapReport(bytes, 0, Math.min(len, bytes.length), trapLayout);
        assert.ok(r.trap.length > 0 && r.input.length <= 16);
      });
    }),
    { numRuns: RUNS },
  );
});

test('page decoder with trap reports: random pages, and real pages with random bytes flipped', () => {
  const kfree = parseEventFormat(fixtureText('devlink-6.1/kfree_skb.format'));
  const page = parseHeaderPage(fixtureText('devlink-6.1/header_page'));
  const header = parseHeaderEvent(fixtureText('devlink-6.1/header_event'));
  const traps = new TrapReportTally(trapLayout);
  const tally = new DropTally(new Map());
  const dec = new PageDecoder(page, header, kfreeSkbLayout(kfree), tally, undefined, traps);
  const real = fixture('devlink-6.1/pages.bin').subarray(0, 4096);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.nat(4096), (bytes, len) => {
      const p = new Uint8Array(4096);
      p.set(bytes);
      // trap reports need their event id: put it where events start, often
      if (bytes.length > 24) new DataView(p.buffer).setUint16(20, trapFmt.id, true);
      onlyParseErrors(() => dec.decode(words(p), 0, Math.min(len, 4096)));
      traps.take();
      tally.take();
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(4095), fc.nat(255)), { minLength: 1, maxLength: 16 }), (flips) => {
      const p = Uint8Array.from(real);
      for (const [at, v] of flips) p[at] = v;
      onlyParseErrors(() => dec.decode(words(p), 0, 4096));
      for (const { report } of traps.take()) assert.ok(report.trap.length > 0);
      tally.take();
    }),
    { numRuns: RUNS },
  );
});

test('event format parser: mutated devlink_trap_report formats', () => {
  const real = fixtureText('devlink-6.12/devlink_trap_report.format');
  fc.assert(
    fc.property(fc.nat(real.length), fc.nat(real.length), fc.string({ maxLength: 20 }), (a, b, ins) => {
      const mutated = real.slice(0, Math.min(a, b)) + ins + real.slice(Math.max(a, b));
      onlyParseErrors(() => trapReportLayout(parseEventFormat(mutated)));
    }),
    { numRuns: RUNS },
  );
});

test('event format parser: random text and mutated real formats', () => {
  const real = fixtureText('kernel-6.18/kfree_skb.format');
  fc.assert(
    fc.property(fc.string({ maxLength: 2000 }), (s) => onlyParseErrors(() => parseEventFormat(s))),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.nat(real.length), fc.nat(real.length), fc.string({ maxLength: 20 }), (a, b, ins) => {
      const mutated = real.slice(0, Math.min(a, b)) + ins + real.slice(Math.max(a, b));
      onlyParseErrors(() => {
        const f = parseEventFormat(mutated);
        kfreeSkbLayout(f);
      });
    }),
    { numRuns: RUNS },
  );
});

test('header parsers: random text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 500 }), (s) => {
      onlyParseErrors(() => parseHeaderPage(s));
      onlyParseErrors(() => parseHeaderEvent(s));
      parseCpuStats(s);
    }),
    { numRuns: RUNS },
  );
});
