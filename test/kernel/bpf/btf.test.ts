/**
 * The BTF parser on blobs written by the test (a miniature of the kernel's
 * types: anonymous unions, bitfields, nested members, the tracepoint
 * typedef), on the live /sys/kernel/btf/vmlinux when present, and fuzzed:
 * truncated or mutated blobs give a ParseError, never another exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { Btf, BtfKind } from '../../../src/kernel/bpf/btf.js';
import { DropmonError, ParseError } from '../../../src/core/errors.js';
import { checkKfreeSkbPrototype, readKernelLayout } from '../../../src/sources/bpf/layout.js';
import { kernelLikeBtf, writeBtf, type TypeSpec } from '../../sources/bpf/btf-writer.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);

test('member offsets through anonymous unions, nested structs and bitfields', () => {
  const btf = Btf.parse(kernelLikeBtf());
  assert.equal(btf.count, 20);
  assert.deepEqual(btf.field('sk_buff', 'dev'), { offset: 16, size: 8, type: 17 });
  assert.equal(btf.field('net_device', 'ifindex').offset, 224);
  assert.equal(btf.field('net_device', 'nd_net.net').offset, 264);
  assert.equal(btf.field('net', 'ns.inum').offset, 176);
  assert.equal(btf.field('sk_buff', 'protocol').size, 2);
  const bf = btf.member('sk_buff', 'pkt_type');
  assert.deepEqual([bf.offset, bf.bitOffset, bf.bitSize], [128, 128 * 8 + 3, 3]);
  assert.throws(() => btf.field('sk_buff', 'pkt_type'), ParseError, 'a bitfield is not a whole member');
  assert.throws(() => btf.member('sk_buff', 'no_such'), /has no member no_such/);
  assert.throws(() => btf.member('no_struct', 'x'), /no struct no_struct/);
  assert.equal(btf.typeName(6), 'struct sk_buff *');
  assert.equal(btf.sizeOf(6), 8);
  assert.deepEqual([...btf.enumValues('skb_drop_reason')].slice(0, 2), [['SKB_NOT_DROPPED_YET', 0], ['SKB_DROP_REASON_NOT_SPECIFIED', 2]]);
});

test('the tracepoint prototype: argument types and names; refused when it is not what the program reads', () => {
  const btf = Btf.parse(kernelLikeBtf());
  const proto = btf.typedefPrototype('btf_trace_kfree_skb');
  assert.equal(proto.id, 16);
  assert.deepEqual(proto.params.map((p) => `${p.typeName} ${p.name}`), ['void * __data', 'struct sk_buff * skb', 'void * location', 'enum skb_drop_reason reason']);
  assert.equal(checkKfreeSkbPrototype(btf).args.length, 3);
  const layout = readKernelLayout(btf);
  assert.equal(layout.tracepointBtfId, 16);
  assert.deepEqual([layout.skbDev.offset, layout.devIfindex.offset, layout.devNet.offset, layout.netInum.offset], [16, 224, 264, 176]);
  assert.deepEqual(layout.skbTail, { offset: 184, size: 4 });

  const old = Btf.parse(kernelLikeBtf({ withReason: false }));
  assert.throws(() => readKernelLayout(old), (e: unknown) => e instanceof DropmonError && /no drop-reason argument/.test(e.message) && /5\.17/.test(e.hint ?? ''));
  const wrong = Btf.parse(kernelLikeBtf({ skbArgType: 'void' }));
  assert.throws(() => readKernelLayout(wrong), /kfree_skb has the prototype \(void \* __data, void \* skb/);
  const none = Btf.parse(writeBtf([{ kind: 'int', name: 'int', size: 4 }]));
  assert.throws(() => readKernelLayout(none), /not described in this kernel's BTF/);
});

test('anonymous members sharing their types: each type walked once per search, not once per path', () => {
  // 16 levels of anonymous structs, each with 4 anonymous members of the
  // next level's type: 4^15 paths to the bottom, 16 types.
  const LEVELS = 16, WIDTH = 4;
  const types: TypeSpec[] = [{ kind: 'int', name: 'int', size: 4 }];
  for (let level = 0; level < LEVELS; level++) {
    const last = level === LEVELS - 1;
    types.push({
      kind: 'struct',
      name: level === 0 ? 'diamonds' : '',
      size: 4 * WIDTH,
      members: last ? [{ name: 'leaf', type: 1, bitOffset: 0 }] : Array.from({ length: WIDTH }, () => ({ name: '', type: 3 + level, bitOffset: 0 })),
    });
  }
  const btf = Btf.parse(writeBtf(types));
  let walked = 0;
  const members = btf.members.bind(btf);
  // Stop a walk that revisits types at once (it would run for hours), rather than count it afterwards.
  btf.members = (id) => {
    if (++walked > 4 * LEVELS) throw new Error(`${walked} member lists read for ${LEVELS} types: the walk revisits types`);
    return members(id);
  };
  assert.throws(() => btf.member('diamonds', 'no_such'), /has no member no_such/);
  assert.ok(walked <= LEVELS, `${walked} member lists read for ${LEVELS} types`);
  walked = 0;
  assert.equal(btf.field('diamonds', 'leaf').offset, 0);
  assert.ok(walked <= LEVELS, `${walked} member lists read`);
});

test('live vmlinux BTF: parsed, the offsets and the prototype found', { skip: existsSync('/sys/kernel/btf/vmlinux') ? false : 'no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)' }, (t) => {
  const t0 = performance.now();
  const btf = Btf.vmlinux();
  const layout = readKernelLayout(btf);
  const ms = performance.now() - t0;
  assert.ok(btf.count > 10_000, `${btf.count} types`);
  // Reported, never judged: speed depends on the machine (npm run bench measures start-up).
  t.diagnostic(`parse + layout in ${ms.toFixed(0)} ms`);
  assert.equal(btf.kind(layout.tracepointBtfId), BtfKind.TYPEDEF);
  assert.equal(layout.args[0].typeName, 'struct sk_buff *');
  assert.equal(layout.skbDev.size, 8);
  assert.equal(layout.devIfindex.size, 4);
  assert.equal(layout.netInum.size, 4);
  assert.ok(btf.enumValues('skb_drop_reason').has('SKB_DROP_REASON_NO_SOCKET'));
});

/** Everything a caller does with a parsed blob; only ParseError/DropmonError may come out. */
function exercise(blob: Uint8Array): void {
  try {
    const btf = Btf.parse(blob);
    for (let id = 1; id < Math.min(btf.count, 40); id++) {
      btf.typeName(id);
      btf.sizeOf(id);
      const k = btf.kind(id);
      if (k === BtfKind.STRUCT || k === BtfKind.UNION) btf.members(id);
    }
    btf.enumValues('skb_drop_reason');
    readKernelLayout(btf);
  } catch (e) {
    if (!(e instanceof ParseError) && !(e instanceof DropmonError)) throw e;
  }
}

test('fuzz: truncated blobs give a ParseError', () => {
  const blob = kernelLikeBtf();
  for (let n = 0; n < blob.length; n++) exercise(blob.subarray(0, n));
});

test('fuzz: mutated blobs give a ParseError or a result, never another exception', () => {
  const blob = kernelLikeBtf();
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(blob.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }), (edits) => {
      const b = Uint8Array.from(blob);
      for (const [at, v] of edits) b[at] = v;
      exercise(b);
    }),
    { numRuns: RUNS },
  );
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => exercise(bytes)), { numRuns: RUNS });
});
