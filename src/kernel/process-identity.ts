/**
 * A process, unmistakably. A pid names a process only inside one PID
 * namespace, and only until the pid is reused; with the process's start time
 * (/proc/PID/stat field 22, in clock ticks since boot: a reused pid has
 * another), its PID namespace's inode and the boot id, it names one process
 * for good. dropmon writes its own identity down next to what it changes on
 * the host (a tracefs instance, NET_DM monitoring), so that a later dropmon
 * can tell whether the owner still runs.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { errnoCode } from '../core/errors.js';

/** The inode of the initial PID namespace: a constant of the kernel (PROC_PID_INIT_INO). */
export const INITIAL_PID_NAMESPACE = 0xeffffffc;

export interface ProcessIdentity {
  readonly pid: number;
  /** Start time in clock ticks since boot, as /proc/PID/stat gives it. */
  readonly start: number;
  /** Inode of the process's PID namespace. */
  readonly pidns: number;
  /** /proc/sys/kernel/random/boot_id: pids and start times mean something within one boot only. */
  readonly boot: string;
}

/**
 * The start time of process `pid` of this /proc, undefined when there is no
 * such process, or only its exit status waiting to be collected (a zombie:
 * it holds nothing any more). Other failures (a /proc that hides processes)
 * throw: they do not say the process is gone.
 */
export function processStart(pid: number, proc = '/proc'): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`${proc}/${pid}/stat`, 'latin1');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
  // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so
  // count from the last ')'. The field after it is field 3 (state); start time is 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const start = Number(fields[22 - 3]);
  if (!Number.isSafeInteger(start)) throw new Error(`unexpected ${proc}/${pid}/stat: ${JSON.stringify(stat.slice(0, 80))}`);
  return start;
}

/** Inode of the PID namespace of `pid` (default: this process), from the pid:[INODE] link. */
export function pidNamespaceInode(pid: number | 'self' = 'self', proc = '/proc'): number | undefined {
  try {
    const m = /^pid:\[(\d+)\]$/.exec(readlinkSync(`${proc}/${pid}/ns/pid`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim() || undefined;
  } catch {
    return undefined;
  }
}

let self: ProcessIdentity | null | undefined;

/** This process's identity; undefined without a usable /proc. */
export function selfIdentity(): ProcessIdentity | undefined {
  if (self === undefined) {
    try {
      const start = processStart(process.pid);
      const pidns = pidNamespaceInode();
      const boot = bootId();
      self = start !== undefined && pidns !== undefined && boot !== undefined ? { pid: process.pid, start, pidns, boot } : null;
    } catch {
      self = null;
    }
  }
  return self ?? undefined;
}

/**
 * Does this /proc show the pids of our own PID namespace? A /proc mounted for
 * another namespace (a container given the host's) lists other processes
 * under the same numbers.
 */
export function procShowsOwnPids(): boolean {
  try {
    return readlinkSync('/proc/self') === String(process.pid);
  } catch {
    return false;
  }
}

export type Liveness = 'alive' | 'dead' | 'unknown';

/**
 * Is `owner` still running, as `me` can tell? Dead: recorded in an earlier
 * boot, or its pid is gone or now belongs to a process that started at
 * another time. Unknown: it lives (or lived) in a PID namespace whose pids
 * this process cannot look up, or /proc would not say.
 */
export function liveness(owner: ProcessIdentity, me: ProcessIdentity): Liveness {
  if (owner.boot !== me.boot) return 'dead';
  if (owner.pidns !== me.pidns || !procShowsOwnPids()) return 'unknown';
  try {
    const start = processStart(owner.pid);
    return start === owner.start ? 'alive' : 'dead';
  } catch {
    return 'unknown';
  }
}
