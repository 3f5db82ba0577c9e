/**
 * The few libc calls the BPF toolkit needs, through koffi (as the netlink
 * sockets do: prebuilt binaries, nothing compiled on the user's host):
 * syscall() for bpf(2), close, mmap/munmap for the ring buffer.
 *
 * The kernel reads bpf_attr and writes answers through raw addresses, so the
 * memory handed to it must not move: `NativeMemory` is a block of C memory
 * (koffi.alloc) with a byte view for JavaScript and its address for the kernel.
 */
import { createRequire } from 'node:module';
import { arch } from 'node:os';
import { DropmonError } from '../../core/errors.js';

type Koffi = typeof import('koffi');

export interface Libc {
  readonly koffi: Koffi;
  /** syscall(nr, a, b, c): three integer arguments passed as 64-bit values. */
  syscall3(nr: number, a: bigint | number, b: bigint | number, c: bigint | number): number;
  close(fd: number): number;
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, length: number): number;
  errno(): number;
}

let libc: Libc | undefined;

/** Syscall numbers differ per architecture; bpf(2) is the only one used here. */
const SYS_BPF: Record<string, number> = { x64: 321, arm64: 280, ia32: 357, arm: 386, riscv64: 280, ppc64: 361, s390x: 351 };

export function sysBpfNumber(): number {
  const nr = SYS_BPF[arch()];
  if (nr === undefined) throw new DropmonError(`the BPF source does not know the bpf() syscall number on ${arch()}`);
  return nr;
}

export function loadLibc(): Libc {
  if (libc) return libc;
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (err) {
    throw new DropmonError(`BPF is unavailable: the koffi module cannot be loaded (${(err as Error).message})`, 'reinstall dropmon: npm ci');
  }
  const lib = koffi.load('libc.so.6');
  // syscall() is variadic in C: declared so, koffi sets up the call as the ABI wants.
  const syscall = lib.func('long syscall(long nr, ...)') as (...args: unknown[]) => number | bigint;
  const close = lib.func('int close(int)') as (fd: number) => number;
  const mmap = lib.func('void *mmap(void *, size_t, int, int, int, long)') as (...a: unknown[]) => unknown;
  const munmap = lib.func('int munmap(void *, size_t)') as (a: unknown, l: number) => number;
  libc = {
    koffi,
    syscall3: (nr, a, b, c) => Number(syscall(nr, 'uint64_t', BigInt(a), 'uint64_t', BigInt(b), 'uint64_t', BigInt(c))),
    close: (fd) => close(fd),
    mmap: (length, prot, flags, fd, offset) => mmap(null, length, prot, flags, fd, offset),
    munmap: (addr, length) => munmap(addr, length),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** A block of C memory: `bytes`/`view` for JavaScript, `address` for the kernel. */
export class NativeMemory {
  readonly address: bigint;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  private ptr: unknown;

  constructor(readonly size: number) {
    const { koffi } = loadLibc();
    this.ptr = koffi.alloc('uint8_t', Math.max(8, size));
    this.address = koffi.address(this.ptr);
    const ab = koffi.view(this.ptr, Math.max(8, size));
    this.bytes = new Uint8Array(ab, 0, size);
    this.view = new DataView(ab, 0, Math.max(8, size));
    this.bytes.fill(0);
  }

  /** Zero every byte (bpf_attr fields the kernel does not know must be zero). */
  clear(): this {
    this.bytes.fill(0);
    return this;
  }

  /** A NUL-terminated copy of `text`. */
  static cString(text: string): NativeMemory {
    const b = Buffer.from(text, 'utf8');
    const m = new NativeMemory(b.length + 1);
    m.bytes.set(b);
    return m;
  }

  free(): void {
    if (this.ptr === undefined) return;
    loadLibc().koffi.free(this.ptr);
    this.ptr = undefined;
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 7: 'E2BIG', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 22: 'EINVAL', 24: 'EMFILE', 28: 'ENOSPC', 38: 'ENOSYS', 95: 'EOPNOTSUPP',
  524: 'ENOTSUPP',
};

export const errnoName = (n: number): string => ERRNO_NAMES[Math.abs(n)] ?? `errno ${Math.abs(n)}`;
