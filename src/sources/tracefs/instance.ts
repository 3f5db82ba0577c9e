/**
 * A private tracefs instance (instances/dropmon-PID): its own ring buffers,
 * its own enabled events, so dropmon never touches the top-level buffer or
 * another tool's instance. Removing the directory frees the buffers and
 * disables everything in it; `remove()` is synchronous so it can run from
 * exit and signal handlers. Who owns an instance is written down in
 * /run/dropmon (owner-records.ts), so that a dropmon killed with -9 has its
 * instance reclaimed by the next one (reclaim.ts) and a live one's is left alone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DropmonError, errnoCode } from '../../core/errors.js';
import { INITIAL_PID_NAMESPACE, pidNamespaceInode, selfIdentity } from '../../kernel/process-identity.js';
import { ownerRecords } from '../owner-records.js';
import { tracefsError } from './tracefs.js';

export const INSTANCE_PREFIX = 'dropmon-';

/**
 * The name of this process's instance: dropmon-PID in the initial PID
 * namespace (the usual case), dropmon-PID-pidnsINODE in another one (a
 * container sharing the host's tracefs), where the pid means nothing to the
 * host's dropmons and may equal one of theirs.
 */
export function ownInstanceName(): string {
  const pidns = pidNamespaceInode();
  return pidns === undefined || pidns === INITIAL_PID_NAMESPACE ? `${INSTANCE_PREFIX}${process.pid}` : `${INSTANCE_PREFIX}${process.pid}-pidns${pidns}`;
}

/** The owner an instance's name gives: its pid and that pid's namespace; undefined for a name dropmon did not give. */
export function instanceOwner(name: string): { pid: number; pidns: number } | undefined {
  const m = /^dropmon-(\d+)(?:-pidns(\d+))?$/.exec(name);
  return m ? { pid: Number(m[1]), pidns: m[2] ? Number(m[2]) : INITIAL_PID_NAMESPACE } : undefined;
}

/** Where the owner of instance `name` is recorded (in ownerRecords). */
export function instanceRecord(name: string): string {
  return `tracefs/${name}.owner`;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class TracefsInstance {
  private removed = false;
  private recorded = false;

  private constructor(
    readonly root: string,
    readonly name: string,
    readonly dir: string,
  ) {}

  /** Create instances/NAME. Fails if it exists (a dead dropmon's is reclaimed at start: reclaim.ts). */
  static create(root: string, name: string): TracefsInstance {
    const dir = join(root, 'instances', name);
    try {
      mkdirSync(dir);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST')
        throw new DropmonError(`tracefs instance ${name} already exists`, `remove it if no dropmon runs: rmdir ${dir}`);
      throw tracefsError('create a tracefs instance', dir, err);
    }
    return new TracefsInstance(root, name, dir);
  }

  /**
   * Create this process's own instance (ownInstanceName) and record its owner.
   * Without the record (a read-only /run) the instance is still reclaimed
   * after a kill -9, by the rule that goes by its name (see reclaim.ts).
   */
  static createOwned(root: string): TracefsInstance {
    const inst = TracefsInstance.create(root, ownInstanceName());
    try {
      ownerRecords.write(instanceRecord(inst.name));
      inst.recorded = true;
    } catch {
      /* see above */
    }
    return inst;
  }

  path(rel: string): string {
    return join(this.dir, rel);
  }

  read(rel: string): string {
    return readFileSync(this.path(rel), 'latin1');
  }

  write(rel: string, value: string, action = `write ${rel}`): void {
    try {
      writeFileSync(this.path(rel), value);
    } catch (err) {
      throw tracefsError(action, this.path(rel), err);
    }
  }

  /** Per-CPU buffer size in KiB. */
  setBufferKb(kb: number): void {
    this.write('buffer_size_kb', String(kb), `set the trace buffer to ${kb} KiB per CPU`);
  }

  setOption(option: string, on: boolean): void {
    this.write(`options/${option}`, on ? '1' : '0', `set trace option ${option}`);
  }

  /** Install an in-kernel filter; EINVAL comes back with the kernel's own complaint. */
  setFilter(event: string, expr: string): void {
    const file = this.path(`events/${event}/filter`);
    try {
      writeFileSync(file, expr);
    } catch (err) {
      if (errnoCode(err) === 'EINVAL') {
        let why = '';
        try {
          why = readFileSync(file, 'latin1').trim();
        } catch {
          /* the filter file explains the error on most kernels; keep going without */
        }
        throw new DropmonError(`the kernel rejected the trace filter ${JSON.stringify(expr)}${why ? `: ${why}` : ''}`);
      }
      throw tracefsError('set the trace filter', file, err);
    }
  }

  enableEvent(event: string): void {
    this.write(`events/${event}/enable`, '1', `enable the ${event} event`);
  }

  /** Per-CPU directory names present in the instance ("cpu0", ...). */
  cpus(): number[] {
    return readdirSync(this.path('per_cpu'))
      .filter((n) => /^cpu\d+$/.test(n))
      .map((n) => Number(n.slice(3)))
      .sort((a, b) => a - b);
  }

  /** Disable every event and remove the instance. Idempotent, synchronous, never throws. */
  remove(): boolean {
    if (this.removed) return true;
    this.removed = removeInstanceDir(this.dir);
    if (this.removed && this.recorded) ownerRecords.remove(instanceRecord(this.name), selfIdentity());
    return this.removed;
  }
}

/**
 * Disable all events of an instance and rmdir it. The kernel refuses rmdir
 * with EBUSY while a file of the instance is still open: retry for ~1 s.
 */
export function removeInstanceDir(dir: string): boolean {
  try {
    writeFileSync(join(dir, 'events/enable'), '0');
  } catch {
    /* already gone or not writable: rmdir below tells */
  }
  try {
    writeFileSync(join(dir, 'options/stacktrace'), '0');
  } catch {
    /* option missing on this kernel */
  }
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return true;
      if (errnoCode(err) !== 'EBUSY') return false;
      sleepSync(50);
    }
  }
  return !existsSync(dir);
}
