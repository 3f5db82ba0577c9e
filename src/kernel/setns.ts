/**
 * Running a piece of work inside another network namespace.
 *
 * Counters are per network namespace: /proc/net/*, /proc/sys/net/* and every
 * netlink socket show the namespace of the thread that opens them. Instead of
 * re-executing dropmon under `ip netns exec`, the calling thread joins the
 * target namespace with setns(2), does its synchronous reads, and returns to
 * its own namespace. Only synchronous work may run inside: libuv's pool
 * threads stay in the original namespace, so async I/O would read the wrong
 * one. Readers therefore use /proc/thread-self/net, which follows the thread.
 */
import { closeSync, fstatSync, openSync, statSync, statfsSync } from 'node:fs';
import { DropmonError, UsageError } from '../core/errors.js';
import { loadLibc } from './libc.js';
import { CLONE_NEWNET, NETNS_BIND_DIRS, closeNetns, isNetnsName, openNetnsByName, openNetnsOfPid, openNetnsPath, parseNetnsPath, type NetnsHandle } from './netns-handle.js';

export { NETNS_BIND_DIRS };

let setnsFn: ((fd: number, nstype: number) => number) | undefined;

function loadSetns(): (fd: number, nstype: number) => number {
  setnsFn ??= loadLibc('switching network namespaces').lib.func('int setns(int, int)') as (fd: number, nstype: number) => number;
  return setnsFn;
}

/** A network namespace to work in. */
export interface NetnsTarget {
  /** What the user typed, or a name for messages. */
  readonly spec: string;
  /** /run/netns/NAME or /proc/PID/ns/net: what was (or is to be) opened. */
  readonly path: string;
  /** The namespace's inode number (what `ls -iL` and `ip netns identify` show). */
  readonly inode: number;
  /**
   * The namespace held open (netns-handle.ts): setns() takes it, so the
   * namespace stays readable when its name or last process goes away. Without
   * it, `path` is opened at each use and must still be namespace `inode`.
   */
  readonly fd?: number;
}

/**
 * Resolve `--netns NAME|PID|/proc/PID/ns/net`: an `ip netns` name, a process
 * id whose namespace to use, or that process's namespace link (a path in a
 * bind-mount directory counts as its name). Nothing else: an arbitrary path
 * is refused (see netns-handle.ts). The namespace is held open from now on;
 * releaseNetns() lets it go.
 */
export function resolveNetns(spec: string): NetnsTarget {
  const s = spec.trim();
  if (!s) throw new UsageError('--netns needs a namespace name or a process id');
  const label = `--netns ${s}`;
  const h = unpinned(s.includes('/') ? openNetnsPath(s, label) : /^\d+$/.test(s) ? openNetnsOfPid(Number(s), label) : openNetnsByName(s, label));
  return { spec: s, path: h.path, inode: h.inode, fd: h.fd };
}

/**
 * The same namespace held without keeping its bind mount busy: a descriptor
 * opened through /run/netns/NAME pins that mount, and a plain umount of it
 * (by a tool that does not detach) would fail while dropmon runs. The
 * namespace is entered once and reopened from inside (/proc/thread-self/ns/net,
 * nsfs's own mount). Should that fail, the first descriptor is kept.
 */
export function unpinned(h: NetnsHandle): NetnsHandle {
  if (!h.path.startsWith('/') || h.path.startsWith('/proc/')) return h;
  let fd: number;
  try {
    fd = withNetns({ spec: h.path, path: h.path, inode: h.inode, fd: h.fd }, () => openSync('/proc/thread-self/ns/net', 'r'));
  } catch {
    return h;
  }
  if (fstatSync(fd).ino !== h.inode) {
    closeSync(fd);
    return h;
  }
  closeNetns(h);
  return { ...h, fd };
}

/** Let go of a namespace resolveNetns() holds (no-op for one it does not). */
export function releaseNetns(target: NetnsTarget | undefined): void {
  if (target?.fd !== undefined) closeNetns({ fd: target.fd });
}

/** Whether a --netns spec has an accepted form (a name, a number, /proc/PID/ns/net or a bind-mount path). */
export function isNetnsSpec(spec: string): boolean {
  const s = spec.trim();
  return s.includes('/') ? parseNetnsPath(s) !== undefined : /^\d+$/.test(s) || isNetnsName(s);
}

/** statfs f_type of nsfs, the file system of every namespace file. */
const NSFS_MAGIC = 0x6e736673;

/** True when `path` is a namespace file (on nsfs, of any type); false for anything else or when it cannot be read. */
export function isNsfsFile(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** The inode of the calling thread's network namespace. */
export function currentNetnsInode(): number {
  return statSync('/proc/thread-self/ns/net').ino;
}

/**
 * Run `work` with the calling thread inside `target`'s network namespace and
 * return to the original namespace afterwards, even when `work` throws.
 * `work` must be synchronous (see the module comment).
 */
export function withNetns<T>(target: NetnsTarget | undefined, work: () => T): T {
  if (!target || target.inode === currentNetnsInode()) return work();
  const setns = loadSetns();
  let fd: number;
  if (target.fd !== undefined) fd = target.fd;
  else {
    try {
      fd = openNetnsPath(target.path, target.spec, target.inode).fd;
    } catch (err) {
      throw new DropmonError(`cannot open the network namespace ${(err as Error).message}`);
    }
  }
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    if (setns(fd, CLONE_NEWNET) !== 0) {
      const e = loadLibc('switching network namespaces').errno();
      closeSync(home);
      throw new DropmonError(
        `cannot enter the network namespace ${target.spec}: ${e === 1 ? 'permission denied' : e === 22 ? 'not a network namespace' : `errno ${e}`}`,
        e === 1 ? 'entering another namespace needs CAP_SYS_ADMIN: run as root' : undefined,
      );
    }
  } finally {
    if (target.fd === undefined) closeSync(fd);
  }
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: work() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const rc = setns(home, CLONE_NEWNET);
  closeSync(home);
  // Staying in the wrong namespace would silently mislabel everything read later.
  if (rc !== 0) throw new DropmonError(`cannot return to dropmon's own network namespace (errno ${loadLibc('switching network namespaces').errno()})`);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
