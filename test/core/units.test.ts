import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDuration, formatSize, parseDuration, parseSize, parseTimeSpec, type TimeSpec } from '../../src/core/units.js';

test('durations: a number and a unit, or bare seconds', () => {
  const cases: [string, number | undefined][] = [
    ['3600', 3_600_000],
    ['0.5', 500],
    ['500ms', 500],
    ['10s', 10_000],
    ['90m', 5_400_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['1.5h', 5_400_000],
    [' 12 H ', 43_200_000],
    ['250MS', 250],
    ['0', 0],
    ['', undefined],
    ['soon', undefined],
    ['-5s', undefined],
    ['5w', undefined],
    ['1e3', undefined],
    ['.5s', undefined],
    ['5 s s', undefined],
    ['9'.repeat(400), undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, JSON.stringify(text));
});

test('durations in seconds keep the number as written', () => {
  assert.equal(parseDuration('1.005', 's'), 1.005);
  assert.equal(parseDuration('300ms', 's'), 0.3);
  assert.equal(parseDuration('2m', 's'), 120);
  assert.equal(parseDuration('0.1', 's'), 0.1);
});

test('sizes: binary multiples, however spelled', () => {
  const cases: [string, number | undefined][] = [
    ['65536', 65536],
    ['64K', 65536],
    ['64k', 65536],
    ['500M', 500 * 1024 ** 2],
    ['500MB', 500 * 1024 ** 2],
    ['500 MiB', 500 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
    ['1T', 1024 ** 4],
    ['1.5K', 1536],
    ['0.3K', 307],
    ['100b', 100],
    ['lots', undefined],
    ['5P', undefined],
    ['-1M', undefined],
    ['1e6', undefined],
    ['', undefined],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, JSON.stringify(text));
});

test('times: ISO 8601, @unix seconds, ms since the epoch, offsets', () => {
  const cases: [string, TimeSpec | undefined][] = [
    ['2026-11-25T20:30:00Z', { kind: 'absolute', ms: Date.UTC(2026, 10, 25, 20, 30) }],
    ['2026-11-25 20:30Z', { kind: 'absolute', ms: Date.UTC(2026, 10, 25, 20, 30) }],
    ['2026-11-25T20:30:00.250+01:00', { kind: 'absolute', ms: Date.UTC(2026, 10, 25, 19, 30, 0, 250) }],
    ['2026-11-25', { kind: 'absolute', ms: Date.UTC(2026, 10, 25) }],
    ['2026-11-25T20:30', { kind: 'absolute', ms: new Date(2026, 10, 25, 20, 30).getTime() }],
    ['@1795638502.5', { kind: 'absolute', ms: 1795638502500 }],
    ['1795641576417', { kind: 'epoch-ms', ms: 1795641576417 }],
    ['+10m', { kind: 'offset', sign: '+', ms: 600_000 }],
    ['-2s', { kind: 'offset', sign: '-', ms: 2000 }],
    ['-15m', { kind: 'offset', sign: '-', ms: 900_000 }],
    ['-500ms', { kind: 'offset', sign: '-', ms: 500 }],
    ['-30', { kind: 'offset', sign: '-', ms: 30_000 }],
    [' -2H ', { kind: 'offset', sign: '-', ms: 7_200_000 }],
    ['Nov 25', undefined],
    ['yesterday', undefined],
    ['2026-13-45', undefined],
    ['- 10m', undefined],
    ['+-10m', undefined],
    ['12345678901234567', undefined],
    ['@', undefined],
    ['@' + '9'.repeat(400), undefined],
    ['', undefined],
  ];
  for (const [text, spec] of cases) assert.deepEqual(parseTimeSpec(text), spec, JSON.stringify(text));
});

test('format then parse gives the same duration, size and time back', () => {
  fc.assert(
    fc.property(fc.nat({ max: 10 * 365 * 86_400_000 }), fc.constantFrom(1, 1000, 60_000, 3_600_000, 86_400_000), (n, unit) => {
      const ms = n - (n % unit);
      assert.equal(parseDuration(formatDuration(ms)), ms);
      assert.deepEqual(parseTimeSpec(`-${formatDuration(ms)}`), { kind: 'offset', sign: '-', ms });
    }),
  );
  fc.assert(
    fc.property(fc.nat({ max: 2 ** 40 }), fc.constantFrom(1, 1024, 1024 ** 2, 1024 ** 3), (n, unit) => {
      const bytes = n * unit <= Number.MAX_SAFE_INTEGER ? n * unit : n;
      assert.equal(parseSize(formatSize(bytes)), bytes);
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }), (ms) => {
      assert.deepEqual(parseTimeSpec(new Date(ms).toISOString()), { kind: 'absolute', ms });
      assert.deepEqual(parseTimeSpec(`@${ms / 1000}`), { kind: 'absolute', ms });
    }),
  );
});

test('never throws, and every number it gives is finite', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (s) => {
      for (const v of [parseDuration(s), parseDuration(s, 's'), parseSize(s), parseTimeSpec(s)?.ms]) assert.ok(v === undefined || Number.isFinite(v));
    }),
    { numRuns: 2000 },
  );
});
