/**
 * Typed wrappers of the bpf(2) commands dropmon uses. Every object (map,
 * program, link) is a file descriptor owned by this process and never pinned:
 * when the process ends, even by SIGKILL, the kernel detaches and frees them.
 *
 * bpf_attr offsets are those of include/uapi/linux/bpf.h; the ABI only grows
 * at the end, and unused trailing bytes are passed as zero.
 */
import { DropmonError } from '../../core/errors.js';
import { NativeMemory, errnoName, loadLibc, sysBpfNumber } from './native.js';

export const BpfCmd = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  PROG_GET_NEXT_ID: 11,
  PROG_GET_FD_BY_ID: 13,
  OBJ_GET_INFO_BY_FD: 15,
  RAW_TRACEPOINT_OPEN: 17,
  BTF_LOAD: 18,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_LOOKUP_BATCH: 24,
  MAP_LOOKUP_AND_DELETE_BATCH: 25,
  LINK_CREATE: 28,
} as const;

export const MapType = { HASH: 1, ARRAY: 2, PERCPU_HASH: 5, PERCPU_ARRAY: 6, RINGBUF: 27 } as const;
export const ProgType = { RAW_TRACEPOINT: 17, TRACING: 26 } as const;
export const AttachType = { TRACE_RAW_TP: 23 } as const;

const ENOENT = 2, EINVAL = 22, ENOSPC = 28, EPERM = 1, EACCES = 13;
const ENOTSUPP = 524, EOPNOTSUPP = 95;

/** A failed bpf() command: the command, its errno, and the verifier's log when there is one. */
export class BpfError extends DropmonError {
  constructor(
    readonly command: string,
    /** Positive errno. */
    readonly errno: number,
    detail?: string,
    hint?: string,
    readonly verifierLog?: string,
  ) {
    super(`bpf ${command}: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`, hint ?? privilegeHint(errno));
  }
}

function privilegeHint(errno: number): string | undefined {
  if (errno === EPERM || errno === EACCES)
    return 'BPF needs root or CAP_BPF + CAP_PERFMON; kernel lockdown or kernel.unprivileged_bpf_disabled can forbid it';
  return undefined;
}

/** Call bpf(cmd, attr, size); returns the non-negative result or throws BpfError. */
export function bpf(cmd: number, attr: NativeMemory, what: string): number {
  const c = loadLibc();
  const r = c.syscall3(sysBpfNumber(), cmd, attr.address, attr.size);
  if (r < 0) throw new BpfError(what, c.errno());
  return r;
}

/** Same as bpf() but returns -errno instead of throwing (expected failures: ENOENT at the end of a walk). */
export function bpfTry(cmd: number, attr: NativeMemory): number {
  const c = loadLibc();
  const r = c.syscall3(sysBpfNumber(), cmd, attr.address, attr.size);
  return r < 0 ? -c.errno() : r;
}

export function closeFd(fd: number): void {
  if (fd >= 0) loadLibc().close(fd);
}

/** Object names: at most 15 characters of [A-Za-z0-9_.]. */
function putName(m: NativeMemory, offset: number, name: string): void {
  if (!/^[A-Za-z0-9_.]{0,15}$/.test(name)) throw new Error(`invalid BPF object name ${JSON.stringify(name)}`);
  m.bytes.set(Buffer.from(name, 'latin1'), offset);
}

export interface MapSpec {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly name: string;
  readonly flags?: number;
}

/** The number of possible CPUs: per-CPU maps return one value slot for each. */
export function possibleCpus(text: string): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-');
    const hi = Number(b ?? a);
    if (!Number.isInteger(hi) || hi < 0) throw new DropmonError(`cannot parse the possible CPUs "${text.trim()}"`);
    n = Math.max(n, hi + 1);
  }
  return n;
}

/** A BPF map held by its file descriptor, with scratch memory for keys and values. */
export class BpfMap {
  /** The map's file descriptor; -1 once closed. */
  fd: number;
  private readonly attr = new NativeMemory(72);
  readonly key: NativeMemory;
  readonly nextKey: NativeMemory;
  readonly value: NativeMemory;
  /** Bytes of one value as the syscalls return it (per-CPU maps: 8-byte rounded, times possible CPUs). */
  readonly valueBytes: number;
  private batchSupported: boolean | undefined;
  private batch?: { keys: NativeMemory; values: NativeMemory; inToken: NativeMemory; outToken: NativeMemory; attr: NativeMemory; n: number };

  constructor(
    readonly spec: MapSpec,
    /** Possible CPUs (for per-CPU maps). */
    readonly cpus = 1,
  ) {
    const a = this.attr;
    a.view.setUint32(0, spec.type, true);
    a.view.setUint32(4, spec.keySize, true);
    a.view.setUint32(8, spec.valueSize, true);
    a.view.setUint32(12, spec.maxEntries, true);
    a.view.setUint32(16, spec.flags ?? 0, true);
    putName(a, 28, spec.name);
    this.fd = bpf(BpfCmd.MAP_CREATE, a, `MAP_CREATE ${spec.name}`);
    const perCpu = spec.type === MapType.PERCPU_HASH || spec.type === MapType.PERCPU_ARRAY;
    this.valueBytes = perCpu ? ((spec.valueSize + 7) & ~7) * cpus : spec.valueSize;
    this.key = new NativeMemory(Math.max(spec.keySize, 8));
    this.nextKey = new NativeMemory(Math.max(spec.keySize, 8));
    this.value = new NativeMemory(Math.max(this.valueBytes, 8));
  }

  private elemAttr(key: NativeMemory | undefined, valueOrNext: NativeMemory | undefined, flags = 0): NativeMemory {
    const a = this.attr.clear();
    a.view.setUint32(0, this.fd, true);
    a.view.setBigUint64(8, key?.address ?? 0n, true);
    a.view.setBigUint64(16, valueOrNext?.address ?? 0n, true);
    a.view.setBigUint64(24, BigInt(flags), true);
    return a;
  }

  /** Look up the key written in `this.key`; the value lands in `this.value`. False when absent. */
  lookup(): boolean {
    const r = bpfTry(BpfCmd.MAP_LOOKUP_ELEM, this.elemAttr(this.key, this.value));
    if (r === -ENOENT) return false;
    if (r < 0) throw new BpfError(`MAP_LOOKUP_ELEM ${this.spec.name}`, -r);
    return true;
  }

  /** Write `this.value` under `this.key`. */
  update(flags = 0): void {
    bpf(BpfCmd.MAP_UPDATE_ELEM, this.elemAttr(this.key, this.value, flags), `MAP_UPDATE_ELEM ${this.spec.name}`);
  }

  /** Delete the key in `this.key`; false when it was absent. */
  delete(): boolean {
    const r = bpfTry(BpfCmd.MAP_DELETE_ELEM, this.elemAttr(this.key, undefined));
    if (r === -ENOENT) return false;
    if (r < 0) throw new BpfError(`MAP_DELETE_ELEM ${this.spec.name}`, -r);
    return true;
  }

  /**
   * Delete the key in `this.key` and return its last value in `this.value`
   * (5.14+ for hash maps); falls back to lookup + delete.
   */
  lookupAndDelete(): boolean {
    const r = bpfTry(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, this.elemAttr(this.key, this.value));
    if (r >= 0) return true;
    if (r === -ENOENT) return false;
    if (r === -EINVAL || r === -ENOTSUPP || r === -EOPNOTSUPP) return this.lookup() ? (this.delete(), true) : false;
    throw new BpfError(`MAP_LOOKUP_AND_DELETE_ELEM ${this.spec.name}`, -r);
  }

  /**
   * Every (key, value) of the map, in batches (MAP_LOOKUP_BATCH, 5.6+) or, where
   * the kernel lacks batches, by GET_NEXT_KEY + LOOKUP. `visit` gets views
   * valid only during the call. With `andDelete` the entries are removed as read.
   */
  forEach(visit: (key: Uint8Array, value: DataView, valueOffset: number) => void, andDelete = false): number {
    if (this.batchSupported !== false) {
      const n = this.forEachBatch(visit, andDelete);
      if (n >= 0) return n;
      this.batchSupported = false;
    }
    return this.forEachByKey(visit, andDelete);
  }

  private forEachBatch(visit: (key: Uint8Array, value: DataView, valueOffset: number) => void, andDelete: boolean): number {
    const n = Math.min(256, Math.max(1, this.spec.maxEntries));
    this.batch ??= {
      keys: new NativeMemory(this.spec.keySize * n),
      values: new NativeMemory(this.valueBytes * n),
      inToken: new NativeMemory(8),
      outToken: new NativeMemory(8),
      attr: new NativeMemory(56),
      n,
    };
    const b = this.batch;
    let total = 0;
    let first = true;
    for (;;) {
      const a = b.attr.clear();
      a.view.setBigUint64(0, first ? 0n : b.inToken.address, true);
      a.view.setBigUint64(8, b.outToken.address, true);
      a.view.setBigUint64(16, b.keys.address, true);
      a.view.setBigUint64(24, b.values.address, true);
      a.view.setUint32(32, b.n, true);
      a.view.setUint32(36, this.fd, true);
      const r = bpfTry(andDelete ? BpfCmd.MAP_LOOKUP_AND_DELETE_BATCH : BpfCmd.MAP_LOOKUP_BATCH, a);
      if (r < 0 && r !== -ENOENT) {
        if (first && (r === -EINVAL || r === -ENOTSUPP || r === -EOPNOTSUPP)) return -1;
        // ENOSPC: a hash bucket holds more keys than one batch; GET_NEXT_KEY walks it.
        if (r === -ENOSPC) return -1;
        throw new BpfError(`MAP_LOOKUP${andDelete ? '_AND_DELETE' : ''}_BATCH ${this.spec.name}`, -r);
      }
      const count = a.view.getUint32(32, true);
      this.batchSupported = true;
      for (let i = 0; i < count; i++) {
        visit(b.keys.bytes.subarray(i * this.spec.keySize, (i + 1) * this.spec.keySize), b.values.view, i * this.valueBytes);
      }
      total += count;
      if (r === -ENOENT) return total;
      b.inToken.bytes.set(b.outToken.bytes.subarray(0, 8));
      first = false;
    }
  }

  private forEachByKey(visit: (key: Uint8Array, value: DataView, valueOffset: number) => void, andDelete: boolean): number {
    const ks = this.spec.keySize;
    const keys: Uint8Array[] = [];
    // Collect the keys first: deleting during a GET_NEXT_KEY walk restarts it.
    // The first call passes no key (NULL): start of the map.
    let prev: NativeMemory | undefined;
    for (let guard = 0; guard <= this.spec.maxEntries; guard++) {
      const r = bpfTry(BpfCmd.MAP_GET_NEXT_KEY, this.elemAttr(prev, this.nextKey));
      if (r === -ENOENT) break;
      if (r < 0) throw new BpfError(`MAP_GET_NEXT_KEY ${this.spec.name}`, -r);
      keys.push(this.nextKey.bytes.slice(0, ks));
      this.key.bytes.set(this.nextKey.bytes.subarray(0, ks));
      prev = this.key;
    }
    let n = 0;
    for (const k of keys) {
      this.key.bytes.set(k);
      if (!(andDelete ? this.lookupAndDelete() : this.lookup())) continue;
      visit(k, this.value.view, 0);
      n++;
    }
    return n;
  }

  close(): void {
    closeFd(this.fd);
    this.fd = -1;
    for (const m of [this.attr, this.key, this.nextKey, this.value]) m.free();
    if (this.batch) for (const m of [this.batch.keys, this.batch.values, this.batch.inToken, this.batch.outToken, this.batch.attr]) m.free();
    this.batch = undefined;
  }
}

export interface ProgSpec {
  readonly type: number;
  readonly insns: Uint8Array;
  readonly name: string;
  readonly license?: string;
  readonly expectedAttachType?: number;
  /** tp_btf: the BTF id of the tracepoint's btf_trace_<name> typedef. */
  readonly attachBtfId?: number;
}

const LOG_SIZE = 1 << 20;

/**
 * Load a program. The first attempt carries no log buffer (the verifier then
 * skips formatting its log, which costs time on every start); only when it
 * fails is it loaded again with log level 1 so the error shows the
 * verifier's own words.
 */
export function loadProgram(spec: ProgSpec): number {
  const code = new NativeMemory(spec.insns.length);
  code.bytes.set(spec.insns);
  const license = NativeMemory.cString(spec.license ?? 'GPL');
  const attr = new NativeMemory(144);
  const fill = (log?: NativeMemory) => {
    const a = attr.clear();
    a.view.setUint32(0, spec.type, true);
    a.view.setUint32(4, spec.insns.length / 8, true);
    a.view.setBigUint64(8, code.address, true);
    a.view.setBigUint64(16, license.address, true);
    if (log) {
      a.view.setUint32(24, 1, true);
      a.view.setUint32(28, log.size, true);
      a.view.setBigUint64(32, log.address, true);
    }
    putName(a, 48, spec.name);
    a.view.setUint32(68, spec.expectedAttachType ?? 0, true);
    a.view.setUint32(108, spec.attachBtfId ?? 0, true);
    return a;
  };
  try {
    const r = bpfTry(BpfCmd.PROG_LOAD, fill());
    if (r >= 0) return r;
    const log = new NativeMemory(LOG_SIZE);
    try {
      const r2 = bpfTry(BpfCmd.PROG_LOAD, fill(log));
      if (r2 >= 0) return r2; // passed the second time (should not happen): fine
      const text = Buffer.from(log.bytes).toString('utf8').replace(/\0[\s\S]*$/, '').trim();
      throw new BpfError(`PROG_LOAD ${spec.name}`, -r2, verifierSummary(text), undefined, text);
    } finally {
      log.free();
    }
  } finally {
    code.free();
    license.free();
    attr.free();
  }
}

/** The verifier's last meaningful line: what it refused. */
export function verifierSummary(log: string): string | undefined {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^(processed \d+ insns|verification time|stack depth|max_states_per_insn|peak_states|mark_read)/.test(lines[i])) continue;
    return `verifier: ${lines[i]}`;
  }
  return undefined;
}

/**
 * Attach a program to a tracepoint. tp_btf programs (name undefined) take the
 * tracepoint from their attach_btf_id; raw_tp programs name it.
 */
export function rawTracepointOpen(progFd: number, name: string | undefined): number {
  const tp = name ? NativeMemory.cString(name) : undefined;
  const a = new NativeMemory(24);
  try {
    a.view.setBigUint64(0, tp?.address ?? 0n, true);
    a.view.setUint32(8, progFd, true);
    return bpf(BpfCmd.RAW_TRACEPOINT_OPEN, a, `RAW_TRACEPOINT_OPEN ${name ?? '(tp_btf)'}`);
  } finally {
    a.free();
    tp?.free();
  }
}

/**
 * BPF_LINK_CREATE with attach type BPF_TRACE_RAW_TP for a tp_btf program
 * (kernels that accept it: 6.10+). Returns -errno when the kernel refuses,
 * so the caller can use RAW_TRACEPOINT_OPEN instead.
 */
export function linkCreateRawTp(progFd: number): number {
  const a = new NativeMemory(64);
  try {
    a.view.setUint32(0, progFd, true);
    a.view.setUint32(8, AttachType.TRACE_RAW_TP, true);
    return bpfTry(BpfCmd.LINK_CREATE, a);
  } finally {
    a.free();
  }
}

/** Attach a tp_btf program: LINK_CREATE where the kernel takes it, else RAW_TRACEPOINT_OPEN. */
export function attachTracing(progFd: number): { fd: number; how: 'link_create' | 'raw_tracepoint_open' } {
  const fd = linkCreateRawTp(progFd);
  if (fd >= 0) return { fd, how: 'link_create' };
  return { fd: rawTracepointOpen(progFd, undefined), how: 'raw_tracepoint_open' };
}

/** Load raw BTF (for maps or programs that need their own types; dropmon's do not). */
export function loadBtf(blob: Uint8Array): number {
  const data = new NativeMemory(blob.length);
  data.bytes.set(blob);
  const a = new NativeMemory(32);
  try {
    a.view.setBigUint64(0, data.address, true);
    a.view.setUint32(16, blob.length, true);
    return bpf(BpfCmd.BTF_LOAD, a, 'BTF_LOAD');
  } finally {
    a.free();
    data.free();
  }
}

export interface ProgInfo {
  readonly id: number;
  readonly type: number;
  readonly name: string;
}

/** Type, id and name of a loaded program, from its fd (bpf_prog_info). */
export function progInfo(fd: number): ProgInfo {
  const info = new NativeMemory(256);
  const a = new NativeMemory(16);
  try {
    a.view.setUint32(0, fd, true);
    a.view.setUint32(4, info.size, true);
    a.view.setBigUint64(8, info.address, true);
    bpf(BpfCmd.OBJ_GET_INFO_BY_FD, a, 'OBJ_GET_INFO_BY_FD');
    const nameBytes = info.bytes.subarray(64, 80);
    const end = nameBytes.indexOf(0);
    return { type: info.view.getUint32(0, true), id: info.view.getUint32(4, true), name: Buffer.from(nameBytes.subarray(0, end < 0 ? 16 : end)).toString('latin1') };
  } finally {
    a.free();
    info.free();
  }
}

/** Every program loaded in the kernel now (BPF_PROG_GET_NEXT_ID; needs CAP_SYS_ADMIN). */
export function listPrograms(): ProgInfo[] {
  const out: ProgInfo[] = [];
  const a = new NativeMemory(16);
  try {
    let id = 0;
    for (;;) {
      a.clear().view.setUint32(0, id, true);
      const r = bpfTry(BpfCmd.PROG_GET_NEXT_ID, a);
      if (r === -ENOENT) break;
      if (r < 0) throw new BpfError('PROG_GET_NEXT_ID', -r);
      id = a.view.getUint32(4, true);
      a.clear().view.setUint32(0, id, true);
      const fd = bpfTry(BpfCmd.PROG_GET_FD_BY_ID, a);
      if (fd < 0) continue; // freed meanwhile
      try {
        out.push(progInfo(fd));
      } finally {
        closeFd(fd);
      }
    }
  } finally {
    a.free();
  }
  return out;
}
