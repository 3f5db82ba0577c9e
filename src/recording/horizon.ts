/**
 * The retention horizon: the newest interval end that retention by age
 * counts from ("delete what ended more than max-age before it").
 *
 * Interval times come from the wall clock, which steps: NTP correcting a
 * clock a year off, an RTC reset to 1970 at boot, an operator's `date -s`.
 * Trusting the newest stamp made 10 intervals stamped a year ahead delete
 * three days of intervals. So the horizon:
 *  - ignores ends in the future: later than the trusted time plus one
 *    interval and a slack. The trusted time is the wall clock read when the
 *    recorder opened, moved on by the monotonic clock, which no one steps;
 *  - only moves forward, with the intervals written;
 *  - while the wall clock disagrees with the trusted time by more than the
 *    slack (a step), answers "unknown" and retention by age waits: which of
 *    the two is right is not known yet, and deleting by either could
 *    delete the intervals being recorded now;
 *  - once a step has held for `settleMs`, takes the wall clock as the time
 *    (an RTC corrected by NTP at boot stays corrected): the trusted time is
 *    set anew, and the horizon is looked up again in the file (after a step
 *    backwards it may be earlier: what was written before the step is now
 *    in the future, and ignored like any future stamp).
 * Retention by size does not use the horizon: the file's bound holds
 * whatever the clocks say.
 *
 * The monotonic clock stops while the machine is suspended; a laptop waking
 * up looks like a step and retention by age waits `settleMs` before going on.
 */

/** The two clocks, injectable for tests. */
export interface Clocks {
  /** Wall clock, ms since the epoch. */
  wallMs(): number;
  /** A clock that only moves forward, ms from any origin. */
  monoMs(): number;
}

export const systemClocks: Clocks = { wallMs: () => Date.now(), monoMs: () => performance.now() };

export interface HorizonOptions {
  readonly intervalMs: number;
  readonly clocks?: Clocks;
  /** How far the wall clock may be off the trusted time, and an end past the trusted time, before it counts. Default 60 s. */
  readonly slackMs?: number;
  /** How long a step of the wall clock must hold before it is believed. Default 1 h. */
  readonly settleMs?: number;
  /** The newest end in the recording at or before `ceiling` (the horizon of a file opened again). */
  readonly newestUpTo: (ceiling: number) => number | undefined;
  readonly warn?: (message: string) => void;
}

export const DEFAULT_SLACK_MS = 60_000;
export const DEFAULT_SETTLE_MS = 3_600_000;

export class RetentionHorizon {
  private readonly clocks: Clocks;
  private readonly slackMs: number;
  private readonly settleMs: number;
  private readonly warn: (m: string) => void;
  private anchorWall: number;
  private anchorMono: number;
  private newest: number | undefined;
  /** Monotonic time when the wall clock was first seen off the trusted time, while it is. */
  private stepSince: number | undefined;
  private futureSaid = false;
  /** Intervals whose end was in the future when written (not counted from). */
  futureEnds = 0;

  constructor(private readonly opts: HorizonOptions) {
    this.clocks = opts.clocks ?? systemClocks;
    this.slackMs = opts.slackMs ?? DEFAULT_SLACK_MS;
    this.settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
    this.warn = opts.warn ?? (() => undefined);
    this.anchorWall = this.clocks.wallMs();
    this.anchorMono = this.clocks.monoMs();
    this.newest = opts.newestUpTo(this.ceiling(this.anchorWall));
  }

  private ceiling(trusted: number): number {
    return trusted + this.opts.intervalMs + this.slackMs;
  }

  /**
   * An interval ending at `end` was written: the horizon to apply retention
   * by age from, or undefined while the wall clock is in an unsettled step
   * (or nothing sane was written yet).
   */
  written(end: number): number | undefined {
    const wall = this.clocks.wallMs();
    const mono = this.clocks.monoMs();
    let trusted = this.anchorWall + (mono - this.anchorMono);
    const off = wall - trusted;
    if (Math.abs(off) > this.slackMs) {
      if (this.stepSince === undefined) {
        this.stepSince = mono;
        this.warn(
          `the wall clock moved ${describeStep(off)} against the monotonic clock; retention by age waits until it has held for ${describeDuration(this.settleMs)}, intervals are still recorded`,
        );
      }
      if (mono - this.stepSince < this.settleMs) return undefined;
      this.anchorWall = trusted = wall;
      this.anchorMono = mono;
      this.stepSince = undefined;
      this.newest = this.opts.newestUpTo(this.ceiling(trusted));
      this.warn('the wall clock kept its new time: retention by age goes on from it');
    } else if (this.stepSince !== undefined) {
      this.stepSince = undefined;
      this.warn('the wall clock is back in step: retention by age goes on');
    }
    if (end <= this.ceiling(trusted)) {
      if (this.newest === undefined || end > this.newest) this.newest = end;
    } else {
      this.futureEnds++;
      if (!this.futureSaid)
        this.warn(`an interval ends ${describeStep(end - trusted)} ahead of the clock; retention by age does not count from it (said once)`);
      this.futureSaid = true;
    }
    return this.newest;
  }
}

/** "+1 y 3 d", "-5 min", "+42 s": a signed duration for a message. */
export function describeStep(ms: number): string {
  return (ms < 0 ? '-' : '+') + describeDuration(Math.abs(ms));
}

/** "1 y 3 d", "1 h", "42 s": the two largest units of a duration. */
function describeDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['y', 365 * 86_400],
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
    ['s', 1],
  ] as const) {
    if (s >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)} ${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}
