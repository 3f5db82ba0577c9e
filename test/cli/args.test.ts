import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/core/errors.js';
import { expandLongPrefixes, parseAtol, parseChoice, parseCount, parseSeconds } from '../../src/cli/args.js';

test('seconds: a bare number, or a duration with a unit', () => {
  assert.equal(parseSeconds('--interval', undefined, 0.1, 3600), undefined);
  assert.equal(parseSeconds('--interval', '2.5', 0.1, 3600), 2.5);
  assert.equal(parseSeconds('--interval', '500ms', 0.1, 3600), 0.5);
  assert.equal(parseSeconds('--duration', '5m', 0.1, 3600), 300);
  assert.throws(() => parseSeconds('--interval', '0.05', 0.1, 3600), /--interval takes seconds from 0.1 to 3600, not "0.05"/);
  assert.throws(() => parseSeconds('--interval', '2h', 0.1, 3600), UsageError);
  assert.throws(() => parseSeconds('--interval', 'soon', 0.1, 3600), UsageError);
});

test('counts: whole numbers within bounds', () => {
  assert.equal(parseCount('--top', ' 5 ', 1, 1000), 5);
  assert.throws(() => parseCount('--top', '1.5', 1, 1000), /--top takes a whole number from 1 to 1000, not "1.5"/);
  assert.throws(() => parseCount('--top', '0', 1, 1000), UsageError);
});

test('choices: the value, or a message listing them', () => {
  assert.equal(parseChoice('--mode', undefined, ['summary', 'packet']), undefined);
  assert.equal(parseChoice('--mode', 'packet', ['summary', 'packet']), 'packet');
  assert.throws(() => parseChoice('--mode', 'all', ['summary', 'packet']), /unknown --mode "all"; use summary or packet/);
  assert.throws(() => parseChoice('--source', 'x', ['auto', 'bpf', 'tracefs', 'netdm']), /unknown --source "x"; use auto, bpf, tracefs or netdm/);
});

test("atol: C's whole numbers, spaces around them allowed, up to a bound", () => {
  assert.equal(parseAtol('-l', ' 42 ', 100, 'h'), 42);
  assert.throws(() => parseAtol('-l', '4x', 100, 'h'), /-l takes a whole number, not "4x"/);
  assert.throws(() => parseAtol('-l', '101', 100, 'h'), (e: UsageError) => e.message === '-l takes a number up to 100, not 101' && e.hint === 'h');
});

test('long options: any unambiguous prefix stands for the option', () => {
  const long = ['write', 'trunc', 'stats', 'bufsize'];
  assert.deepEqual(expandLongPrefixes(['--wri', 'f', '--tr=5', '-s', '--', '--st'], long, 'h'), ['--write', 'f', '--trunc=5', '-s', '--', '--st']);
  assert.deepEqual(expandLongPrefixes(['--nothing'], long, 'h'), ['--nothing']);
  assert.throws(() => expandLongPrefixes(['--s'], [...long, 'something'], 'h'), /option --s is ambiguous \(--stats, --something\)/);
});
