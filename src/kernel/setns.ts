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
import { closeSync, openSync, readlinkSync, statSync, statfsSync } from 'node:fs';
import { DropmonError, UsageError } from '../core/errors.js';
import { loadLibc } from './libc.js';

const CLONE_NEWNET = 0x40000000;

let setnsFn: ((fd: number, nstype: number) => number) | undefined;

function loadSetns(): (fd: number, nstype: number) => number {
  setnsFn ??= loadLibc('switching network namespaces').lib.func('int setns(int, int)') as (fd: number, nstype: number) => number;
  return setnsFn;
}

/** A network namespace the user named, resolved to a file that setns() accepts. */
export interface NetnsTarget {
  /** What the user typed, for messages. */
  readonly spec: string;
  /** /run/netns/NAME, /proc/PID/ns/net, or the path given. */
  readonly path: string;
  /** The namespace's inode number (what `ls -iL` and `ip netns identify` show). */
  readonly inode: number;
}

/** Directories where `ip netns` and Docker keep namespace bind mounts. */
export const NETNS_BIND_DIRS = ['/run/netns', '/var/run/netns', '/var/run/docker/netns', '/run/docker/netns'];

/**
 * Resolve `--netns NAME|PID|PATH`: an `ip netns` name, a process id whose
 * namespace to use, or a path to a namespace file (bind mount or /proc/PID/ns/net).
 */
export function resolveNetns(spec: string): NetnsTarget {
  const s = spec.trim();
  if (!s) throw new UsageError('--netns needs a namespace name, a process id or a path');
  const candidates: string[] = [];
  if (s.includes('/')) candidates.push(s);
  else if (/^\d+$/.test(s)) candidates.push(`/proc/${s}/ns/net`);
  else for (const d of NETNS_BIND_DIRS) candidates.push(`${d}/${s}`);
  for (const path of candidates) {
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    // The inode is what the BPF source filters on in the kernel: it must be the
    // namespace's own, never that of some other file at the path.
    const problem = netnsFileProblem(path);
    if (problem) throw new UsageError(`--netns ${s}: ${path} is not a network namespace (${problem.what})`, problem.hint);
    return { spec: s, path, inode: st.ino };
  }
  const what = /^\d+$/.test(s) ? `no process ${s}` : s.includes('/') ? `no file ${s}` : `no namespace named ${s} (ip netns list shows the names)`;
  throw new UsageError(`--netns ${s}: ${what}`);
}

/** statfs f_type of nsfs, the file system of every namespace file. */
const NSFS_MAGIC = 0x6e736673;
/** ioctl NS_GET_NSTYPE (_IO(0xb7, 0x3), Linux 4.11): the CLONE_NEW* type of a namespace file. */
const NS_GET_NSTYPE = 0xb703;

/** True when `path` is a namespace file (on nsfs, of any type); false for anything else or when it cannot be read. */
export function isNsfsFile(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Why `path` does not refer to a network namespace, or undefined when it does.
 *
 * `ip netns add` creates an empty file and bind-mounts the namespace on it. In
 * a mount namespace that does not receive the host's mounts (a container or
 * service started before the namespace, a volume without mount propagation)
 * only the empty file is seen: its inode is an ordinary file's, which no
 * network namespace has, so a filter on it would match no drop, silently.
 */
function netnsFileProblem(path: string): { what: string; hint?: string } | undefined {
  if (path.startsWith('/proc/')) {
    // /proc/PID/ns/net is a magic link "net:[4026531840]".
    let link = '';
    try {
      link = readlinkSync(path);
    } catch {
      /* not a link */
    }
    return link.startsWith('net:[') ? undefined : { what: link ? `it refers to ${link}` : 'not a namespace link' };
  }
  if (!isNsfsFile(path))
    return {
      what: 'an ordinary file: no namespace is mounted on it in the mount namespace dropmon runs in',
      hint: 'run dropmon where the namespace bind mounts are visible (share /run/netns with mount propagation: rslave, HostToContainer), or give the PID of a process in the namespace',
    };
  const type = namespaceType(path);
  if (type !== undefined && type !== CLONE_NEWNET) return { what: 'a namespace of another type' };
  return undefined;
}

/** The CLONE_NEW* type of the namespace file `path`, or undefined when the kernel cannot say (before 4.11). */
function namespaceType(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined; // setns() will say why, when a reader enters it
  }
  try {
    const libc = loadLibc('reading a namespace type');
    // ioctl() is variadic: declared so, called with no optional argument.
    nsIoctl ??= libc.lib.func('int ioctl(int, unsigned long, ...)') as (fd: number, request: number) => number;
    const type = nsIoctl(fd, NS_GET_NSTYPE);
    return type >= 0 ? type : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
let nsIoctl: ((fd: number, request: number) => number) | undefined;

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
  const home = openSync('/proc/thread-self/ns/net', 'r');
  let fd: number;
  try {
    fd = openSync(target.path, 'r');
  } catch (err) {
    closeSync(home);
    throw new DropmonError(`cannot open the network namespace ${target.spec} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
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
    closeSync(fd);
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
