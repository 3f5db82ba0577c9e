/**
 * The channel between the monitor (root) and the API process (unprivileged):
 * one socket pair, framed (api-frames.ts). The monitor's messages are
 * structured-clone data (v8 serialization: bigints, typed arrays); the API
 * process's are small JSON objects, read by the monitor with a size limit.
 *
 *   monitor -> API: what the API shows (intervals, state, status, counters,
 *                   names, kernel symbols) and the settings it enforces
 *                   (token, HTTP bounds); replies to calls
 *   API -> monitor: "ready"; calls: start, stop, change (a PUT body),
 *                   metrics, counters (asked for, not pushed: reading them
 *                   is work the monitor does only when someone looks)
 *
 * The monitor trusts nothing the API process sends: a message is checked
 * against these shapes (parseApiMessage) and anything else ends that API
 * process (a new one is started); a change body is validated by the monitor's config code as an
 * HTTP body would be. So a compromised API process can ask for no more than
 * an administrator with the token can.
 */
import type { NetnsNames } from '../core/attribution.js';
import type { IntervalReport } from '../core/interval.js';
import type { KallsymsParts } from '../kernel/kallsyms.js';
import type { HttpConfig, ServiceConfig } from './config.js';
import type { IntervalJson } from './interval-json.js';
import type { ServiceStatus, StateEvent } from './service-port.js';

/** Namespace and interface names the API may need for what it was sent (diagnosis findings). */
export interface NamesUpdate {
  readonly netns: readonly (readonly [number, NetnsNames])[];
  readonly ifnames: readonly (readonly [number, number, string])[];
}

/** What the API shows, refreshed with every interval and change. */
export interface Shown {
  readonly config: ServiceConfig;
  readonly status: ServiceStatus;
}

export type MonitorMessage =
  | {
      readonly t: 'init';
      readonly token: string;
      readonly http: HttpConfig;
      readonly webDir?: string;
      readonly shown: Shown;
      readonly intervals: readonly IntervalJson[];
      readonly reports: readonly IntervalReport[];
      readonly names: NamesUpdate;
      readonly initInode?: number;
      readonly ownInode?: number;
      /** The kernel's symbols, when the monitor could read them (the API process cannot). */
      readonly kallsyms?: KallsymsParts;
      /** The user the process runs as, for GET /api/v1/status. */
      readonly user: string;
    }
  | { readonly t: 'interval'; readonly json: IntervalJson; readonly report: IntervalReport; readonly shown: Shown; readonly names: NamesUpdate }
  | { readonly t: 'state'; readonly event: StateEvent; readonly shown: Shown }
  | { readonly t: 'kallsyms'; readonly parts: KallsymsParts }
  | { readonly t: 'settings'; readonly token: string; readonly http: HttpConfig }
  | { readonly t: 'reply'; readonly id: number; readonly value?: unknown; readonly shown?: Shown; readonly error?: ChannelError }
  | { readonly t: 'close' };

/** An error as it crosses: its kind decides the HTTP status the API gives it. */
export interface ChannelError {
  /** config: 400; host: 409 (a valid request this host cannot carry out); busy: 503; other: 500. */
  readonly kind: 'config' | 'host' | 'busy' | 'other';
  readonly message: string;
  readonly hint?: string;
}

export const CALLS = ['start', 'stop', 'change', 'metrics', 'counters'] as const;
export type CallMethod = (typeof CALLS)[number];

export type ApiMessage =
  | { readonly t: 'ready'; readonly host: string; readonly port: number }
  | { readonly t: 'failed'; readonly message: string }
  | { readonly t: 'call'; readonly id: number; readonly method: CallMethod; readonly why: string; readonly change?: unknown };

/** Longest `why` and failure message taken from the API process (they end up in logs and state events). */
const MAX_TEXT = 200;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v.slice(0, MAX_TEXT) : undefined;
}

/** A message from the API process, checked; undefined for anything that is not one of ApiMessage. */
export function parseApiMessage(m: unknown): ApiMessage | undefined {
  if (!isRecord(m)) return undefined;
  switch (m.t) {
    case 'ready':
      return typeof m.host === 'string' && Number.isInteger(m.port) ? { t: 'ready', host: m.host.slice(0, MAX_TEXT), port: m.port as number } : undefined;
    case 'failed':
      return { t: 'failed', message: text(m.message) ?? 'unknown' };
    case 'call': {
      const method = CALLS.find((c) => c === m.method);
      if (!Number.isSafeInteger(m.id) || method === undefined) return undefined;
      const why = text(m.why) ?? method;
      // The why becomes a state event's text: a word, as the API's own callers give.
      if (!/^[a-z-]{1,20}$/.test(why)) return undefined;
      return { t: 'call', id: m.id as number, method, why, ...(method === 'change' ? { change: m.change } : {}) };
    }
    default:
      return undefined;
  }
}
