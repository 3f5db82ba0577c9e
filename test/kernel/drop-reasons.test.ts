/**
 * The drop-reason namer over BTF blobs built here (a vmlinux with the core and
 * subsystem enums, the split BTF of the openvswitch and mac80211 modules), and
 * every source's decoding path fed with subsystem values: tracefs ring-buffer
 * pages, BPF map keys, NET_DM packet alerts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Btf, BtfKind } from '../../src/kernel/bpf/btf.js';
import { DropReasons, collectSubsystemNames, moduleCandidates, splitReasonName } from '../../src/kernel/drop-reasons.js';
import { ParseError } from '../../src/core/errors.js';
import { resolveReasons } from '../../src/core/filter.js';
import { DropTally } from '../../src/core/tally.js';
import { PageDecoder, kfreeSkbLayout } from '../../src/sources/tracefs/ringbuffer.js';
import { decodeAlert } from '../../src/sources/netdm/protocol.js';
import { CMD, ATTR } from '../../src/sources/netdm/protocol.js';
import { packetAlertSample } from '../../src/sources/netdm/source.js';
import { BpfDropSource } from '../../src/sources/bpf/source.js';
import { bpfPermissionProblem } from '../../src/sources/bpf/availability.js';
import { KEY } from '../../src/sources/bpf/programs.js';
import { cstring, encodeMessage, parseMessages } from '../../src/kernel/netlink/message.js';
import { genlPayload, parseGenl } from '../../src/kernel/netlink/genl.js';
import { MAC80211_M, MAC80211_U, OVS_REASONS, SUBSYS_6_12, SUBSYS_LATER, dropReasonBtf, writeBtf } from '../sources/bpf/btf-writer.js';
import { kernelLayout, words } from '../helpers/fixtures.js';
import { PageBuilder } from '../helpers/pages.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 300);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A folder laid out like /sys/kernel/btf with the chosen blobs. */
function btfDir(files: Record<string, Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-btf-'));
  dirs.push(dir);
  for (const [name, blob] of Object.entries(files)) writeFileSync(join(dir, name), blob);
  return dir;
}

const OVS = SUBSYS_6_12.OPENVSWITCH << 16;
const U = SUBSYS_6_12.MAC80211_UNUSABLE << 16;
const M = SUBSYS_6_12.MAC80211_MONITOR << 16;

test('split BTF: module type ids continue after vmlinux, its strings resolve in both sections', () => {
  const { vmlinux, openvswitch } = dropReasonBtf();
  const base = Btf.parse(vmlinux);
  assert.equal(base.count, 5);
  const mod = Btf.parse(openvswitch, base);
  assert.equal(mod.firstId, 5);
  assert.equal(mod.count, 7);
  assert.equal(mod.name(5), 'int', "the module's typedef is named with the base's string");
  assert.equal(mod.resolve(5), 1, 'and points at the base type');
  assert.equal(mod.name(1), 'int');
  const e = mod.find(BtfKind.ENUM, 'ovs_drop_reason');
  assert.equal(e, 6);
  assert.equal(mod.find(BtfKind.ENUM, 'skb_drop_reason'), undefined, "find() looks at the module's own types");
  assert.deepEqual(mod.enumerators(6).slice(0, 2), [{ name: '__OVS_DROP_REASON', value: OVS }, { name: 'OVS_DROP_LAST_ACTION', value: OVS + 1 }]);
  assert.deepEqual(mod.enumTypes(), [6]);
  assert.throws(() => mod.enumerators(5), ParseError);
});

test('enumerators: unsigned, signed (kind flag) and 64-bit values', () => {
  const blob = writeBtf([
    { kind: 'enum', name: 'u', size: 4, values: [['BIG', 0xffff0001]] },
    { kind: 'enum', name: 's', size: 4, values: [['NEG', -2]], signed: true },
    { kind: 'enum64', name: 'w', size: 8, values: [['WIDE', 0x1_0000_0002n], ['SMALL', 3n]] },
    { kind: 'enum64', name: 'ws', size: 8, values: [['WNEG', -5n]], signed: true },
  ]);
  const b = Btf.parse(blob);
  assert.deepEqual(b.enumerators(1), [{ name: 'BIG', value: 0xffff0001 }]);
  assert.deepEqual(b.enumerators(2), [{ name: 'NEG', value: -2 }]);
  assert.deepEqual(b.enumerators(3), [{ name: 'WIDE', value: 0x1_0000_0002 }, { name: 'SMALL', value: 3 }]);
  assert.deepEqual(b.enumerators(4), [{ name: 'WNEG', value: -5 }]);
  assert.deepEqual(b.enumTypes((n) => n.startsWith('w')), [3, 4]);
});

test('names: core, openvswitch, mac80211 (both subsystems, the code-0 base names), bounds left out', () => {
  const dir = btfDir(dropReasonBtf());
  const r = new DropReasons({ btfDir: dir });
  assert.equal(r.name(3), 'NO_SOCKET');
  assert.equal(r.name(4), '', 'SKB_DROP_REASON_MAX is no reason');
  assert.equal(r.name(77), '', 'an unknown core value stays unnamed, as before');
  OVS_REASONS.forEach((n, i) => assert.equal(r.name(OVS + 1 + i), `OPENVSWITCH/${n}`));
  assert.equal(r.name(OVS), 'OPENVSWITCH/code 0', '__OVS_DROP_REASON is the enum base, not a reason');
  assert.equal(r.name(OVS + 1 + OVS_REASONS.length), `OPENVSWITCH/code ${1 + OVS_REASONS.length}`, 'OVS_DROP_MAX is a bound');
  assert.equal(r.name(U), 'MAC80211_UNUSABLE/RX_DROP_UNUSABLE', 'the base value named from the ___ twin enum');
  MAC80211_U.forEach((n, i) => assert.equal(r.name(U + 1 + i), `MAC80211_UNUSABLE/${n}`));
  assert.equal(r.name(M), 'MAC80211_MONITOR/RX_DROP_MONITOR');
  MAC80211_M.forEach((n, i) => assert.equal(r.name(M + 1 + i), `MAC80211_MONITOR/${n}`));
  assert.equal(r.name(9 << 16 | 4), 'subsys 9 code 4', 'a subsystem this kernel does not name');
  assert.equal(r.name(0xffffffff), 'subsys 65535 code 65535');
  assert.deepEqual(splitReasonName('OPENVSWITCH/OVS_DROP_METER'), { subsys: 'OPENVSWITCH', reason: 'OVS_DROP_METER' });
  assert.equal(splitReasonName('NO_SOCKET'), undefined);
});

test('names follow the running kernel\'s numbering (later kernels moved OPENVSWITCH to 2)', () => {
  const later = dropReasonBtf(SUBSYS_LATER);
  const r = new DropReasons({ btfDir: btfDir(later) });
  assert.equal(r.name((2 << 16) | 1), 'OPENVSWITCH/OVS_DROP_LAST_ACTION');
  assert.equal(r.name((3 << 16) | 1), 'QDISC/code 1', 'QDISC is named; its enum is not in this BTF');
  assert.equal(r.name((1 << 16) | 1), 'MAC80211_UNUSABLE/RX_DROP_U_MIC_FAIL');
});

test('the core table of the tracefs format wins over BTF; no BTF at all gives numbers', () => {
  const dir = btfDir(dropReasonBtf());
  const r = new DropReasons({ btfDir: dir, core: new Map([[3, 'NO_SOCKET'], [5, 'ONLY_IN_FORMAT']]) });
  assert.equal(r.name(5), 'ONLY_IN_FORMAT');
  assert.equal(r.name(OVS + 1), 'OPENVSWITCH/OVS_DROP_LAST_ACTION');
  const none = new DropReasons({ btfDir: join(dir, 'absent') });
  assert.equal(none.name(3), '');
  assert.equal(none.name(OVS + 1), 'subsys 3 code 1');
  assert.equal(none.netdmName('OVS_DROP_LAST_ACTION'), 'OVS_DROP_LAST_ACTION');
  assert.equal(none.table().size, 0);
});

test('a module loaded later: looked up again when its values show up, at most once per interval', () => {
  const blobs = dropReasonBtf();
  const dir = btfDir({ vmlinux: blobs.vmlinux });
  let now = 0;
  const r = new DropReasons({ btfDir: dir, now: () => now, retryMs: 10_000 });
  assert.equal(r.name(OVS + 1), 'OPENVSWITCH/code 1');
  writeFileSync(join(dir, 'openvswitch'), blobs.openvswitch);
  now = 5_000;
  assert.equal(r.name(OVS + 1), 'OPENVSWITCH/code 1', 'not before the retry interval');
  now = 10_000;
  assert.equal(r.name(OVS + 1), 'OPENVSWITCH/OVS_DROP_LAST_ACTION');
  unlinkSync(join(dir, 'openvswitch'));
  now = 50_000;
  assert.equal(r.name(OVS + 2), 'OPENVSWITCH/OVS_DROP_ACTION_ERROR', 'names once read are kept');
});

test('NET_DM strings map onto the same names; --reason accepts both spellings', () => {
  const r = new DropReasons({ btfDir: btfDir(dropReasonBtf()) });
  assert.equal(r.netdmName('NO_SOCKET'), 'NO_SOCKET');
  assert.equal(r.netdmName('OVS_DROP_LAST_ACTION'), 'OPENVSWITCH/OVS_DROP_LAST_ACTION');
  assert.equal(r.netdmName('RX_DROP_U_REPLAY'), 'MAC80211_UNUSABLE/RX_DROP_U_REPLAY');
  assert.equal(r.netdmName('RX_DROP_MONITOR'), 'MAC80211_MONITOR/RX_DROP_MONITOR');
  assert.equal(r.netdmName('SOMETHING_NEW'), 'SOMETHING_NEW', 'unknown strings pass through');
  assert.equal(r.netdmName(''), '');
  const table = r.table();
  assert.equal(table.get(OVS + 1), 'OPENVSWITCH/OVS_DROP_LAST_ACTION');
  assert.equal(table.get(3), 'NO_SOCKET');
  assert.deepEqual(resolveReasons(['openvswitch/ovs_drop_last_action', 'OVS_DROP_METER', 'no_socket'], table), [OVS + 1, OVS + 5, 3]);
  assert.throws(() => resolveReasons(['OVS_DROP_NOPE'], table), /unknown drop reason/);
});

test('module candidates: lower-case names, trailing words dropped, nothing that is not a plain name', () => {
  assert.deepEqual(moduleCandidates('OPENVSWITCH'), ['openvswitch']);
  assert.deepEqual(moduleCandidates('MAC80211_UNUSABLE'), ['mac80211_unusable', 'mac80211']);
  assert.deepEqual(moduleCandidates('../ETC'), []);
  assert.deepEqual(moduleCandidates('VMLINUX'), []);
});

test('tracefs path: ring-buffer pages with subsystem values decode to SUBSYS/REASON names', () => {
  const L = kernelLayout('6.18');
  const core = L.kfree.symbolic.get('reason')!;
  const names = new DropReasons({ core, btfDir: btfDir(dropReasonBtf()) });
  const tally = new DropTally((v) => names.name(v));
  const kfree = kfreeSkbLayout(L.kfree);
  const dec = new PageDecoder(L.page, L.header, kfree, tally);
  const f = (n: string) => L.kfree.fields.get(n)!;
  const slots = { id: L.kfree.id, locationOffset: f('location').offset, protocolOffset: f('protocol').offset, reasonOffset: f('reason').offset, size: f('reason').offset + 4 };
  const page = new PageBuilder(4096, L.page.dataOffset);
  const noSocket = [...core].find(([, n]) => n === 'NO_SOCKET')![0];
  for (let i = 0; i < 5; i++) page.drop(slots, { location: 0xffffffffc0a01234n, reason: OVS + 1, protocol: 0x0800 });
  page.drop(slots, { location: 0xffffffffc0a05678n, reason: U + 2, protocol: 0x0800 });
  page.drop(slots, { location: 0xffffffff81000000n, reason: noSocket, protocol: 0x0800 });
  const buf = page.build();
  dec.decode(words(buf), 0, buf.length);
  const got = new Map(tally.take().map((s) => [s.reasonName, s.count]));
  assert.deepEqual(got, new Map([['OPENVSWITCH/OVS_DROP_LAST_ACTION', 5], ['MAC80211_UNUSABLE/RX_DROP_U_REPLAY', 1], ['NO_SOCKET', 1]]));
});

const bpfSkip = bpfPermissionProblem() ?? (existsSync('/sys/kernel/btf/vmlinux') ? false : 'no /sys/kernel/btf/vmlinux');
test('BPF path: counts-map keys with subsystem values are named like the others', { skip: bpfSkip }, () => {
  const names = new DropReasons({ btfDir: btfDir(dropReasonBtf()) });
  const src = new BpfDropSource({ reasons: names }); // nothing is loaded before start()
  const key = new DataView(new ArrayBuffer(KEY.size));
  key.setBigUint64(KEY.location, 0xffffffffc0a01234n, true);
  key.setUint32(KEY.reason, OVS + 3, true);
  key.setUint16(KEY.protocol, 0x0800, false);
  const s = src.sample(key, 7);
  assert.equal(s.reasonName, 'OPENVSWITCH/OVS_DROP_EXPLICIT');
  assert.equal(s.reason, OVS + 3);
  assert.equal(s.count, 7);
});

test('NET_DM path: a packet alert carrying a subsystem\'s string is named SUBSYS/REASON', () => {
  const names = new DropReasons({ btfDir: btfDir(dropReasonBtf()) });
  const pc = new Uint8Array(8);
  new DataView(pc.buffer).setBigUint64(0, 0xffffffffc0a01234n, true);
  const alert = (reason: string) => {
    const msg = encodeMessage({ type: 0x1c, flags: 0, seq: 0, pid: 0 }, genlPayload(CMD.PACKET_ALERT, 2, [{ type: ATTR.PC, value: pc }, { type: ATTR.REASON, value: cstring(reason) }]));
    const a = decodeAlert(parseGenl(parseMessages(msg)[0]));
    assert.equal(a?.kind, 'packet');
    return packetAlertSample(a as Extract<typeof a, { kind: 'packet' }>, undefined, names);
  };
  assert.equal(alert('OVS_DROP_LAST_ACTION').reasonName, 'OPENVSWITCH/OVS_DROP_LAST_ACTION');
  assert.equal(alert('NO_SOCKET').reasonName, 'NO_SOCKET');
});

test('fuzz: hostile vmlinux and module blobs never throw out of the namer', () => {
  const blobs = dropReasonBtf();
  const mutate = (blob: Uint8Array, edits: Array<[number, number]>) => {
    const b = Uint8Array.from(blob);
    for (const [at, v] of edits) b[at % b.length] = v;
    return b;
  };
  const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 10 });
  const values = fc.array(fc.oneof(fc.nat(0xffffffff), fc.integer({ min: 0, max: 4 }).map((s) => (s << 16) | 1)), { minLength: 1, maxLength: 8 });
  fc.assert(
    fc.property(edits, edits, values, fc.boolean(), (ev, em, vs, truncate) => {
      const vm = mutate(blobs.vmlinux, ev);
      const mod = mutate(blobs.openvswitch, em);
      const dir = btfDir({ vmlinux: vm, openvswitch: truncate ? mod.subarray(0, mod.length >> 1) : mod, mac80211: blobs.mac80211 });
      const r = new DropReasons({ btfDir: dir });
      for (const v of vs) assert.equal(typeof r.name(v), 'string');
      assert.equal(typeof r.netdmName('OVS_DROP_LAST_ACTION'), 'string');
      r.table();
      rmSync(dir, { recursive: true, force: true });
    }),
    { numRuns: Math.max(20, RUNS >> 2) },
  );
});

test('fuzz: enum parsing of mutated split blobs gives a result or a ParseError', () => {
  const { vmlinux, mac80211 } = dropReasonBtf();
  const base = Btf.parse(vmlinux);
  const exercise = (blob: Uint8Array) => {
    try {
      const b = Btf.parse(blob, base);
      for (const id of b.enumTypes()) b.enumerators(id);
      for (let s = 0; s < 5; s++) collectSubsystemNames(b, s, new Map());
      b.enumValues('mac80211_drop_reason');
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
    }
  };
  for (let n = 0; n < mac80211.length; n++) exercise(mac80211.subarray(0, n));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(mac80211.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }), (edits) => {
      const b = Uint8Array.from(mac80211);
      for (const [at, v] of edits) b[at] = v;
      exercise(b);
    }),
    { numRuns: RUNS },
  );
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (bytes) => exercise(bytes)), { numRuns: RUNS });
});
