/**
 * NET_DM messages captured from a real kernel (Debian 12's 6.1, in the test
 * VM, by scripts/capture-netdm-fixtures.ts): they confirm the derived
 * vectors of protocol.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseError, parseMessages } from '../../../src/kernel/netlink/message.js';
import { parseGenl } from '../../../src/kernel/netlink/genl.js';
import { decodeAlert, decodeConfig, decodeStats } from '../../../src/sources/netdm/protocol.js';
import { fixture } from '../../helpers/fixtures.js';

const one = (name: string) => {
  const msgs = parseMessages(fixture(`netdm-6.1/${name}`));
  assert.equal(msgs.length, 1);
  return msgs[0];
};

test('real CONFIG_NEW and STATS_NEW (TV7, TV8 shapes)', () => {
  assert.deepEqual(decodeConfig(parseGenl(one('config-new.bin'))), { mode: 'summary', truncLen: 0, queueLen: 1000 });
  const s = decodeStats(parseGenl(one('stats-new.bin')));
  assert.equal(typeof s.swDropped, 'bigint');
  assert.equal(fixture('netdm-6.1/config-new.bin').length, 44, 'same size as TV7');
  assert.equal(fixture('netdm-6.1/stats-new.bin').length, 52, 'same size as TV8');
});

test('real START-while-started: EAGAIN with the extended-ACK text of TV4b', () => {
  const m = one('start-again-eagain.bin');
  const e = parseError(m);
  assert.equal(e.error, -11);
  assert.equal(e.message, 'drop_monitor: Trace state already set to requested state');
  assert.equal(m.flags, 0x300, 'CAPPED | ACK_TLVS');
  assert.equal(m.length, 100);
});

test('real summary alert: the legacy struct with the drops caused', () => {
  const a = decodeAlert(parseGenl(one('summary-alert.bin')));
  assert.equal(a?.kind, 'summary');
  if (a?.kind !== 'summary') return;
  assert.equal(a.points.length, 1);
  assert.equal(a.points[0].count, 7);
  assert.equal(a.points[0].pc >> 32n, 0xffffffffn);
});

test('real packet alert: attributes as documented (TV6 order), reason, ifindex, payload truncated', () => {
  const a = decodeAlert(parseGenl(one('packet-alert.bin')));
  assert.equal(a?.kind, 'packet');
  if (a?.kind !== 'packet') return;
  assert.equal(a.origin, 'software');
  assert.equal(a.reason, 'NO_SOCKET');
  assert.match(a.symbol ?? '', /^__udp4_lib_rcv\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
  assert.equal(a.ifindex, 1);
  assert.equal(a.origLen, 58);
  assert.equal(a.proto, 0x0800);
  assert.equal(a.payload?.length, 58, 'trunc 64 keeps the whole 58-byte frame');
  assert.ok((a.timestamp ?? 0n) > 1_600_000_000_000_000_000n);
});
