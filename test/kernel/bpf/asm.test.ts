/**
 * The assembler against known encodings: the `loc` counting program of the
 * research notes (26 instructions, assembled by hand and loaded on Linux
 * 6.18), byte for byte; plus labels, ranges and the encodings of the
 * instructions the drop programs use (the programs themselves:
 * test/sources/bpf/programs.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Asm, AsmError, R0, R1, R2, R3, R4, R6, R7, R10, hexDump } from '../../../src/kernel/bpf/asm.js';

/** The `loc` program from the research notes, map fd 3. */
const LOC_EXPECTED = [
  '79 16 08 00 00 00 00 00',
  '79 17 10 00 00 00 00 00',
  '7b 6a f0 ff 00 00 00 00',
  '63 7a f8 ff 00 00 00 00',
  '62 0a fc ff 00 00 00 00',
  'bf a2 00 00 00 00 00 00',
  '07 02 00 00 f0 ff ff ff',
  '18 11 00 00 03 00 00 00',
  '00 00 00 00 00 00 00 00',
  '85 00 00 00 01 00 00 00',
  '15 00 04 00 00 00 00 00',
  '79 01 00 00 00 00 00 00',
  '07 01 00 00 01 00 00 00',
  '7b 10 00 00 00 00 00 00',
  '05 00 09 00 00 00 00 00',
  '7a 0a e8 ff 01 00 00 00',
  '18 11 00 00 03 00 00 00',
  '00 00 00 00 00 00 00 00',
  'bf a2 00 00 00 00 00 00',
  '07 02 00 00 f0 ff ff ff',
  'bf a3 00 00 00 00 00 00',
  '07 03 00 00 e8 ff ff ff',
  'b7 04 00 00 00 00 00 00',
  '85 00 00 00 02 00 00 00',
  'b7 00 00 00 00 00 00 00',
  '95 00 00 00 00 00 00 00',
];

test('the research notes\' loc program assembles to the same bytes', () => {
  const a = new Asm();
  a.ldx(8, R6, R1, 8).ldx(8, R7, R1, 16);
  a.stx(8, R10, -16, R6).stx(4, R10, -8, R7).st(4, R10, -4, 0);
  a.mov(R2, R10).addImm(R2, -16).ldMapFd(R1, 3).call('map_lookup_elem');
  a.jmpImm('jeq', R0, 0, 'insert');
  a.ldx(8, R1, R0, 0).addImm(R1, 1).stx(8, R0, 0, R1).ja('out');
  a.label('insert');
  a.st(8, R10, -24, 1).ldMapFd(R1, 3).mov(R2, R10).addImm(R2, -16).mov(R3, R10).addImm(R3, -24).movImm(R4, 0).call('map_update_elem');
  a.label('out');
  a.movImm(R0, 0).exit();
  assert.deepEqual(hexDump(a.assemble()), LOC_EXPECTED);
});

test('single encodings: tp_btf loads, 32-bit jumps, byte swap, 64-bit immediates', () => {
  const one = (f: (a: Asm) => Asm) => hexDump(f(new Asm()).assemble());
  // from the research notes' btf program: r2 = *(u32 *)(r9 +224); r3 = *(u64 *)(r9 +264)
  assert.deepEqual(one((a) => a.ldx(4, R2, 9, 224)), ['61 92 e0 00 00 00 00 00']);
  assert.deepEqual(one((a) => a.ldx(8, R3, 9, 264)), ['79 93 08 01 00 00 00 00']);
  assert.deepEqual(one((a) => a.ldx(2, R2, R6, 176)), ['69 62 b0 00 00 00 00 00']);
  assert.deepEqual(one((a) => a.stx(2, R10, -4, R2)), ['6b 2a fc ff 00 00 00 00']);
  assert.deepEqual(one((a) => a.be(R2, 16)), ['dc 02 00 00 10 00 00 00']);
  assert.deepEqual(one((a) => a.call('probe_read_kernel')), ['85 00 00 00 71 00 00 00']);
  assert.deepEqual(one((a) => a.call('ringbuf_reserve')), ['85 00 00 00 83 00 00 00']);
  assert.deepEqual(one((a) => a.alu64Reg('sub', R2, R1)), ['1f 12 00 00 00 00 00 00']);
  // atomic fetch-and-add, 64-bit: *(u64 *)(r7 +0) += r1, r1 = the old value
  assert.deepEqual(one((a) => a.fetchAdd(8, R7, 0, R1)), ['db 17 00 00 01 00 00 00']);
  assert.deepEqual(one((a) => a.ldImm64(R1, 0x1122334455667788n)), ['18 01 00 00 88 77 66 55', '00 00 00 00 44 33 22 11']);
  // jmp32 jne with an inode number above 2^31 (the imm is its 32 bits, signed)
  assert.deepEqual(one((a) => a.label('l').jmp32Imm('jne', R2, 4026531833 | 0, 'l')), ['56 02 ff ff f9 ff ff ef']);
});

test('labels: backward jumps, and errors for undefined or duplicate labels and out-of-range values', () => {
  const a = new Asm().label('top').movImm(R0, 0).jmpImm('jgt', R0, 5, 'top').exit();
  assert.deepEqual(hexDump(a.assemble())[1], '25 00 fe ff 05 00 00 00');
  assert.throws(() => new Asm().ja('nowhere').exit().assemble(), AsmError);
  assert.throws(() => new Asm().label('x').label('x'), AsmError);
  assert.throws(() => new Asm().movImm(R0, 2 ** 31), AsmError);
  assert.throws(() => new Asm().ldx(8, R0, R1, 40000), AsmError);
  assert.throws(() => new Asm().movImm(R0, 0).ja('end').label('end').assemble(), AsmError, 'a label past the last instruction');
});
