/**
 * The BPF programs of the BPF drop source, assembled from the kernel's layout.
 *
 * One program on the kfree_skb tracepoint counts each drop in a per-CPU hash
 * map under the key (location, reason, ifindex, netns, protocol), so the cost
 * per drop is one lookup and one add, and user space reads a map whose size
 * depends on the number of drop points, never on the number of drops.
 * Optionally (--packets) it also writes a record of the packet into a ring
 * buffer, at most `packetsPerSecond` per CPU.
 *
 * Two flavours, same logic:
 *   tp_btf  (BPF_PROG_TYPE_TRACING): ctx[0] is a typed sk_buff pointer, and
 *           the verifier checks each direct load against BTF (cheapest);
 *   raw_tp  (BPF_PROG_TYPE_RAW_TRACEPOINT): ctx holds plain numbers, so every
 *           kernel read goes through bpf_probe_read_kernel (the fallback).
 */
import { Asm, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, type Reg, type Size } from '../../kernel/bpf/asm.js';
import type { Field, KernelLayout } from './layout.js';

/** The key of the counts map; every byte is written by the program (padding too). */
export const KEY = {
  size: 24,
  location: 0, // u64
  reason: 8, // u32
  ifindex: 12, // u32
  netns: 16, // u32 (inode numbers are 32-bit)
  protocol: 20, // u16, big-endian as in skb->protocol
} as const;

/** Per-CPU state (one array slot): the source's own counters and the rate limiter's window. */
export const STATE = {
  size: 40,
  mapFull: 0, // drops not counted: the counts map was full
  rateLimited: 8, // packet records not written: over the per-CPU rate
  ringFull: 16, // packet records not written: the ring buffer was full
  windowStart: 24,
  windowCount: 32,
} as const;

/**
 * One CPU's slot: the key of that CPU's last drop and the drops counted under
 * it since it took the slot (its run), not yet in the hash map.
 *
 * Only the program on that CPU writes the slot (it never nests on a CPU).
 * Taking a new key is bracketed by two steps of `seq`: odd while the old run
 * is moved into the hash map and the key changes, even when stable. The hash
 * map's value of this CPU changes only inside such a bracket, so user space,
 * reading the map and then the slot from mapped memory (seq, key, count, seq
 * again), can tell a torn read and never counts a run twice (slots.ts).
 */
export const SLOT = {
  size: 64, // a cache line: CPUs never write the same line
  seq: 0, // u64
  key: 8, // KEY.size bytes, the counts map's key
  count: 32, // u64 drops of the current run
} as const;

/** A packet record in the ring buffer: the key, then timestamp, lengths, bytes. */
export const RECORD = {
  key: 0, // KEY.size bytes, same layout as the counts key
  timestamp: 24, // u64, CLOCK_MONOTONIC ns
  len: 32, // u32 packet length from the header the bytes start at
  captured: 36, // u16 bytes that follow
  flags: 38, // u16: 1 = the bytes start at the MAC header, 0 = at the network header
  data: 40,
} as const;
export const RECORD_HAS_MAC = 1;

export type ProgramFlavour = 'tp_btf' | 'raw_tp';

export interface DropProgramOptions {
  readonly flavour: ProgramFlavour;
  readonly layout: KernelLayout;
  readonly countsMapFd: number;
  readonly stateMapFd: number;
  /** Read the interface and namespace (default); false keys by location, reason and protocol only. */
  readonly attribution?: boolean;
  /** Count only drops in this network namespace (inode number). */
  readonly netns?: number;
  /** Count only drops on this interface index (with netns: of that namespace). */
  readonly ifindex?: number;
  /**
   * The per-CPU slots (an array map of SLOT.size values, one per possible CPU):
   * absent, every drop goes to the hash map directly (the slower program).
   */
  readonly slotsMapFd?: number;
  /**
   * Change a slot's sequence number with fetch-and-add, a full barrier, so that a
   * reader on another CPU sees the slot's stores in order (default). x86-64 keeps
   * stores in order anyway (TSO): plain stores are enough there.
   */
  readonly fencedSlots?: boolean;
  /** Per-packet records: the ring buffer map, bytes per packet, rate per CPU. */
  readonly packets?: { readonly ringMapFd: number; readonly snapLen: number; readonly perSecondPerCpu: number };
}

// Stack frame: key at fp-24..fp-1, the insert value at fp-32, a probe_read scratch at fp-40,
// an array key at fp-48, the key a slot gives back at fp-72..fp-49.
const FP_KEY = -24, FP_VALUE = -32, FP_SCRATCH = -40, FP_ARRAY_KEY = -48, FP_OLD = -72;
/** BPF_RB_NO_WAKEUP: dropmon polls the ring buffer on a timer, so no wake-up per record. */
const RB_NO_WAKEUP = 1;

export function packetRecordSize(snapLen: number): number {
  return (RECORD.data + snapLen + 7) & ~7;
}

/**
 * Assemble the drop program. Returns its bytes.
 *
 * The path of almost every drop: build the key in registers, compare it with
 * this CPU's slot, add one to the slot's count. Only when the key differs
 * from the slot's (the drop point changed on this CPU) is the hash map
 * touched: the slot's run is added to its key in the map, and the slot takes
 * the new key. See SLOT for what user space reads and why it is exact.
 */
export function dropProgram(o: DropProgramOptions): Uint8Array {
  const a = new Asm();
  const L = o.layout;
  const btf = o.flavour === 'tp_btf';
  /** dst = *(size *)(base + field), by a direct load (tp_btf) or through bpf_probe_read_kernel (raw_tp; clobbers r0-r5). */
  const load = (dst: Reg, base: Reg, f: Field, size: Size = f.size) => {
    if (btf) {
      a.ldx(size, dst, base, f.offset);
      return;
    }
    a.st(8, R10, FP_SCRATCH, 0);
    a.mov(R1, R10).addImm(R1, FP_SCRATCH).movImm(R2, size).mov(R3, base).addImm(R3, f.offset).call('probe_read_kernel');
    a.ldx(size, dst, R10, FP_SCRATCH);
  };
  /** state[field] += 1 with the state pointer in `ptr`. */
  const bump = (ptr: Reg, off: number) => a.ldx(8, R1, ptr, off).addImm(R1, 1).stx(8, ptr, off, R1);
  /** r0 = &state (this CPU's slot), or jump to `miss` when the lookup fails. */
  const lookupState = (miss: string) => {
    a.st(4, R10, FP_ARRAY_KEY, 0);
    a.ldMapFd(R1, o.stateMapFd).mov(R2, R10).addImm(R2, FP_ARRAY_KEY).call('map_lookup_elem');
    a.jmpImm('jeq', R0, 0, miss);
  };
  const attribute = o.attribution !== false || o.netns !== undefined || o.ifindex !== undefined;
  const keyToStack = () => a.stx(8, R10, FP_KEY, R7).stx(8, R10, FP_KEY + 8, R8).stx(8, R10, FP_KEY + 16, R9);

  // ctx: [skb, location, reason, ...] (the prototype was checked before assembling).
  // The key ends up as three words in r7, r8, r9, laid out as KEY:
  //   r7 = location, r8 = reason | ifindex << 32, r9 = netns | protocol << 32.
  if (btf) {
    // Direct loads into registers: no stack round trip (a word reloaded from two
    // 4-byte stores would stall store forwarding on every drop).
    a.ldx(8, R6, R1, 0).ldx(8, R7, R1, 8).ldx(8, R8, R1, 16);
    a.alu32Reg('mov', R8, R8); // the reason is 32-bit: zero the upper half
    load(R9, R6, L.skbProtocol);
    a.alu64Imm('lsh', R9, 32);
    if (attribute) {
      load(R2, R6, L.skbDev);
      a.jmpImm('jeq', R2, 0, 'no_dev');
      load(R3, R2, L.devIfindex);
      if (o.ifindex !== undefined) a.jmp32Imm('jne', R3, o.ifindex | 0, 'out');
      a.alu64Imm('lsh', R3, 32).alu64Reg('or', R8, R3);
      load(R2, R2, L.devNet);
      a.ja('have_net');
      a.label('no_dev');
      // No device yet (a packet dropped on its way out): the socket's namespace, if any.
      if (o.ifindex !== undefined) a.ja('out'); // interface index 0 matches no interface
      else if (L.skbSk && L.skNet) {
        load(R2, R6, L.skbSk);
        a.jmpImm('jeq', R2, 0, 'attributed');
        load(R2, R2, L.skNet);
      } else a.ja('attributed');
      a.label('have_net');
      a.jmpImm('jeq', R2, 0, 'attributed');
      load(R3, R2, L.netInum);
      a.alu64Reg('or', R9, R3);
      a.label('attributed');
    }
    if (o.netns !== undefined) a.jmp32Imm('jne', R9, o.netns | 0, 'out');
  } else {
    // Every kernel read is a helper call (clobbering r1-r5): the key is built on the stack.
    a.ldx(8, R6, R1, 0).ldx(8, R7, R1, 8).ldx(8, R8, R1, 16);
    // Zero the whole key first: unwritten padding would split one drop point into many.
    a.st(8, R10, FP_KEY, 0).st(8, R10, FP_KEY + 8, 0).st(8, R10, FP_KEY + 16, 0);
    a.stx(8, R10, FP_KEY + KEY.location, R7).stx(4, R10, FP_KEY + KEY.reason, R8);
    load(R2, R6, L.skbProtocol);
    a.stx(2, R10, FP_KEY + KEY.protocol, R2);
    if (attribute) {
      load(R7, R6, L.skbDev);
      a.jmpImm('jeq', R7, 0, 'no_dev');
      load(R2, R7, L.devIfindex);
      a.stx(4, R10, FP_KEY + KEY.ifindex, R2);
      load(R8, R7, L.devNet);
      a.ja('have_net');
      a.label('no_dev');
      if (L.skbSk && L.skNet) {
        load(R7, R6, L.skbSk);
        a.jmpImm('jeq', R7, 0, 'attributed');
        load(R8, R7, L.skNet);
      } else {
        a.movImm(R8, 0);
      }
      a.label('have_net');
      a.jmpImm('jeq', R8, 0, 'attributed');
      load(R2, R8, L.netInum);
      a.stx(4, R10, FP_KEY + KEY.netns, R2);
      a.label('attributed');
    }
    // Filters, in the kernel: other namespaces' and interfaces' drops cost only these compares.
    if (o.netns !== undefined) a.ldx(4, R2, R10, FP_KEY + KEY.netns).jmp32Imm('jne', R2, o.netns | 0, 'out');
    if (o.ifindex !== undefined) a.ldx(4, R2, R10, FP_KEY + KEY.ifindex).jmp32Imm('jne', R2, o.ifindex | 0, 'out');
    a.ldx(8, R7, R10, FP_KEY).ldx(8, R8, R10, FP_KEY + 8).ldx(8, R9, R10, FP_KEY + 16);
  }

  if (o.slotsMapFd !== undefined) {
    /** slot.seq += 1 with the slot pointer in `ptr`: a fetch-add (full barrier) where stores may be reordered. */
    const seqStep = (ptr: Reg) => {
      if (o.fencedSlots ?? true) a.movImm(R1, 1).fetchAdd(8, ptr, SLOT.seq, R1);
      else a.ldx(8, R1, ptr, SLOT.seq).addImm(R1, 1).stx(8, ptr, SLOT.seq, R1);
    };
    // r0 = this CPU's slot (an array indexed by CPU: user space maps it and reads it without a syscall).
    a.call('get_smp_processor_id').stx(4, R10, FP_ARRAY_KEY, R0);
    a.ldMapFd(R1, o.slotsMapFd).mov(R2, R10).addImm(R2, FP_ARRAY_KEY).call('map_lookup_elem');
    a.jmpImm('jeq', R0, 0, 'direct_from_regs');
    a.ldx(8, R1, R0, SLOT.key).jmpReg('jne', R1, R7, 'slot_miss');
    a.ldx(8, R1, R0, SLOT.key + 8).jmpReg('jne', R1, R8, 'slot_miss');
    a.ldx(8, R1, R0, SLOT.key + 16).jmpReg('jne', R1, R9, 'slot_miss');
    // The same key as this CPU's previous drop: one add, single writer (the program never nests on a CPU).
    a.ldx(8, R1, R0, SLOT.count).addImm(R1, 1).stx(8, R0, SLOT.count, R1);
    if (o.packets && btf) keyToStack();
    a.ja('counted');

    a.label('slot_miss');
    if (btf) keyToStack();
    a.mov(R7, R0); // r7 = slot, r8 = its pending count
    a.ldx(8, R8, R7, SLOT.count);
    a.jmpImm('jeq', R8, 0, 'claim'); // a slot never used (every run counts at least 1)
    seqStep(R7); // odd: the slot and its key's counts in the map are changing
    for (let i = 0; i < KEY.size; i += 8) a.ldx(8, R1, R7, SLOT.key + i).stx(8, R10, FP_OLD + i, R1);
    a.ldMapFd(R1, o.countsMapFd).mov(R2, R10).addImm(R2, FP_OLD).call('map_lookup_elem');
    a.jmpImm('jeq', R0, 0, 'flush_insert');
    a.ldx(8, R1, R0, 0).alu64Reg('add', R1, R8).stx(8, R0, 0, R1);
    a.ja('take_slot');
    a.label('flush_insert');
    a.stx(8, R10, FP_VALUE, R8);
    a.ldMapFd(R1, o.countsMapFd).mov(R2, R10).addImm(R2, FP_OLD).mov(R3, R10).addImm(R3, FP_VALUE).movImm(R4, 0).call('map_update_elem');
    a.jmpImm('jeq', R0, 0, 'take_slot');
    // The map is full: the slot keeps its key and its count (user space keeps seeing
    // them), and this drop is counted without it.
    seqStep(R7);
    a.ja('direct');
    a.label('claim');
    seqStep(R7);
    a.label('take_slot');
    for (let i = 0; i < KEY.size; i += 8) a.ldx(8, R1, R10, FP_KEY + i).stx(8, R7, SLOT.key + i, R1);
    a.st(8, R7, SLOT.count, 1);
    seqStep(R7); // even: stable again
    a.ja('counted');
  }

  a.label('direct_from_regs');
  if (btf) keyToStack();
  a.label('direct');
  // counts[key] += 1 on this CPU: per-CPU slot, and a program never nests on a CPU, so no atomics.
  a.ldMapFd(R1, o.countsMapFd).mov(R2, R10).addImm(R2, FP_KEY).call('map_lookup_elem');
  a.jmpImm('jeq', R0, 0, 'insert');
  bump(R0, 0);
  a.ja('counted');
  a.label('insert');
  // BPF_ANY: if another CPU inserted the key meanwhile, this writes only this CPU's (zero) slot.
  a.st(8, R10, FP_VALUE, 1);
  a.ldMapFd(R1, o.countsMapFd).mov(R2, R10).addImm(R2, FP_KEY).mov(R3, R10).addImm(R3, FP_VALUE).movImm(R4, 0).call('map_update_elem');
  a.jmpImm('jeq', R0, 0, 'counted');
  // The map is full (E2BIG): count the drop where user space will see it.
  lookupState('counted');
  bump(R0, STATE.mapFull);
  a.label('counted');

  if (o.packets) {
    const p = o.packets;
    const recSize = packetRecordSize(p.snapLen);
    lookupState('out');
    a.mov(R7, R0); // r7 = state
    a.call('ktime_get_ns').mov(R8, R0); // r8 = now
    // A one-second window per CPU: at most perSecondPerCpu records in it.
    a.ldx(8, R1, R7, STATE.windowStart).mov(R2, R8).alu64Reg('sub', R2, R1);
    a.jmpImm('jlt', R2, 1_000_000_000, 'in_window');
    a.stx(8, R7, STATE.windowStart, R8).st(8, R7, STATE.windowCount, 0);
    a.label('in_window');
    a.ldx(8, R1, R7, STATE.windowCount).jmpImm('jge', R1, p.perSecondPerCpu, 'rate_limited');
    a.addImm(R1, 1).stx(8, R7, STATE.windowCount, R1);
    a.ldMapFd(R1, p.ringMapFd).movImm(R2, recSize).movImm(R3, 0).call('ringbuf_reserve');
    a.jmpImm('jeq', R0, 0, 'ring_full');
    a.mov(R9, R0); // r9 = record (must be submitted on every path from here)
    for (let i = 0; i < KEY.size; i += 8) a.ldx(8, R1, R10, FP_KEY + i).stx(8, R9, RECORD.key + i, R1);
    a.stx(8, R9, RECORD.timestamp, R8);
    // Start at the MAC header when it is set (0xffff = unset), else at the network header.
    a.st(2, R9, RECORD.flags, RECORD_HAS_MAC);
    load(R8, R6, L.skbMacHeader);
    a.jmpImm('jne', R8, 0xffff, 'have_offset');
    a.st(2, R9, RECORD.flags, 0);
    load(R8, R6, L.skbNetworkHeader);
    a.label('have_offset');
    // Length from that header on: skb->len counts from skb->data, which may be past it.
    load(R7, R6, L.skbData);
    load(R2, R6, L.skbHead);
    a.alu64Reg('sub', R7, R2).alu64Reg('sub', R7, R8);
    load(R1, R6, L.skbLen);
    a.alu64Reg('add', R7, R1);
    a.stx(4, R9, RECORD.len, R7);
    // Bytes to copy: up to skb->tail (the linear data), at most snapLen. r7 keeps it across calls.
    if (L.skbTail) {
      load(R7, R6, L.skbTail);
      a.alu64Reg('sub', R7, R8);
    } else {
      a.movImm(R7, p.snapLen);
    }
    a.jmpImm('jsgt', R7, p.snapLen, 'clamp');
    a.jmpImm('jslt', R7, 1, 'no_bytes');
    a.ja('have_size');
    a.label('clamp');
    a.movImm(R7, p.snapLen);
    a.label('have_size');
    a.stx(2, R9, RECORD.captured, R7);
    load(R3, R6, L.skbHead);
    a.alu64Reg('add', R3, R8);
    a.mov(R1, R9).addImm(R1, RECORD.data).mov(R2, R7).call('probe_read_kernel');
    a.jmpImm('jeq', R0, 0, 'submit');
    a.label('no_bytes');
    a.st(2, R9, RECORD.captured, 0);
    a.label('submit');
    a.mov(R1, R9).movImm(R2, RB_NO_WAKEUP).call('ringbuf_submit');
    a.ja('out');
    a.label('rate_limited');
    bump(R7, STATE.rateLimited);
    a.ja('out');
    a.label('ring_full');
    bump(R7, STATE.ringFull);
  }
  a.label('out');
  a.movImm(R0, 0).exit();
  return a.assemble();
}
