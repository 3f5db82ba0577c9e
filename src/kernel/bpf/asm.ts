/**
 * A small typed eBPF assembler: enough for dropmon's fixed programs, with
 * labels (forward and backward jumps resolved at assembly), map-fd pseudo
 * loads and helper calls by name. Encoding (include/uapi/linux/bpf.h): each
 * instruction is 8 bytes, `code:u8 dst:4|src:4 off:s16 imm:s32`, little-endian;
 * a 64-bit immediate load takes two slots.
 *
 *   const a = new Asm();
 *   a.ldx(8, R6, R1, 8).stx(8, R10, -16, R6).movImm(R0, 0).exit();
 *   const bytes = a.assemble();
 */

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const R0: Reg = 0, R1: Reg = 1, R2: Reg = 2, R3: Reg = 3, R4: Reg = 4, R5: Reg = 5;
export const R6: Reg = 6, R7: Reg = 7, R8: Reg = 8, R9: Reg = 9;
/** The read-only frame pointer: the stack is [R10-512, R10). */
export const R10: Reg = 10;

/** Access sizes in bytes. */
export type Size = 1 | 2 | 4 | 8;

// instruction classes
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07;
// modes and sources
const MEM = 0x60, ATOMIC = 0xc0, IMM = 0x00, K = 0x00, X = 0x08;
/** imm of a BPF_ATOMIC instruction: the operation, BPF_FETCH (0x01) to get the old value back. */
const ATOMIC_ADD = 0x00, FETCH = 0x01;
const SIZE_BITS: Record<Size, number> = { 4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18 };

export const AluOp = { add: 0x00, sub: 0x10, mul: 0x20, div: 0x30, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70, neg: 0x80, mod: 0x90, xor: 0xa0, mov: 0xb0, arsh: 0xc0 } as const;
export type AluOpName = keyof typeof AluOp;

export const JmpOp = { jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70, jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0 } as const;
export type JmpOpName = keyof typeof JmpOp;

const JA = 0x00, CALL = 0x80, EXIT = 0x90;

/** Helper ids never change once assigned (the UAPI's enum bpf_func_id). */
export const Helper = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  probe_read: 4,
  ktime_get_ns: 5,
  trace_printk: 6,
  get_smp_processor_id: 8,
  get_current_pid_tgid: 14,
  probe_read_kernel: 113,
  probe_read_kernel_str: 115,
  ktime_get_boot_ns: 125,
  ringbuf_output: 130,
  ringbuf_reserve: 131,
  ringbuf_submit: 132,
  ringbuf_discard: 133,
  ringbuf_query: 134,
} as const;
export type HelperName = keyof typeof Helper;

/** src_reg of a 64-bit immediate load whose imm is a map file descriptor. */
export const PSEUDO_MAP_FD = 1;

export class AsmError extends Error {
  override readonly name = 'AsmError';
}

interface Insn {
  code: number;
  dst: Reg;
  src: number;
  off: number;
  imm: number;
  /** Jump target label, resolved by assemble(). */
  target?: string;
}

const isS16 = (n: number) => Number.isInteger(n) && n >= -32768 && n <= 32767;
const isS32 = (n: number) => Number.isInteger(n) && n >= -0x80000000 && n <= 0x7fffffff;

export class Asm {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();

  /** Number of 8-byte slots emitted so far. */
  get length(): number {
    return this.insns.length;
  }

  private emit(code: number, dst: Reg, src: number, off: number, imm: number, target?: string): this {
    if (!isS16(off)) throw new AsmError(`offset ${off} does not fit in 16 bits`);
    if (!isS32(imm)) throw new AsmError(`immediate ${imm} does not fit in 32 bits (use ldImm64)`);
    this.insns.push({ code, dst, src, off, imm, ...(target !== undefined ? { target } : {}) });
    return this;
  }

  /** Mark the position of the next instruction. */
  label(name: string): this {
    if (this.labels.has(name)) throw new AsmError(`label ${name} defined twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  // --- ALU ---
  /** dst op= imm, 64-bit. */
  alu64Imm(op: AluOpName, dst: Reg, imm: number): this {
    return this.emit(ALU64 | AluOp[op] | K, dst, 0, 0, imm);
  }
  /** dst op= src, 64-bit. */
  alu64Reg(op: AluOpName, dst: Reg, src: Reg): this {
    return this.emit(ALU64 | AluOp[op] | X, dst, src, 0, 0);
  }
  /** dst op= imm, 32-bit (the upper half of dst is zeroed). */
  alu32Imm(op: AluOpName, dst: Reg, imm: number): this {
    return this.emit(ALU | AluOp[op] | K, dst, 0, 0, imm);
  }
  alu32Reg(op: AluOpName, dst: Reg, src: Reg): this {
    return this.emit(ALU | AluOp[op] | X, dst, src, 0, 0);
  }
  mov(dst: Reg, src: Reg): this {
    return this.alu64Reg('mov', dst, src);
  }
  movImm(dst: Reg, imm: number): this {
    return this.alu64Imm('mov', dst, imm);
  }
  addImm(dst: Reg, imm: number): this {
    return this.alu64Imm('add', dst, imm);
  }
  /** Byte swap of the low `bits` of dst from big-endian to host order (BPF_END | BPF_TO_BE). */
  be(dst: Reg, bits: 16 | 32 | 64): this {
    return this.emit(ALU | 0xd0 | X, dst, 0, 0, bits);
  }

  // --- memory ---
  /** dst = *(size *)(src + off) */
  ldx(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.emit(LDX | MEM | SIZE_BITS[size], dst, src, off, 0);
  }
  /** *(size *)(dst + off) = src */
  stx(size: Size, dst: Reg, off: number, src: Reg): this {
    return this.emit(STX | MEM | SIZE_BITS[size], dst, src, off, 0);
  }
  /** *(size *)(dst + off) = imm */
  st(size: Size, dst: Reg, off: number, imm: number): this {
    return this.emit(ST | MEM | SIZE_BITS[size], dst, 0, off, imm);
  }
  /**
   * src = atomic fetch-and-add: *(size *)(dst + off) += src, src gets the old
   * value (Linux 5.12+). With BPF_FETCH it is a full memory barrier on every
   * architecture: the stores before it are visible before it, those after it after.
   */
  fetchAdd(size: 4 | 8, dst: Reg, off: number, src: Reg): this {
    return this.emit(STX | ATOMIC | SIZE_BITS[size], dst, src, off, ATOMIC_ADD | FETCH);
  }
  /** dst = a 64-bit constant (two slots). */
  ldImm64(dst: Reg, value: bigint, src = 0): this {
    const v = BigInt.asUintN(64, value);
    this.emit(LD | IMM | SIZE_BITS[8], dst, src, 0, Number(BigInt.asIntN(32, v & 0xffffffffn)));
    return this.emit(0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n)));
  }
  /** dst = the map of file descriptor `fd` (the verifier swaps in the map pointer). */
  ldMapFd(dst: Reg, fd: number): this {
    return this.ldImm64(dst, BigInt(fd), PSEUDO_MAP_FD);
  }

  // --- jumps ---
  ja(target: string): this {
    return this.emit(JMP | JA, 0, 0, 0, 0, target);
  }
  /** if (dst op imm) goto target, 64-bit compare. */
  jmpImm(op: JmpOpName, dst: Reg, imm: number, target: string): this {
    return this.emit(JMP | JmpOp[op] | K, dst, 0, 0, imm, target);
  }
  /** if (dst op src) goto target, 64-bit compare. */
  jmpReg(op: JmpOpName, dst: Reg, src: Reg, target: string): this {
    return this.emit(JMP | JmpOp[op] | X, dst, src, 0, 0, target);
  }
  /** 32-bit compare of the low halves. */
  jmp32Imm(op: JmpOpName, dst: Reg, imm: number, target: string): this {
    return this.emit(JMP32 | JmpOp[op] | K, dst, 0, 0, imm, target);
  }
  call(helper: HelperName | number): this {
    const id = typeof helper === 'number' ? helper : Helper[helper];
    return this.emit(JMP | CALL, 0, 0, 0, id);
  }
  exit(): this {
    return this.emit(JMP | EXIT, 0, 0, 0, 0);
  }

  /** The program as bytes, jumps resolved. */
  assemble(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const v = new DataView(out.buffer);
    this.insns.forEach((ins, i) => {
      let off = ins.off;
      if (ins.target !== undefined) {
        const at = this.labels.get(ins.target);
        if (at === undefined) throw new AsmError(`jump to undefined label ${ins.target} at instruction ${i}`);
        off = at - (i + 1);
        if (!isS16(off)) throw new AsmError(`jump to ${ins.target} from instruction ${i} is out of range`);
        if (at >= this.insns.length) throw new AsmError(`label ${ins.target} is past the last instruction`);
      }
      const o = i * 8;
      v.setUint8(o, ins.code);
      v.setUint8(o + 1, ((ins.src & 0xf) << 4) | (ins.dst & 0xf));
      v.setInt16(o + 2, off, true);
      v.setInt32(o + 4, ins.imm, true);
    });
    return out;
  }
}

/** "79 16 08 00 00 00 00 00" per instruction: for logs and tests. */
export function hexDump(code: Uint8Array): string[] {
  const lines: string[] = [];
  for (let i = 0; i + 8 <= code.length; i += 8) lines.push(Array.from(code.subarray(i, i + 8), (b) => b.toString(16).padStart(2, '0')).join(' '));
  return lines;
}
