/**
 * NET_DM codec against the byte vectors of the protocol notes (derived from
 * the kernel sources; to be confirmed against a real kernel in the VM tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeMessage, parseError, parseMessages, NLM_F_ACK, NLM_F_REQUEST } from '../../../src/kernel/netlink/message.js';
import { getFamilyRequest, parseGenl } from '../../../src/kernel/netlink/genl.js';
import { configRequest, decodeAlert, decodeConfig, decodePacketAlert, decodeStats, decodeSummaryAlert, startRequest } from '../../../src/sources/netdm/protocol.js';
import { ParseError } from '../../../src/core/errors.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/^\s*[0-9a-f]{4}:/gm, '').replace(/\s+/g, ''), 'hex'));
const FAMILY = 0x1c;

test('TV1: resolve the family', () => {
  const msg = encodeMessage({ type: 0x10, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 1, pid: 0 }, getFamilyRequest('NET_DM'));
  assert.deepEqual(msg, hex(`0000: 20 00 00 00 10 00 05 00 01 00 00 00 00 00 00 00
                            0010: 03 01 00 00 0b 00 02 00 4e 45 54 5f 44 4d 00 00`));
});

test('TV2: START software + hardware, and legacy START', () => {
  const both = encodeMessage({ type: FAMILY, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 2, pid: 0 }, startRequest({ sw: true, hw: true }));
  assert.deepEqual(both, hex(`0000: 1c 00 00 00 1c 00 05 00 02 00 00 00 00 00 00 00
                             0010: 03 02 00 00 04 00 14 00 04 00 15 00`));
  const legacy = encodeMessage({ type: FAMILY, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 2, pid: 0 }, startRequest({ sw: false, hw: false }));
  assert.deepEqual(legacy, hex('14 00 00 00 1c 00 05 00 02 00 00 00 00 00 00 00 03 02 00 00'));
});

test('TV3: CONFIG packet mode, trunc 128, queue 1000', () => {
  const m = encodeMessage({ type: FAMILY, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 3, pid: 0 }, configRequest({ mode: 'packet', truncLen: 128, queueLen: 1000 }));
  assert.deepEqual(m, hex(`0000: 2c 00 00 00 1c 00 05 00 03 00 00 00 00 00 00 00
                          0010: 02 02 00 00 05 00 01 00 01 00 00 00 08 00 09 00
                          0020: 80 00 00 00 08 00 0b 00 e8 03 00 00`));
});

test('TV4/TV4b: success ACK and EAGAIN with an extended-ACK message', () => {
  const [ack] = parseMessages(hex(`0000: 24 00 00 00 02 00 00 01 02 00 00 00 34 12 00 00
                                   0010: 00 00 00 00 1c 00 00 00 1c 00 05 00 02 00 00 00
                                   0020: 00 00 00 00`));
  assert.equal(parseError(ack).error, 0);
  assert.equal(parseError(ack).request?.seq, 2);
  const [nak] = parseMessages(hex(`0000: 64 00 00 00 02 00 00 03 02 00 00 00 34 12 00 00
    0010: f5 ff ff ff 1c 00 00 00 1c 00 05 00 02 00 00 00
    0020: 00 00 00 00 3d 00 01 00 64 72 6f 70 5f 6d 6f 6e
    0030: 69 74 6f 72 3a 20 54 72 61 63 65 20 73 74 61 74
    0040: 65 20 61 6c 72 65 61 64 79 20 73 65 74 20 74 6f
    0050: 20 72 65 71 75 65 73 74 65 64 20 73 74 61 74 65
    0060: 00 00 00 00`));
  const e = parseError(nak);
  assert.equal(e.error, -11);
  assert.equal(e.message, 'drop_monitor: Trace state already set to requested state');
});

test('TV5: software summary alert with 2 points', () => {
  const [m] = parseMessages(hex(`0000: 34 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00
    0010: 01 02 00 00 20 00 00 00 02 00 00 00 c4 b3 a2 81
    0020: ff ff ff ff 03 00 00 00 56 34 12 c0 ff ff ff ff
    0030: 01 00 00 00`));
  const a = decodeAlert(parseGenl(m));
  assert.deepEqual(a, { kind: 'summary', points: [{ pc: 0xffffffff81a2b3c4n, count: 3 }, { pc: 0xffffffffc0123456n, count: 1 }], hw: [] });
});

test('TV6: software packet alert', () => {
  const [m] = parseMessages(hex(`0000: 90 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00
    0010: 05 02 00 00 06 00 0e 00 00 00 00 00 0c 00 02 00
    0020: f3 61 9e 8b ff ff ff ff 0e 00 17 00 4e 4f 5f 53
    0030: 4f 43 4b 45 54 00 00 00 1b 00 03 00 74 63 70 5f
    0040: 76 34 5f 72 63 76 2b 30 78 31 66 33 2f 30 78 66
    0050: 31 30 00 00 0c 00 04 80 08 00 00 00 02 00 00 00
    0060: 0c 00 05 00 15 cd 85 3d fe 9c 97 17 08 00 0a 00
    0070: 4a 00 00 00 06 00 06 00 00 08 00 00 12 00 07 00
    0080: 52 54 00 12 34 56 52 54 00 ab cd ef 08 00 00 00`));
  const a = decodePacketAlert(parseGenl(m));
  assert.equal(a.origin, 'software');
  assert.equal(a.pc, 0xffffffff8b9e61f3n);
  assert.equal(a.reason, 'NO_SOCKET');
  assert.equal(a.symbol, 'tcp_v4_rcv+0x1f3/0xf10');
  assert.equal(a.ifindex, 2);
  assert.equal(a.timestamp, 1700000000123456789n);
  assert.equal(a.origLen, 74);
  assert.equal(a.proto, 0x0800);
  assert.equal(a.payload?.length, 14);
});

test('TV7/TV8: CONFIG_NEW and STATS_NEW', () => {
  const [c] = parseMessages(hex(`0000: 2c 00 00 00 1c 00 00 00 04 00 00 00 34 12 00 00
    0010: 07 02 00 00 05 00 01 00 00 00 00 00 08 00 09 00
    0020: 00 00 00 00 08 00 0b 00 e8 03 00 00`));
  assert.deepEqual(decodeConfig(parseGenl(c)), { mode: 'summary', truncLen: 0, queueLen: 1000 });
  const [s] = parseMessages(hex(`0000: 34 00 00 00 1c 00 00 00 05 00 00 00 34 12 00 00
    0010: 09 02 00 00 10 00 0c 80 0c 00 00 00 2a 00 00 00
    0020: 00 00 00 00 10 00 0d 80 0c 00 00 00 00 00 00 00
    0030: 00 00 00 00`));
  assert.deepEqual(decodeStats(parseGenl(s)), { swDropped: 42n, hwDropped: 0n });
});

test('TV9: hardware summary alert', () => {
  const [m] = parseMessages(hex(`0000: 44 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00
    0010: 01 02 00 00 08 00 00 00 00 00 00 00 28 00 11 80
    0020: 24 00 12 80 18 00 10 00 69 6e 67 72 65 73 73 5f
    0030: 76 6c 61 6e 5f 66 69 6c 74 65 72 00 08 00 13 00
    0040: 05 00 00 00`));
  assert.deepEqual(decodeSummaryAlert(parseGenl(m)), { kind: 'summary', points: [], hw: [{ trap: 'ingress_vlan_filter', count: 5 }] });
});

test('malformed input: typed errors', () => {
  assert.throws(() => parseMessages(hex('ff 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00')), ParseError);
  const [m] = parseMessages(hex('1c 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00 01 02 00 00 08 00 00 00 09 00 00 00'));
  assert.throws(() => decodeSummaryAlert(parseGenl(m)), /9 drop points do not fit/);
});

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);

test('fuzz: every NET_DM decoder on random and mutated messages', () => {
  const seeds = [
    hex('34 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00 01 02 00 00 20 00 00 00 02 00 00 00 c4 b3 a2 81 ff ff ff ff 03 00 00 00 56 34 12 c0 ff ff ff ff 01 00 00 00'),
    hex('44 00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00 01 02 00 00 08 00 00 00 00 00 00 00 28 00 11 80 24 00 12 80 18 00 10 00 69 6e 67 72 65 73 73 5f 76 6c 61 6e 5f 66 69 6c 74 65 72 00 08 00 13 00 05 00 00 00'),
  ];
  const decodeAll = (b: Uint8Array) => {
    try {
      for (const m of parseMessages(b)) {
        const g = parseGenl(m);
        decodeAlert(g);
        decodePacketAlert(g);
        try {
          decodeConfig(g);
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
        }
        try {
          decodeStats(g);
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
        }
        try {
          parseError(m);
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
        }
      }
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => decodeAll(b)), { numRuns: RUNS });
  fc.assert(
    fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(80), fc.nat(255)), { maxLength: 8 }), (seed, flips) => {
      const b = Uint8Array.from(seed);
      for (const [at, v] of flips) b[at % b.length] = v;
      decodeAll(b);
    }),
    { numRuns: RUNS },
  );
});
