/**
 * The BPF program that counts hardware drops: attached to the
 * devlink_trap_report tracepoint, which devlink_trap_report() fires for each
 * packet a device traps to the CPU, with (devlink, skb, metadata). It counts
 * in a per-CPU hash map under the key (trap name, group name, input ifindex,
 * input network namespace, trap type), read from `struct
 * devlink_trap_metadata` at offsets taken from the kernel's BTF.
 *
 * Same two flavours as the drop program (programs.ts): tp_btf with direct
 * loads checked by the verifier, raw_tp with bpf_probe_read_kernel. The names
 * are copied with bpf_probe_read_kernel_str into zeroed fixed-size slots of the
 * key, so one trap always makes the same key bytes.
 */
import { DropmonError, ParseError } from '../../core/errors.js';
import { Asm, R0, R1, R2, R3, R4, R6, R7, R8, R10, type Reg, type Size } from '../../kernel/bpf/asm.js';
import { BtfKind, type Btf } from '../../kernel/bpf/btf.js';
import { field, type Field } from './layout.js';
import type { ProgramFlavour } from './programs.js';

export const TRAP_TRACEPOINT = 'devlink_trap_report';

/** The key of the trap counts map; every byte is written by the program. */
export const TRAP_KEY = {
  size: 96,
  name: 0, // char[48], NUL-terminated (longer names are cut)
  nameLen: 48,
  group: 48, // char[32]
  groupLen: 32,
  ifindex: 80, // u32, 0 without an input port
  netns: 84, // u32 inode of the input port's namespace
  type: 88, // u32 enum devlink_trap_type
} as const;

/** Per-CPU state: reports not counted because the map was full. */
export const TRAP_STATE = { size: 8, mapFull: 0 } as const;

export interface TrapLayout {
  /** BTF id of the typedef btf_trace_devlink_trap_report (tp_btf attach id). */
  readonly tracepointBtfId: number;
  readonly trapName: Field;
  readonly trapGroup: Field;
  readonly inputDev: Field;
  readonly trapType: Field;
  readonly devIfindex: Field;
  readonly devNet: Field;
  readonly netInum: Field;
}

/**
 * Check the tracepoint's prototype, (void *, const struct devlink *, struct
 * sk_buff *, const struct devlink_trap_metadata *), and read the offsets.
 * Throws a DropmonError saying what this kernel lacks.
 */
export function readTrapLayout(btf: Btf): TrapLayout {
  let proto;
  try {
    proto = btf.typedefPrototype(`btf_trace_${TRAP_TRACEPOINT}`);
  } catch (err) {
    if (err instanceof ParseError)
      throw new DropmonError(
        `BPF source: this kernel has no ${TRAP_TRACEPOINT} tracepoint in its BTF, so it cannot count hardware drops (${err.message})`,
        'the tracepoint needs CONFIG_NET_DEVLINK; without it no source sees devlink trap drops',
      );
    throw err;
  }
  const p = proto.params;
  const isPtrToStruct = (i: number, name: string) => {
    const t = p[i] ? btf.pointee(p[i].type) : undefined;
    return t !== undefined && btf.kind(t) === BtfKind.STRUCT && btf.name(t) === name;
  };
  if (p.length !== 4 || !isPtrToStruct(1, 'devlink') || !isPtrToStruct(2, 'sk_buff') || !isPtrToStruct(3, 'devlink_trap_metadata')) {
    const shown = `(${p.map((x) => x.typeName + (x.name ? ' ' + x.name : '')).join(', ')})`;
    throw new DropmonError(`BPF source: ${TRAP_TRACEPOINT} has the prototype ${shown} in this kernel; expected (void *, struct devlink *, struct sk_buff *, struct devlink_trap_metadata *)`);
  }
  try {
    return {
      tracepointBtfId: proto.id,
      trapName: field(btf, 'devlink_trap_metadata', 'trap_name', 8),
      trapGroup: field(btf, 'devlink_trap_metadata', 'trap_group_name', 8),
      inputDev: field(btf, 'devlink_trap_metadata', 'input_dev', 8),
      trapType: field(btf, 'devlink_trap_metadata', 'trap_type', 4),
      devIfindex: field(btf, 'net_device', 'ifindex', 4),
      devNet: field(btf, 'net_device', 'nd_net.net', 8),
      netInum: field(btf, 'net', 'ns.inum', 4),
    };
  } catch (err) {
    if (err instanceof ParseError) throw new DropmonError(`BPF source: struct devlink_trap_metadata differs from what dropmon reads (${err.message})`);
    throw err;
  }
}

export interface TrapProgramOptions {
  readonly flavour: ProgramFlavour;
  readonly layout: TrapLayout;
  readonly countsMapFd: number;
  readonly stateMapFd: number;
}

// Stack frame: the key at fp-96..fp-1, the insert value at fp-104, a probe_read scratch at fp-112, an array key at fp-120.
const FP_KEY = -TRAP_KEY.size, FP_VALUE = FP_KEY - 8, FP_SCRATCH = FP_KEY - 16, FP_ARRAY_KEY = FP_KEY - 24;

/** Assemble the trap program. Returns its bytes. */
export function trapProgram(o: TrapProgramOptions): Uint8Array {
  const a = new Asm();
  const L = o.layout;
  /** dst = *(size *)(base + field), directly (tp_btf) or through bpf_probe_read_kernel (raw_tp; clobbers r0-r5). */
  const load = (dst: Reg, base: Reg, f: Field, size: Size = f.size) => {
    if (o.flavour === 'tp_btf') {
      a.ldx(size, dst, base, f.offset);
      return;
    }
    a.st(8, R10, FP_SCRATCH, 0);
    a.mov(R1, R10).addImm(R1, FP_SCRATCH).movImm(R2, size).mov(R3, base).addImm(R3, f.offset).call('probe_read_kernel');
    a.ldx(size, dst, R10, FP_SCRATCH);
  };
  /** Copy the string `*(char **)(r6 + f)` into the key at `at`, at most `len` bytes with its NUL. */
  const copyString = (f: Field, at: number, len: number) => {
    load(R3, R6, f);
    a.jmpImm('jeq', R3, 0, `no_string_${at}`);
    a.mov(R1, R10).addImm(R1, FP_KEY + at).movImm(R2, len).call('probe_read_kernel_str');
    a.label(`no_string_${at}`);
  };

  // ctx: [devlink, skb, metadata] (the prototype was checked before assembling).
  a.ldx(8, R6, R1, 16);
  for (let i = 0; i < TRAP_KEY.size; i += 8) a.st(8, R10, FP_KEY + i, 0);
  copyString(L.trapName, TRAP_KEY.name, TRAP_KEY.nameLen);
  copyString(L.trapGroup, TRAP_KEY.group, TRAP_KEY.groupLen);
  load(R2, R6, L.trapType);
  a.stx(4, R10, FP_KEY + TRAP_KEY.type, R2);
  // The input port, when the device said which (and it is a net device).
  load(R7, R6, L.inputDev);
  a.jmpImm('jeq', R7, 0, 'keyed');
  load(R2, R7, L.devIfindex);
  a.stx(4, R10, FP_KEY + TRAP_KEY.ifindex, R2);
  load(R8, R7, L.devNet);
  a.jmpImm('jeq', R8, 0, 'keyed');
  load(R2, R8, L.netInum);
  a.stx(4, R10, FP_KEY + TRAP_KEY.netns, R2);
  a.label('keyed');

  // counts[key] += 1 on this CPU (per-CPU slot: no atomics needed).
  a.ldMapFd(R1, o.countsMapFd).mov(R2, R10).addImm(R2, FP_KEY).call('map_lookup_elem');
  a.jmpImm('jeq', R0, 0, 'insert');
  a.ldx(8, R1, R0, 0).addImm(R1, 1).stx(8, R0, 0, R1);
  a.ja('out');
  a.label('insert');
  a.st(8, R10, FP_VALUE, 1);
  a.ldMapFd(R1, o.countsMapFd).mov(R2, R10).addImm(R2, FP_KEY).mov(R3, R10).addImm(R3, FP_VALUE).movImm(R4, 0).call('map_update_elem');
  a.jmpImm('jeq', R0, 0, 'out');
  // The map is full: count the report where user space will see it.
  a.st(4, R10, FP_ARRAY_KEY, 0);
  a.ldMapFd(R1, o.stateMapFd).mov(R2, R10).addImm(R2, FP_ARRAY_KEY).call('map_lookup_elem');
  a.jmpImm('jeq', R0, 0, 'out');
  a.ldx(8, R1, R0, TRAP_STATE.mapFull).addImm(R1, 1).stx(8, R0, TRAP_STATE.mapFull, R1);
  a.label('out');
  a.movImm(R0, 0).exit();
  return a.assemble();
}
