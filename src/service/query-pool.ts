/**
 * The worker threads that read the recording for the API (query-worker.ts),
 * so that no query, however long, holds up the main thread: its intervals,
 * HTTP, event streams and signals.
 *
 * Bounded three ways, each with its own answer:
 * - at most `workers` threads at once; a thread that was told to stop still
 *   counts until it has exited (a statement stops at the next interval it
 *   visits: recording.ts's checkpoint; better-sqlite3 cannot interrupt one);
 * - at most `queue` questions waiting for a thread; one more is refused at
 *   once (QueryBusyError, with the seconds after which a thread is sure to be
 *   free);
 * - every question has `timeoutMs` from its arrival: still waiting then, it
 *   is refused as busy (it never ran); still running, its thread is
 *   terminated and replaced (QueryTimeoutError). A client therefore always
 *   has its answer within `timeoutMs`.
 *
 * Threads are started when questions come and end after a while idle or
 * after QUESTIONS_PER_THREAD answers; they never keep the process alive.
 */
import { Worker } from 'node:worker_threads';
import { QUERY_WORKER, type WorkerFailure, type WorkerReply, type WorkerRequest } from './query-worker.js';
import type { RecordingAnswer, RecordingQuery } from './recording-queries.js';

export interface PoolLimits {
  /** Threads at once. */
  readonly workers: number;
  /** Questions waiting for a thread. */
  readonly queue: number;
  /** From a question's arrival to its answer. */
  readonly timeoutMs: number;
}

export interface PoolOptions {
  /** An idle thread ends after this (default 30 s). */
  readonly idleMs?: number;
  /** A thread ends after answering this many questions (default 1000); the next question starts a fresh one. */
  readonly questionsPerThread?: number;
  /** The V8 heap of a thread (default 256 MiB): a runaway answer ends its thread, not the service. */
  readonly heapMb?: number;
  /** Tests only: how long a thread holds back its answer to this question. */
  readonly testDelayMs?: (q: RecordingQuery) => number;
}

/** No thread free and no room to wait: ask again after `retryAfterS`. */
export class QueryBusyError extends Error {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

/** The question ran past its time; its thread was stopped. */
export class QueryTimeoutError extends Error {
  constructor(
    readonly timeoutMs: number,
    /** Of that time, how long it waited for a thread. */
    readonly waitedMs = 0,
  ) {
    super(
      waitedMs >= 100
        ? `the query was stopped at its time limit of ${timeoutMs / 1000} s, ${(waitedMs / 1000).toFixed(1)} s of which it waited for a thread; ask again, or for a shorter range`
        : `the query ran longer than ${timeoutMs / 1000} s and was stopped; ask for a shorter range`,
    );
  }
}

/** The thread answered with a failure (the recording cannot be read), or died. */
export class QueryFailedError extends Error {
  constructor(readonly failure: WorkerFailure) {
    super(failure.message);
  }
}

interface Job {
  readonly id: number;
  readonly request: WorkerRequest;
  readonly arrived: number;
  readonly deadline: number;
  /** When a thread took it. */
  started?: number;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (answer: unknown) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  /** Told to stop (timed out, idle, worn, closing): takes no more questions. */
  ending: boolean;
  /** Questions it has answered. */
  answered: number;
  idleTimer: NodeJS.Timeout | undefined;
}

const WORKER_URL = new URL('./query-worker.js', import.meta.url);

/**
 * Questions a thread answers before it is replaced. Under a client asking
 * without pause (the soak: 90 range queries a second), the API process's
 * memory grew 55 MB in 15 minutes while its main heap stayed flat: what the
 * threads gathered. Ended after this many, a thread's start and end (about
 * 90 ms of CPU, `npm run bench:queries`) come once every 11 s at that rate
 * (under 1 % of a core, answers 1.00x as fast as with threads kept), and
 * hardly ever at a dashboard's pace.
 */
const QUESTIONS_PER_THREAD = 1000;

/**
 * For the service's end-to-end tests, which run it as a child process:
 * DROPMON_TEST_SLOW_QUERY=KIND:MS makes every KIND question (points, series,
 * diagnosis) hold its thread MS milliseconds inside its SQL statement, as a
 * query over a large recording does. Unset, nothing is slowed.
 */
export function slowQueryFromEnv(env: NodeJS.ProcessEnv = process.env): ((q: RecordingQuery) => number) | undefined {
  const m = /^(points|series|diagnosis):(\d{1,7})$/.exec(env.DROPMON_TEST_SLOW_QUERY ?? '');
  if (!m) return undefined;
  const [, kind, ms] = m;
  return (q) => (q.kind === kind ? Number(ms) : 0);
}

export class QueryPool {
  private readonly slots = new Set<Slot>();
  private readonly waiting: Job[] = [];
  private nextId = 1;
  private startedThreads = 0;
  private closed = false;
  private readonly testDelayMs: ((q: RecordingQuery) => number) | undefined;

  /** `limits` is read at every question, so a reload's new limits apply at once. */
  constructor(
    private readonly limits: () => PoolLimits,
    private readonly opts: PoolOptions = {},
  ) {
    this.testDelayMs = opts.testDelayMs ?? slowQueryFromEnv();
  }

  /** Threads started so far (a replaced or worn thread counts again). */
  get started(): number {
    return this.startedThreads;
  }

  /** Threads now, running or ending. */
  get threads(): number {
    return this.slots.size;
  }

  /** Ask `query` of the recording in `file`. Rejects with QueryBusyError, QueryTimeoutError or QueryFailedError. */
  ask<Q extends RecordingQuery>(file: string, query: Q): Promise<RecordingAnswer<Q>> {
    if (this.closed) return Promise.reject(new QueryBusyError('the service is stopping', 1));
    const { timeoutMs } = this.limits();
    // Questions that waited go first (there may be room now: a reload can raise the limit).
    this.pump();
    return new Promise<RecordingAnswer<Q>>((resolve, reject) => {
      const id = this.nextId++;
      const now = Date.now();
      const delayMs = this.testDelayMs?.(query) ?? 0;
      const job: Job = {
        id,
        request: { id, file, query, ...(delayMs > 0 ? { delayMs } : {}) },
        arrived: now,
        deadline: now + timeoutMs,
        timer: setTimeout(() => this.expire(job), timeoutMs),
        resolve: resolve as (a: unknown) => void,
        reject,
      };
      if (this.waiting.length === 0 && this.dispatch(job)) return;
      if (this.waiting.length >= this.limits().queue) {
        clearTimeout(job.timer);
        reject(new QueryBusyError(`too many range queries at once (${this.limits().workers} running, ${this.waiting.length} waiting)`, this.retryAfterS()));
        return;
      }
      this.waiting.push(job);
    });
  }

  /** Stop every thread; questions waiting or running are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) this.settle(job, new QueryBusyError('the service is stopping', 1));
    const exits: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      if (slot.job) this.settle(slot.job, new QueryBusyError('the service is stopping', 1));
      slot.job = undefined;
      exits.push(this.end(slot));
    }
    await Promise.all(exits);
  }

  /** Give the job to an idle thread, or to a new one when there is room. */
  private dispatch(job: Job): boolean {
    let slot = [...this.slots].find((s) => !s.ending && !s.job);
    if (!slot) {
      if (this.slots.size >= this.limits().workers) return false;
      slot = this.spawn();
    }
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    slot.job = job;
    job.started = Date.now();
    slot.worker.postMessage(job.request);
    return true;
  }

  private spawn(): Slot {
    const heapMb = this.opts.heapMb ?? 256;
    const worker = new Worker(WORKER_URL, { workerData: { [QUERY_WORKER]: true }, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    worker.unref();
    this.startedThreads++;
    const slot: Slot = { worker, job: undefined, ending: false, answered: 0, idleTimer: undefined };
    this.slots.add(slot);
    worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
    // An uncaught error or an exhausted heap: the thread ends; its question gets the reason.
    worker.on('error', (err) => {
      if (slot.job) this.settle(slot.job, new QueryFailedError({ message: `the query thread failed: ${err.message}` }));
      slot.job = undefined;
      slot.ending = true;
    });
    worker.on('exit', (code) => {
      this.slots.delete(slot);
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      if (slot.job) this.settle(slot.job, new QueryFailedError({ message: `the query thread ended (exit code ${code})` }));
      slot.job = undefined;
      this.pump();
    });
    return slot;
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    const job = slot.job;
    if (!job || job.id !== reply.id) return; // the answer of a question already timed out
    slot.job = undefined;
    if ('failure' in reply) this.settle(job, new QueryFailedError(reply.failure));
    else this.settle(job, undefined, reply.answer);
    // Worn: end it while it is idle, so that what a thread gathers (its V8 heap, grown under load
    // and not given back) never adds up.
    if (++slot.answered >= Math.max(1, this.opts.questionsPerThread ?? QUESTIONS_PER_THREAD)) void this.end(slot);
    this.pump();
    if (!slot.job && !slot.ending) {
      slot.idleTimer = setTimeout(() => void this.end(slot), this.opts.idleMs ?? 30_000);
      slot.idleTimer.unref();
    }
  }

  /** Hand waiting questions to free threads, oldest first. */
  private pump(): void {
    while (this.waiting.length && !this.closed && this.dispatch(this.waiting[0])) this.waiting.shift();
  }

  private expire(job: Job): void {
    const i = this.waiting.indexOf(job);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.settle(job, new QueryBusyError(`no query thread was free within ${this.limits().timeoutMs / 1000} s`, this.retryAfterS()));
      return;
    }
    const slot = [...this.slots].find((s) => s.job === job);
    if (!slot) return;
    slot.job = undefined;
    this.settle(job, new QueryTimeoutError(this.limits().timeoutMs, (job.started ?? job.arrived) - job.arrived));
    void this.end(slot);
  }

  private end(slot: Slot): Promise<number> {
    slot.ending = true;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    return slot.worker.terminate();
  }

  private settle(job: Job, err: Error | undefined, answer?: unknown): void {
    clearTimeout(job.timer);
    if (err) job.reject(err);
    else job.resolve(answer);
  }

  /** Seconds until the running question that ends last is sure to be over (answered or stopped). */
  private retryAfterS(): number {
    const deadlines = [...this.slots].map((s) => s.job?.deadline ?? 0);
    const ms = Math.max(0, ...deadlines) - Date.now();
    return Math.max(1, Math.ceil(ms / 1000));
  }
}
