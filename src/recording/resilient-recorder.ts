/**
 * A recorder that never costs monitoring, for the service: whatever is wrong
 * with the recording file, intervals keep flowing through the pipeline.
 *
 *  - Storage trouble (disk full, read-only, no permission, locked, I/O
 *    errors), at start or later: intervals are dropped and counted; opening
 *    is tried again at every interval, one warning says why and another when
 *    recording resumed (the count goes into the recording, like a gap of the
 *    Recorder itself).
 *  - A file that cannot be a recording (not a database, damaged, another
 *    program's database or one holding objects dropmon does not write, an
 *    earlier version whose migration fails), found at opening or as a damaged
 *    page while writing: it is moved aside to FILE.broken-<time> (with its
 *    -wal, -shm and -journal, which belong to it and would be replayed into a
 *    new file), one warning says so, `onReset` counts it, and a new recording
 *    starts at FILE. Nothing is deleted.
 *  - A recording of a newer dropmon (a schema version this one does not
 *    know): left as it is. Moving it aside would hide that dropmon's data
 *    from it, and writing it would damage it. One warning; this run records
 *    nothing; monitoring goes on.
 * A file that breaks again and again (MAX_RESETS times) is left alone too:
 * something beyond the file is wrong, and a pile of broken copies would fill
 * the disk.
 *
 * `dropmon record` uses the plain Recorder: a person at a terminal is better
 * served by a clear error than by a file moved behind their back.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { shareWithGroup } from './group-read.js';
import { dirname } from 'node:path';
import type { DropSample } from '../core/drop.js';
import type { IntervalReport } from '../core/interval.js';
import type { IntervalOutput, PacketOutput } from '../core/pipeline.js';
import { systemClocks } from './horizon.js';
import { Recorder, type RecorderInput, type RecorderOptions, type RecorderStats } from './recorder.js';
import { RecordingError, type RecordingFault } from './schema.js';

/** Why a recording was moved aside: the label values of the service's reset counter (a fixed set). */
export type ResetCause = 'not_a_database' | 'corrupt' | 'foreign' | 'unmigratable';
export const RESET_CAUSES: readonly ResetCause[] = ['not_a_database', 'corrupt', 'foreign', 'unmigratable'];

/** Resets per recorder at most; past that, recording stops for this run. */
export const MAX_RESETS = 3;

export interface ResilientRecorderOptions extends Omit<RecorderOptions, 'append' | 'unwrittenBefore'> {
  /** A broken recording was moved to `movedTo` and a new one started. */
  readonly onReset?: (cause: ResetCause, movedTo: string) => void;
  /** A group that may read the file (the service's API process), set on every file this opens. */
  readonly readerGroup?: number;
}

/** What the recorder does now. */
export type RecordingState = 'recording' | 'waiting' | 'off';

const EMPTY: RecorderStats = { intervals: 0, intervalsWritten: 0, intervalsUnwritten: 0, intervalsExpired: 0, drops: 0, lost: 0, databaseBytes: 0 };

export class ResilientRecorder implements IntervalOutput, PacketOutput {
  private recorder: Recorder | undefined;
  private state_: RecordingState = 'waiting';
  /** Stats of recorders closed after a reset, summed. */
  private retired: RecorderStats = EMPTY;
  /** Intervals not written while no recorder was open, not yet handed to one. */
  private gap = 0;
  /** The warning of the current failure to open was given. */
  private waitingSaid = false;
  private resets = 0;
  private closed = false;

  /** Opens FILE at once when it can; never throws for anything about the file. */
  constructor(
    readonly file: string,
    private readonly opts: ResilientRecorderOptions,
  ) {
    this.open();
  }

  get state(): RecordingState {
    return this.state_;
  }

  get stats(): RecorderStats {
    const r = this.recorder?.stats ?? EMPTY;
    const t = this.retired;
    return {
      intervals: r.intervals,
      intervalsWritten: t.intervalsWritten + r.intervalsWritten,
      intervalsUnwritten: t.intervalsUnwritten + r.intervalsUnwritten + this.gap,
      intervalsExpired: t.intervalsExpired + r.intervalsExpired,
      drops: t.drops + r.drops,
      lost: t.lost + r.lost,
      databaseBytes: r.databaseBytes,
    };
  }

  interval(report: IntervalReport): void {
    this.record({ interval: report });
  }

  packets(samples: readonly DropSample[]): void {
    this.recorder?.packets(samples);
  }

  record(input: RecorderInput): void {
    if (this.closed || this.state_ === 'off') return;
    if (!this.recorder) this.open();
    if (!this.recorder) {
      this.gap++;
      return;
    }
    this.recorder.record(input);
    const code = this.recorder.failingCode;
    // A damaged page found while writing: the file will not get better.
    if (code === 'SQLITE_NOTADB' || code?.startsWith('SQLITE_CORRUPT')) {
      const r = this.recorder;
      this.retire();
      this.reset(code === 'SQLITE_NOTADB' ? 'not_a_database' : 'corrupt', `${r.file} is damaged (${code} while writing)`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.recorder?.close();
  }

  private warn(message: string): void {
    this.opts.warn?.(message);
  }

  private open(): void {
    try {
      mkdirSync(dirname(this.file), { recursive: true });
    } catch {
      /* the recorder says what is wrong */
    }
    let err: unknown;
    try {
      const { onReset: _onReset, readerGroup: _readerGroup, ...options } = this.opts;
      this.recorder = new Recorder(this.file, { ...options, append: true, unwrittenBefore: this.gap });
    } catch (e) {
      err = e;
    }
    if (this.recorder) {
      if (this.opts.readerGroup !== undefined) shareWithGroup(this.file, this.opts.readerGroup);
      if (this.waitingSaid) this.warn(`recording to ${this.file} resumed; ${this.gap} interval(s) could not be written`);
      this.gap = 0;
      this.waitingSaid = false;
      this.state_ = 'recording';
      return;
    }
    const fault: RecordingFault = err instanceof RecordingError ? err.fault : 'storage';
    const message = err instanceof Error ? err.message : String(err);
    switch (fault) {
      case 'newer':
        this.state_ = 'off';
        this.warn(
          `${message}: it is left as it is (moving it aside would hide a newer dropmon's data from it); monitoring goes on without recording. Record to another file (recording.file) or use the newer dropmon`,
        );
        return;
      case 'not_a_database':
      case 'corrupt':
      case 'foreign':
      case 'unmigratable':
        this.reset(fault, message);
        return;
      default:
        this.state_ = 'waiting';
        if (!this.waitingSaid) this.warn(`${message}; monitoring goes on, intervals are dropped and counted until the recording can be opened`);
        this.waitingSaid = true;
    }
  }

  /** Move a broken FILE aside and start a new recording in its place. */
  private reset(cause: ResetCause, why: string): void {
    if (this.resets >= MAX_RESETS) {
      this.state_ = 'off';
      this.warn(`${why}; the recording broke ${this.resets} times already: it is left as it is and this run records nothing, monitoring goes on`);
      return;
    }
    let movedTo: string;
    try {
      movedTo = this.moveAside();
    } catch (err) {
      this.state_ = 'waiting';
      if (!this.waitingSaid)
        this.warn(`${why}; it cannot be moved aside (${(err as Error).message}); monitoring goes on, intervals are dropped and counted until it can`);
      this.waitingSaid = true;
      return;
    }
    this.resets++;
    this.warn(`${why}; moved it to ${movedTo} and started a new recording`);
    this.opts.onReset?.(cause, movedTo);
    this.open();
  }

  /** Rename FILE and the journal files that belong to it; returns the new name. */
  private moveAside(): string {
    const stamp = new Date((this.opts.clocks ?? systemClocks).wallMs()).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
    let target = `${this.file}.broken-${stamp}`;
    for (let n = 2; existsSync(target); n++) target = `${this.file}.broken-${stamp}-${n}`;
    renameSync(this.file, target);
    for (const suffix of ['-wal', '-shm', '-journal']) if (existsSync(this.file + suffix)) renameSync(this.file + suffix, target + suffix);
    return target;
  }

  /** Close the current recorder after a failure, keeping its counts. */
  private retire(): void {
    const r = this.recorder;
    if (!r) return;
    const s = r.stats;
    const t = this.retired;
    this.retired = {
      intervals: 0,
      intervalsWritten: t.intervalsWritten + s.intervalsWritten,
      intervalsUnwritten: t.intervalsUnwritten + s.intervalsUnwritten,
      intervalsExpired: t.intervalsExpired + s.intervalsExpired,
      drops: t.drops + s.drops,
      lost: t.lost + s.lost,
      databaseBytes: 0,
    };
    this.recorder = undefined;
    r.close();
  }
}
