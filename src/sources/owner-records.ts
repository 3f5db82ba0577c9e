/**
 * Who owns what a dropmon changed on the host, written down where the next
 * dropmon looks: /run/dropmon, a tmpfs that goes with the boot as the kernel
 * state it describes does. One small file per owned thing (netdm.owner,
 * tracefs/INSTANCE.owner) holding the owner's identity (pid, start time, PID
 * namespace, boot id), written atomically (a temporary file renamed over it),
 * mode 0600 in a 0700 directory.
 *
 * A record decides whether root stops NET_DM or removes a tracefs instance,
 * so a file someone else could have planted must not count: a record is read
 * only when it and every directory of its path (from /run/dropmon down) are
 * owned by root (or by this process's user), writable by nobody else, and
 * not symlinks.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { selfIdentity, type ProcessIdentity } from '../kernel/process-identity.js';

export const RUN_DIR = '/run/dropmon';

/** More than any record needs: a bigger file is not one of ours. */
const MAX_RECORD_BYTES = 4096;

export interface OwnerRecord {
  readonly owner: ProcessIdentity;
  /** What the owner started, as the reclaimer needs it (e.g. NET_DM's origins). */
  readonly detail: Readonly<Record<string, unknown>>;
}

function trustedOwner(st: Stats): boolean {
  const euid = process.geteuid?.() ?? 0;
  return (st.uid === 0 || st.uid === euid) && (st.mode & 0o022) === 0;
}

function parseIdentity(o: unknown): ProcessIdentity | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  const { pid, start, pidns, boot } = o as Record<string, unknown>;
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(pidns) || typeof boot !== 'string') return undefined;
  return { pid: pid as number, start: start as number, pidns: pidns as number, boot };
}

export function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.start === b.start && a.pidns === b.pidns && a.boot === b.boot;
}

export class OwnerRecords {
  constructor(readonly dir = RUN_DIR) {}

  /** Is every directory from `dir` down to `sub` a real, trusted directory? */
  private trustedDir(sub: string): boolean {
    const parts = sub === '.' ? [] : sub.split('/');
    let path = this.dir;
    for (let i = 0; i <= parts.length; i++) {
      if (i > 0) path = join(path, parts[i - 1]);
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch {
        return false;
      }
      if (!st.isDirectory() || !trustedOwner(st)) return false;
    }
    return true;
  }

  /** Create `dir`/`sub` as 0700 directories (tightening ours when looser); false when they cannot be trusted. */
  private ensureDir(sub: string): boolean {
    const parts = sub === '.' ? [] : sub.split('/');
    let path = this.dir;
    for (let i = 0; i <= parts.length; i++) {
      if (i > 0) path = join(path, parts[i - 1]);
      try {
        mkdirSync(path, { mode: 0o700 });
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const st = lstatSync(path);
      if (!st.isDirectory() || !trustedOwner(st)) return false;
      if ((st.mode & 0o077) !== 0) chmodSync(path, 0o700);
    }
    return true;
  }

  /**
   * Record this process as the owner of `name` (a path under the directory).
   * Throws what went wrong (a read-only /run, say): the caller decides whether that matters.
   */
  write(name: string, detail: Record<string, unknown> = {}): void {
    const owner = selfIdentity();
    if (!owner) throw new Error('cannot tell who this process is (/proc is not readable)');
    if (!this.ensureDir(dirname(name))) throw new Error(`${join(this.dir, dirname(name))} is not a directory of root's alone`);
    const file = join(this.dir, name);
    const tmp = `${file}.${process.pid}.tmp`;
    const text = JSON.stringify({ ...owner, detail }) + '\n';
    try {
      unlinkSync(tmp); // left by a killed process that had our pid
    } catch {
      /* the usual case: none */
    }
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, file);
    } catch (err) {
      unlinkSync(tmp);
      throw err;
    }
  }

  /** The record of `name`; undefined when there is none, or none to trust. */
  read(name: string): OwnerRecord | undefined {
    if (!this.trustedDir(dirname(name))) return undefined;
    let fd: number;
    try {
      fd = openSync(join(this.dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || !trustedOwner(st) || st.size > MAX_RECORD_BYTES) return undefined;
      const buf = Buffer.alloc(MAX_RECORD_BYTES);
      const n = readSync(fd, buf, 0, buf.length, 0);
      const o: unknown = JSON.parse(buf.toString('utf8', 0, n));
      const owner = parseIdentity(o);
      if (!owner) return undefined;
      const detail = (o as { detail?: unknown }).detail;
      return { owner, detail: typeof detail === 'object' && detail !== null ? (detail as Record<string, unknown>) : {} };
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Remove the record of `name`: only if it still names `owner` when given
   * (another dropmon may have taken the thing over since), else whatever it says.
   */
  remove(name: string, owner?: ProcessIdentity): void {
    if (owner) {
      const r = this.read(name);
      if (!r || !sameProcess(r.owner, owner)) return;
    } else if (!this.trustedDir(dirname(name))) return;
    try {
      unlinkSync(join(this.dir, name));
    } catch {
      /* already gone */
    }
  }

  /** The names of the records in a subdirectory (e.g. "tracefs"), as read() takes them. */
  list(sub: string, suffix: string): string[] {
    if (!this.trustedDir(sub)) return [];
    try {
      return readdirSync(join(this.dir, sub))
        .filter((n) => n.endsWith(suffix))
        .map((n) => `${sub}/${n}`);
    } catch {
      return [];
    }
  }
}

/** The records every dropmon of this host reads and writes. */
export const ownerRecords = new OwnerRecords();
