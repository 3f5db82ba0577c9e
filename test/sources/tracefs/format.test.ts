import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage, parseSymbolicTables } from '../../../src/sources/tracefs/format.js';
import { kfreeSkbLayout, kernelStackLayout } from '../../../src/sources/tracefs/ringbuffer.js';
import { ParseError } from '../../../src/core/errors.js';
import { fixtureText } from '../../helpers/fixtures.js';

test('6.18 kfree_skb format: fields, offsets and the reason table', () => {
  const f = parseEventFormat(fixtureText('kernel-6.18/kfree_skb.format'));
  assert.equal(f.name, 'kfree_skb');
  assert.ok(f.id > 0);
  assert.deepEqual(
    ['skbaddr', 'location', 'rx_sk', 'protocol', 'reason'].map((n) => [n, f.fields.get(n)?.offset, f.fields.get(n)?.size]),
    [['skbaddr', 8, 8], ['location', 16, 8], ['rx_sk', 24, 8], ['protocol', 32, 2], ['reason', 36, 4]],
  );
  assert.equal(f.fields.get('common_pid')?.signed, true);
  const reasons = f.symbolic.get('reason')!;
  assert.equal(reasons.get(3), 'NO_SOCKET');
  assert.equal(reasons.get(74), 'UNHANDLED_PROTO');
  assert.ok(reasons.size > 100);
  const l = kfreeSkbLayout(f);
  assert.equal(l.locationWord, 4);
  assert.equal(l.reasonWord, 9);
  assert.equal(l.protocolWord, 8);
  assert.equal(l.protocolShift, 0);
});

test('5.17 format: reason without rx_sk, reasons numbered from 0', () => {
  const f = parseEventFormat(fixtureText('kernel-5.17/kfree_skb.format'));
  assert.equal(f.fields.get('reason')?.offset, 28);
  assert.equal(f.fields.has('rx_sk'), false);
  assert.equal(f.symbolic.get('reason')?.get(1), 'NO_SOCKET');
  assert.equal(kfreeSkbLayout(f).reasonWord, 7);
});

test('5.10 format: no reason field at all', () => {
  const f = parseEventFormat(fixtureText('kernel-5.10/kfree_skb.format'));
  assert.equal(f.fields.has('reason'), false);
  assert.equal(f.symbolic.size, 0);
  assert.equal(kfreeSkbLayout(f).reasonWord, -1);
});

test('kernel_stack format: caller array', () => {
  const f = parseEventFormat(fixtureText('kernel-6.18/kernel_stack.format'));
  assert.equal(f.fields.get('caller')?.arrayLength, 8);
  const l = kernelStackLayout(f);
  assert.equal(l.callerSize, 8);
  assert.equal(l.callerWord, 4);
});

test('header_page and header_event', () => {
  const p = parseHeaderPage(fixtureText('kernel-6.18/header_page'));
  assert.deepEqual(p, { timestampOffset: 0, commitOffset: 8, commitSize: 8, dataOffset: 16, dataSize: 4080 });
  const h = parseHeaderEvent(fixtureText('kernel-6.18/header_event'));
  assert.deepEqual(h, { typeLenBits: 5, timeDeltaBits: 27, padding: 29, timeExtend: 30, timeStamp: 31, dataMaxTypeLen: 28 });
});

test('symbolic tables: hex and negative values, several fields', () => {
  const t = parseSymbolicTables('"%s %s", __print_symbolic(REC->a, { 0x10, "SIXTEEN" }, { -1, "MINUS" }), __print_symbolic(REC->b, { 1, "ONE" })');
  assert.equal(t.get('a')?.get(16), 'SIXTEEN');
  assert.equal(t.get('a')?.get(-1), 'MINUS');
  assert.equal(t.get('b')?.get(1), 'ONE');
});

test('malformed formats throw ParseError with a location', () => {
  assert.throws(() => parseEventFormat('ID: 5\n'), ParseError);
  assert.throws(() => parseEventFormat('name: x\nID: 5\n\tfield:int a;\toffset:zz;\n'), /line 3/);
  assert.throws(() => parseHeaderPage('\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n'), /no "commit" field/);
  assert.throws(() => parseHeaderEvent('type_len : 5 bits\n'), ParseError);
  const noLoc = parseEventFormat('name: kfree_skb\nID: 1\nformat:\n\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;\n');
  assert.throws(() => kfreeSkbLayout(noLoc), /no "location" field/);
});
