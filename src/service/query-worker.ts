/**
 * The thread that reads the recording for the API (query-pool.ts starts it):
 * a query of several seconds over a large recording runs here, while the main
 * thread keeps closing intervals and answering HTTP. better-sqlite3 blocks
 * the thread it runs on, so the main thread never runs these queries.
 *
 * Each question opens the recording read-only and closes it at once
 * (recording.ts: cheap, safe while the recorder writes through WAL, and no
 * file handle outlives a reload). What goes wrong is answered as data (the
 * RecordingError's fault and message), never thrown out of the thread. The
 * thread runs at a lower CPU priority than the monitor's.
 *
 * Loaded on the main thread, this module does nothing.
 */
import { getPriority, setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { openRecording } from '../recording/recording.js';
import { describeOpenError, RecordingError, type RecordingFault } from '../recording/schema.js';
import { askRecording, type RecordingQuery } from './recording-queries.js';

export interface WorkerRequest {
  readonly id: number;
  readonly file: string;
  readonly query: RecordingQuery;
  /** Tests only: hold the query this long inside its SQL, as one over a large recording would be. */
  readonly delayMs?: number;
}

export interface WorkerFailure {
  /** The recording's fault; undefined for anything else (a bug, memory). */
  readonly fault?: RecordingFault;
  readonly message: string;
  readonly hint?: string;
}

export type WorkerReply = { readonly id: number; readonly answer: unknown } | { readonly id: number; readonly failure: WorkerFailure };

/** The marker in workerData that makes this module serve questions. */
export const QUERY_WORKER = 'dropmonQueryWorker';

function isSqliteError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/**
 * Sleep `ms` at the first interval the query visits: inside the SQL
 * statement, where a slow query spends its time, so that stopping it is
 * tested where it matters.
 */
function sleepOnce(ms: number): () => void {
  let slept = false;
  return () => {
    if (slept) return;
    slept = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  };
}

function answer(req: WorkerRequest): WorkerReply {
  try {
    const rec = openRecording(req.file, req.delayMs ? { checkpoint: sleepOnce(req.delayMs) } : {});
    try {
      return { id: req.id, answer: askRecording(rec, req.query) };
    } finally {
      rec.close();
    }
  } catch (raw) {
    // An SQLite error met while reading (a page damaged after opening) says what the file is, like one at opening.
    const err = isSqliteError(raw) ? describeOpenError(raw, req.file) : raw;
    if (err instanceof RecordingError) return { id: req.id, failure: { fault: err.fault, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } };
    return { id: req.id, failure: { message: err instanceof Error ? err.message : String(err) } };
  }
}

/** How much nicer than the monitor a query thread runs. */
const NICER = 10;

if (!isMainThread && parentPort && (workerData as Record<string, unknown> | undefined)?.[QUERY_WORKER] === true) {
  const port = parentPort;
  // On a busy host the CPU goes to the thread that closes the intervals first. Linux keeps a nice
  // value per thread, and "0" is this one; raising it needs no privilege. Elsewhere: left as it is.
  try {
    setPriority(0, Math.min(19, getPriority(0) + NICER));
  } catch {
    // not permitted or not supported: the query runs at the monitor's priority
  }
  port.on('message', (req: WorkerRequest) => port.postMessage(answer(req)));
}
