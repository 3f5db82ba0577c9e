/**
 * Opening a network namespace by handle, never by an arbitrary path.
 *
 * dropmon runs as root, and a namespace spec can come from a person or from
 * the service's API: opening whatever path it names would let it stat any
 * file, hang on a FIFO, or enter some other file system object. So a
 * namespace is opened only as
 *   - an `ip netns` (or Docker sandbox) name: NAME in one of the bind-mount
 *     directories, opened O_RDONLY|O_NONBLOCK|O_NOFOLLOW after lstat said it
 *     is a regular file on nsfs (a FIFO, a symbolic link, a device or the
 *     empty file of an unmounted name is refused without being opened);
 *   - a process id: /proc/PID/ns/net, built from the number alone. It is a
 *     magic link, so it is followed, but nothing else on the way is.
 * Either way the descriptor is then checked to be on nsfs (fstat's device
 * against /proc/self/ns/net's) and to be a network namespace (NS_GET_NSTYPE),
 * and its inode is recorded. Holding the descriptor keeps the namespace
 * alive and readable after its name or its last process is gone, and a pid
 * reused later can never make it another namespace.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, statSync, type Stats } from 'node:fs';
import { UsageError } from '../core/errors.js';
import { loadLibc } from './libc.js';

export const CLONE_NEWNET = 0x40000000;

/** Directories where `ip netns` and Docker keep namespace bind mounts. */
export const NETNS_BIND_DIRS = ['/run/netns', '/var/run/netns', '/var/run/docker/netns', '/run/docker/netns'];

/** A network namespace held open: the descriptor setns() takes, and the namespace's inode. */
export interface NetnsHandle {
  readonly fd: number;
  readonly inode: number;
  /** What was opened, for messages: "/run/netns/blue", "/proc/812/ns/net". */
  readonly path: string;
}

/** Why a namespace could not be opened; `hint` says what to do instead, when there is something. */
export class NetnsOpenError extends UsageError {
  constructor(
    message: string,
    hint?: string,
    /** Nothing by that name or pid exists (as opposed to something that is not a namespace). */
    readonly missing = false,
  ) {
    super(message, hint);
  }
}

const OPEN_NAME = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;
const OPEN_PID = constants.O_RDONLY | constants.O_NONBLOCK;

let nsfsDevice: number | undefined;

/** The device number of nsfs, where every namespace file lives (stat follows /proc/self/ns/net to it). */
export function nsfsDev(): number {
  return (nsfsDevice ??= statSync('/proc/self/ns/net').dev);
}

/** An `ip netns` name: one path component, not "." or "..", no NUL. */
export function isNetnsName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name !== '.' && name !== '..' && !/[/\0]/.test(name);
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** Why a file that lstat or fstat describes is not a namespace file, or undefined when it may be one. */
function fileProblem(st: Stats): { what: string; hint?: string } | undefined {
  if (st.isSymbolicLink()) return { what: 'a symbolic link' };
  if (st.isFIFO()) return { what: 'a FIFO' };
  if (st.isDirectory()) return { what: 'a directory' };
  if (st.isSocket()) return { what: 'a socket' };
  if (st.isCharacterDevice() || st.isBlockDevice()) return { what: 'a device' };
  if (!st.isFile()) return { what: 'not a regular file' };
  if (st.dev !== nsfsDev())
    return {
      // `ip netns add` creates an empty file and bind-mounts the namespace on it. In a mount
      // namespace that does not receive the host's mounts only the empty file is seen.
      what: 'an ordinary file: no namespace is mounted on it in the mount namespace dropmon runs in',
      hint: 'run dropmon where the namespace bind mounts are visible (share /run/netns with mount propagation: rslave, HostToContainer), or give the PID of a process in the namespace',
    };
  return undefined;
}

/** ioctl NS_GET_NSTYPE (_IO(0xb7, 0x3), Linux 4.11): the CLONE_NEW* type of a namespace descriptor. */
const NS_GET_NSTYPE = 0xb703;
let nsIoctl: ((fd: number, request: number) => number) | undefined;

/** The CLONE_NEW* type of namespace descriptor `fd`, or undefined when the kernel cannot say (before 4.11). */
function namespaceType(fd: number): number | undefined {
  try {
    // ioctl() is variadic: declared so, called with no optional argument.
    nsIoctl ??= loadLibc('reading a namespace type').lib.func('int ioctl(int, unsigned long, ...)') as (fd: number, request: number) => number;
    const type = nsIoctl(fd, NS_GET_NSTYPE);
    return type >= 0 ? type : undefined;
  } catch {
    return undefined;
  }
}

/** Check an open descriptor and take it as a handle; closes it and throws when it is no network namespace. */
function adopt(fd: number, path: string, label: string): NetnsHandle {
  try {
    const st = fstatSync(fd);
    const problem = fileProblem(st);
    if (problem) throw new NetnsOpenError(`${label}: ${path} is not a network namespace (${problem.what})`, problem.hint);
    const type = namespaceType(fd);
    if (type !== undefined && type !== CLONE_NEWNET) throw new NetnsOpenError(`${label}: ${path} is not a network namespace (a namespace of another type)`);
    return { fd, inode: st.ino, path };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Open namespace NAME from the bind-mount directories (the first that has
 * it). `label` starts messages ("--netns blue"). Throws NetnsOpenError.
 */
export function openNetnsByName(name: string, label = name, dirs: readonly string[] = NETNS_BIND_DIRS): NetnsHandle {
  if (!isNetnsName(name)) throw new NetnsOpenError(`${label}: ${JSON.stringify(name)} is not a namespace name`);
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    // Refused before opening: a FIFO would block a plain open, a device open has effects.
    const problem = fileProblem(st);
    if (problem) throw new NetnsOpenError(`${label}: ${path} is not a network namespace (${problem.what})`, problem.hint);
    let fd: number;
    try {
      fd = openSync(path, OPEN_NAME);
    } catch (err) {
      if (code(err) === 'ENOENT') continue;
      throw new NetnsOpenError(`${label}: cannot open ${path} (${code(err) === 'ELOOP' ? 'a symbolic link' : code(err)})`);
    }
    return adopt(fd, path, label);
  }
  throw new NetnsOpenError(`${label}: no namespace named ${name} (ip netns list shows the names)`, undefined, true);
}

/** Open the network namespace of process `pid` (/proc/PID/ns/net). Throws NetnsOpenError. */
export function openNetnsOfPid(pid: number, label = String(pid), proc = '/proc'): NetnsHandle {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new NetnsOpenError(`${label}: ${pid} is not a process id`);
  const path = `${proc}/${pid}/ns/net`;
  let fd: number;
  try {
    fd = openSync(path, OPEN_PID);
  } catch (err) {
    const c = code(err);
    if (c === 'ENOENT' || c === 'ESRCH') throw new NetnsOpenError(`${label}: no process ${pid}`, undefined, true);
    throw new NetnsOpenError(`${label}: cannot open ${path} (${c === 'EACCES' || c === 'EPERM' ? 'permission denied: run as root' : c})`);
  }
  return adopt(fd, path, label);
}

/** The parts of a namespace path dropmon accepts: /proc/PID/ns/net, or DIR/NAME with DIR a bind-mount directory. */
export function parseNetnsPath(path: string): { pid: number } | { name: string; dir: string } | undefined {
  const proc = /^\/proc\/(\d+)\/ns\/net$/.exec(path);
  if (proc) return { pid: Number(proc[1]) };
  if (path === '/proc/self/ns/net' || path === '/proc/thread-self/ns/net') return { pid: process.pid };
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash);
  const name = path.slice(slash + 1);
  return NETNS_BIND_DIRS.includes(dir) && isNetnsName(name) ? { name, dir } : undefined;
}

/**
 * Open a namespace path of the accepted kinds (see parseNetnsPath), checking
 * that it is still namespace `inode` when one is given. Throws NetnsOpenError.
 */
export function openNetnsPath(path: string, label = path, inode?: number): NetnsHandle {
  const p = parseNetnsPath(path);
  if (!p) throw new NetnsOpenError(`${label}: ${path} is neither an ip netns name nor /proc/PID/ns/net`, 'give an ip netns name, a process id or /proc/PID/ns/net');
  const h = 'pid' in p ? openNetnsOfPid(p.pid, label) : openNetnsByName(p.name, label, [p.dir]);
  if (inode !== undefined && h.inode !== inode) {
    closeSync(h.fd);
    // A name re-created or a pid reused since: that is another namespace now.
    throw new NetnsOpenError(`${label}: ${path} is another namespace now (inode ${h.inode}, not ${inode})`, undefined, true);
  }
  return h;
}

/** Let a handle go (its namespace may then disappear). */
export function closeNetns(h: Pick<NetnsHandle, 'fd'>): void {
  try {
    closeSync(h.fd);
  } catch {
    /* already closed */
  }
}
