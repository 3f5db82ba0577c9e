/**
 * Netlink sockets for Node, through koffi (a maintained FFI whose npm package
 * ships prebuilt binaries, so nothing is compiled on the user's host).
 *
 * Integration with the event loop without blocking any thread: the socket is
 * non-blocking, receivers drain it with MSG_DONTWAIT on a timer (as the
 * tracefs source does with its ring buffers), and a request waits for its
 * answer with poll() bounded by a short timeout. Nothing ever sleeps in a
 * blocking recv() on the libuv pool, so process.exit() never hangs.
 *
 * Why not the alternatives: the npm `netlink` package (0.3.0) is unmaintained
 * and aborts the process when a multicast subscription overflows; a Node-API
 * addon would need prebuilt binaries for every platform we support, which
 * koffi already provides.
 */
import { readFileSync } from 'node:fs';
import { loadLibc } from '../libc.js';
import { DropmonError } from '../../core/errors.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  encodeMessage,
  parseDone,
  parseError,
  parseMessages,
  type NlError,
  type NlMessage,
} from './message.js';

export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_NO_ENOBUFS = 5;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;

const EINTR = 4, EAGAIN = 11, EPERM = 1, EACCES = 13, ENOBUFS = 105, EPROTONOSUPPORT = 93, EAFNOSUPPORT = 97;

/** errno names for the codes netlink users meet. */
const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL',
  61: 'ENODATA', 93: 'EPROTONOSUPPORT', 95: 'EOPNOTSUPP', 97: 'EAFNOSUPPORT', 105: 'ENOBUFS', 115: 'EINPROGRESS', 524: 'ENOTSUPP',
};
export const errnoName = (n: number): string => ERRNO_NAMES[Math.abs(n)] ?? `errno ${Math.abs(n)}`;

interface NetlinkLibc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  setsockopt(fd: number, level: number, name: number, val: Uint8Array, len: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Int32Array): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  poll(fds: Uint8Array, n: number, timeoutMs: number): number;
  close(fd: number): number;
  errno(): number;
}

let libc: NetlinkLibc | undefined;

function netlinkLibc(): NetlinkLibc {
  if (libc) return libc;
  const { koffi, lib } = loadLibc('netlink');
  const f = (sig: string) => lib.func(sig) as (...args: unknown[]) => number;
  const socket = f('int socket(int, int, int)');
  const bind = f('int bind(int, const uint8_t *, uint32_t)');
  const setsockopt = f('int setsockopt(int, int, int, const uint8_t *, uint32_t)');
  const getsockname = f('int getsockname(int, uint8_t *, _Inout_ int32_t *)');
  const send = f('long send(int, const uint8_t *, size_t, int)');
  const recv = f('long recv(int, uint8_t *, size_t, int)');
  const poll = f('int poll(uint8_t *, unsigned long, int)');
  const close = f('int close(int)');
  libc = {
    socket: (a, b, c) => socket(a, b, c),
    bind: (a, b, c) => bind(a, b, c),
    setsockopt: (a, b, c, d, e) => setsockopt(a, b, c, d, e),
    getsockname: (a, b, c) => getsockname(a, b, c),
    send: (a, b, c, d) => send(a, b, c, d),
    recv: (a, b, c, d) => recv(a, b, c, d),
    poll: (a, b, c) => poll(a, b, c),
    close: (a) => close(a),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** A failed netlink request: errno plus the kernel's extended-ACK message. */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  constructor(
    readonly what: string,
    /** Positive errno. */
    readonly errno: number,
    readonly extack?: string,
  ) {
    super(`${what}: ${errnoName(errno)}${extack ? ` (${extack})` : ''}`);
  }
}

export interface NetlinkSocketOptions {
  /** Multicast groups to join (NETLINK_ADD_MEMBERSHIP). */
  readonly groups?: readonly number[];
  /** Receive buffer in bytes; SO_RCVBUFFORCE first (past rmem_max, needs CAP_NET_ADMIN), else SO_RCVBUF. */
  readonly rcvbuf?: number;
  /** Do not report ENOBUFS (kernel drops silently instead). Off by default: we count losses. */
  readonly noEnobufs?: boolean;
}

export class NetlinkSocket {
  private readonly c: NetlinkLibc;
  private fd: number;
  private seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  /** Our port id (assigned by the kernel at bind). */
  readonly portId: number;
  /** Times the kernel said ENOBUFS: messages were lost because our buffer was full. */
  overruns = 0;
  private readonly rbuf = new Uint8Array(256 * 1024);

  constructor(
    readonly protocol: number,
    opts: NetlinkSocketOptions = {},
  ) {
    this.c = netlinkLibc();
    const fd = this.c.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) {
      const e = this.c.errno();
      throw new DropmonError(
        `cannot open a netlink socket: ${errnoName(e)}`,
        e === EPROTONOSUPPORT || e === EAFNOSUPPORT ? 'this kernel lacks that netlink protocol' : undefined,
      );
    }
    this.fd = fd;
    try {
      const sa = new Uint8Array(12);
      new DataView(sa.buffer).setUint16(0, AF_NETLINK, true);
      if (this.c.bind(fd, sa, 12) < 0) throw new DropmonError(`cannot bind a netlink socket: ${errnoName(this.c.errno())}`);
      const len = Int32Array.of(12);
      this.c.getsockname(fd, sa, len);
      this.portId = new DataView(sa.buffer).getUint32(4, true);
      // Readable errors: the kernel's own message with each failed request, and
      // acks without the request echoed back. Old kernels ignore these: fine.
      this.setInt(SOL_NETLINK, NETLINK_EXT_ACK, 1);
      this.setInt(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      if (opts.noEnobufs) this.setInt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      if (opts.rcvbuf) {
        if (this.setInt(SOL_SOCKET, SO_RCVBUFFORCE, opts.rcvbuf) < 0) this.setInt(SOL_SOCKET, SO_RCVBUF, opts.rcvbuf);
      }
      for (const g of opts.groups ?? []) {
        if (this.setInt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g) < 0) {
          const e = this.c.errno();
          throw new NetlinkError(`joining netlink multicast group ${g}`, e, e === EPERM || e === EACCES ? 'receiving these messages needs CAP_SYS_ADMIN' : undefined);
        }
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private setInt(level: number, name: number, value: number): number {
    return this.c.setsockopt(this.fd, level, name, Uint8Array.from(new Uint8Array(Int32Array.of(value).buffer)), 4);
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) & 0x7fffffff;
    return this.seq;
  }

  send(message: Uint8Array): void {
    for (;;) {
      const n = this.c.send(this.fd, message, message.length, 0);
      if (n === message.length) return;
      const e = this.c.errno();
      if (n < 0 && e === EINTR) continue;
      throw new NetlinkError('netlink send', n < 0 ? e : 0);
    }
  }

  /**
   * One datagram if one is queued, else undefined. The bytes are a view of
   * an internal buffer, valid until the next receive(). ENOBUFS (the kernel had
   * to drop messages for us) is counted in `overruns` and reading goes on.
   */
  receive(): Uint8Array | undefined {
    for (;;) {
      const n = this.c.recv(this.fd, this.rbuf, this.rbuf.length, MSG_DONTWAIT);
      if (n >= 0) return this.rbuf.subarray(0, n);
      const e = this.c.errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) return undefined;
      if (e === ENOBUFS) {
        this.overruns++;
        continue;
      }
      throw new NetlinkError('netlink receive', e);
    }
  }

  /**
   * Messages the kernel dropped for this socket because its buffer was full
   * (the Drops column of /proc/net/netlink): exact, where ENOBUFS only says
   * "some". Undefined when the file cannot be read.
   */
  drops(): number | undefined {
    try {
      for (const line of readFileSync('/proc/net/netlink', 'latin1').split('\n')) {
        const f = line.trim().split(/\s+/);
        // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
        if (f.length >= 10 && Number(f[1]) === this.protocol && Number(f[2]) === this.portId) return Number(f[8]);
      }
    } catch {
      /* not available: callers fall back on ENOBUFS counts */
    }
    return undefined;
  }

  /** Wait until a datagram is queued or `timeoutMs` passed. */
  waitReadable(timeoutMs: number): boolean {
    const pfd = new Uint8Array(8);
    const v = new DataView(pfd.buffer);
    v.setInt32(0, this.fd, true);
    v.setInt16(4, POLLIN, true);
    const r = this.c.poll(pfd, 1, Math.max(0, Math.round(timeoutMs)));
    return r > 0;
  }

  /**
   * The messages answering request `seq`, as they arrive; throws when none
   * of them comes for `timeoutMs`. The caller stops iterating at the end of
   * the answer.
   */
  private *answers(seq: number, what: string, timeoutMs: number): Generator<NlMessage> {
    let deadline = Date.now() + timeoutMs;
    for (;;) {
      const dgram = this.receive();
      if (!dgram) {
        const left = deadline - Date.now();
        if (left <= 0) throw new NetlinkError(`${what}: no answer from the kernel in ${timeoutMs} ms`, 62);
        this.waitReadable(Math.min(left, 100));
        continue;
      }
      // receive() reuses its buffer: keep a copy of what we return
      for (const m of parseMessages(dgram.slice())) {
        if (m.seq !== seq || (m.pid !== 0 && m.pid !== this.portId)) continue; // a multicast or a stale answer
        deadline = Date.now() + timeoutMs; // a long dump is fine as long as it progresses
        yield m;
      }
    }
  }

  /**
   * Send a request and collect its answer: the messages with its sequence
   * number until the ACK. Throws NetlinkError with the kernel's extended-ACK
   * text on a negative answer. Dumps take `dump()`.
   */
  request(type: number, flags: number, payload: Uint8Array, what: string, timeoutMs = 5000): NlMessage[] {
    const seq = this.nextSeq();
    this.send(encodeMessage({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, seq, pid: 0 }, payload));
    const out: NlMessage[] = [];
    for (const m of this.answers(seq, what, timeoutMs)) {
      if (m.type === NLMSG_ERROR) {
        const e: NlError = parseError(m);
        if (e.error !== 0) throw new NetlinkError(what, -e.error, e.message);
        return out;
      }
      if (m.type === NLMSG_DONE) continue; // the ACK follows
      out.push(m);
    }
    return out; // not reached: answers() ends only by throwing
  }

  /**
   * Send a dump request (NLM_F_DUMP) and collect every message of the answer
   * until NLMSG_DONE. The kernel sends no ACK after a dump even when asked
   * (netlink_dump_start), which is why `request()` does not fit. A dump refused
   * before it started comes back as an NLMSG_ERROR, one that failed midway as
   * a negative errno in NLMSG_DONE: both throw NetlinkError. The kernel fills
   * the next part of a dump only when we have read the previous one, so a
   * dump of any size never overflows the socket buffer.
   */
  dump(type: number, payload: Uint8Array, what: string, timeoutMs = 5000): NlMessage[] {
    const seq = this.nextSeq();
    this.send(encodeMessage({ type, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, pid: 0 }, payload));
    const out: NlMessage[] = [];
    for (const m of this.answers(seq, what, timeoutMs)) {
      if (m.type === NLMSG_ERROR) {
        const e: NlError = parseError(m);
        if (e.error !== 0) throw new NetlinkError(what, -e.error, e.message);
        continue;
      }
      if (m.type === NLMSG_DONE) {
        const d = parseDone(m);
        if (d.error < 0) throw new NetlinkError(what, -d.error, d.message);
        return out;
      }
      out.push(m);
    }
    return out; // not reached: answers() ends only by throwing
  }

  close(): void {
    if (this.fd >= 0) {
      this.c.close(this.fd);
      this.fd = -1;
    }
  }
}
