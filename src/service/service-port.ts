/**
 * What the HTTP API asks of the monitor: the one surface between them.
 *
 * In `dropmon serve` the monitor (DropService, root: BPF, tracefs, NET_DM,
 * namespaces) and the API (HTTP, JSON, the dashboard, the recording's range
 * queries) run in two processes, the API's without privileges
 * (api-process.ts). The API then talks to a ServiceMirror, which keeps what
 * the monitor pushes and forwards the few changes over a narrow channel
 * (api-channel.ts). In one process (tests, or where the API process cannot
 * start) the API talks to the DropService itself. Both are this interface, so
 * the API's code is the same either way.
 *
 * Everything here is data or a promise of data: no callback crosses, so the
 * interface can cross a process boundary.
 */
import type { Attribution } from '../core/attribution.js';
import type { IntervalReport } from '../core/interval.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import type { ServiceConfig } from './config.js';
import type { IntervalJson } from './interval-json.js';
import type { RecordingState } from '../recording/resilient-recorder.js';

export type ServiceState = 'running' | 'stopped';

export interface StateEvent {
  readonly state: ServiceState;
  readonly source: string | null;
  readonly since: string | null;
  /** Why it changed: "start", "stop", "config", "reload", or an error message. */
  readonly why: string;
}

export interface ServiceStatus {
  readonly version: string;
  readonly hostname: string;
  readonly kernel: string;
  readonly state: ServiceState;
  readonly source: string | null;
  readonly sourceDescription: string | null;
  /** When the current run started (ISO), null when stopped. */
  readonly since: string | null;
  readonly intervalMs: number;
  /** Totals since the service started. */
  readonly drops: number;
  readonly lost: number;
  readonly intervals: number;
  readonly recording: {
    readonly file: string | null;
    readonly bytes: number;
    readonly intervals: number;
    readonly unwritten: number;
    /** 'waiting' while the file cannot be written (retried every interval), 'off' when it is left alone (a newer dropmon's); null when not recording. */
    readonly state: RecordingState | null;
  };
  readonly counters: boolean;
  readonly alertsFiring: readonly { rule: string; since: number }[];
  readonly sseClients?: number;
}

/** GET /api/v1/counters without `moved` (which is the latest interval's): the last counter reading, drop-related only. */
export interface CountersView {
  readonly enabled: boolean;
  /** When the counters were read (ISO), null before the first reading. */
  readonly at: string | null;
  readonly counters: readonly Record<string, unknown>[];
  readonly notRead: readonly unknown[];
}

/** The monitor has too many requests of this kind in hand: ask again later (HTTP 503, Retry-After). */
export class ServiceBusyError extends Error {
  constructor(
    message: string,
    readonly retryAfterS = 1,
  ) {
    super(message);
  }
}

/** The monitor did not answer in time (HTTP 504). */
export class ServiceTimeoutError extends Error {}

export interface ServicePort {
  /** The configuration in effect (in the API process: without secrets, webhook URLs redacted). */
  readonly config: ServiceConfig;
  readonly state: ServiceState;
  readonly kb: KnowledgeBase;
  readonly symbols: Symbolizer;
  readonly attribution: Attribution;
  status(): ServiceStatus;
  /** The latest intervals in memory, oldest first. */
  intervals(limit?: number): IntervalJson[];
  /** The latest interval reports in memory (drop-related counters only). */
  reports(): readonly IntervalReport[];
  counters(): Promise<CountersView>;
  start(why: string): Promise<void>;
  stop(why: string): Promise<void>;
  /**
   * PUT /api/v1/config: the running configuration plus the keys of `change`
   * (unknown input, validated by the monitor), applied in turn with reloads.
   * Resolves with the configuration then in effect.
   */
  change(change: unknown, why: string): Promise<ServiceConfig>;
  /** The Prometheus exposition. */
  scrapeMetrics(): Promise<{ contentType: string; body: string }>;
  on(event: 'interval', listener: (json: IntervalJson) => void): unknown;
  on(event: 'state', listener: (state: StateEvent) => void): unknown;
  off(event: 'interval', listener: (json: IntervalJson) => void): unknown;
  off(event: 'state', listener: (state: StateEvent) => void): unknown;
}
