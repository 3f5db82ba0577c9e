/**
 * The service's configuration: its shape, its defaults, and the validation of
 * what a person writes (the YAML file, `PUT /api/v1/config`). Every error
 * names the key that is wrong and what was expected ("config: filters.reasons[1]:
 * must be a string"), so a typo never turns into a silently ignored setting.
 *
 * The validator is a small hand-written walker over plain objects: the config
 * is small and a schema library would be a dependency for thirty lines.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { DropmonError } from '../core/errors.js';
import * as units from '../core/units.js';
import { redactUrl } from './redact.js';
import { isNetnsSpec } from '../kernel/setns.js';

export type SourceSetting = 'auto' | 'bpf' | 'tracefs' | 'netdm';
export type ModeSetting = 'summary' | 'packet';

export interface FilterConfig {
  /** Drop reason names (NO_SOCKET) or numbers of the running kernel. */
  readonly reasons: readonly string[];
  /** ipv4, ipv6, arp or an EtherType number (0x88b5). */
  readonly protocols: readonly string[];
  /** Kernel function names, func+0xOFF or 0xADDRESS. */
  readonly locations: readonly string[];
}

export type AlertKind = 'reason' | 'counter' | 'interface';

export interface AlertRule {
  readonly name: string;
  /** What is measured: drops of a reason, a counter's rate, drops counted on an interface. */
  readonly kind: AlertKind;
  /** Reason name ("*" for all drops), counter name (optionally name@scope) or interface name. */
  readonly match: string;
  /** Fire when the rate (per second) stays above this for `forMs`. */
  readonly above: number;
  /** Resolve when the rate falls below this (hysteresis; default: `above`). */
  readonly below: number;
  readonly forMs: number;
}

export interface WebhookConfig {
  readonly url: string;
  /** Extra request headers, e.g. an Authorization for the receiver. */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

/** Who may use the HTTP server, and how much of it one client may hold. */
export interface HttpConfig {
  /** Clients without the token may read (GET, the event stream, /metrics), never change anything. */
  readonly readOnlyPublic: boolean;
  /** Connections at once; more are closed as they arrive. */
  readonly maxConnections: number;
  /** The request headers must have arrived this long after the connection (or the previous request). */
  readonly headersTimeoutMs: number;
  /** The whole request must have arrived within this. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed (event streams have a heartbeat). */
  readonly idleTimeoutMs: number;
  /** Event streams open at once, and from one client address. */
  readonly eventStreams: number;
  readonly eventStreamsPerClient: number;
}

/**
 * The API's range queries (/api/v1/points, series, diagnosis) over the
 * recording: they run on worker threads (query-pool.ts), bounded here.
 */
export interface QueryConfig {
  /** Threads reading the recording at once. */
  readonly workers: number;
  /** Queries waiting for a thread; one more is answered 503. */
  readonly queue: number;
  /** From a query's arrival to its answer; past it, 503 (never ran) or 504 (stopped). Under http.idleTimeout. */
  readonly timeoutMs: number;
  /** A longer range is cut to its newest part (the answer says so). */
  readonly maxRangeMs: number;
  /** Drop points in an answer. */
  readonly maxPoints: number;
  /** Time buckets of a series. */
  readonly maxBuckets: number;
}

export interface ServiceConfig {
  /** host:port; [v6]:port. */
  readonly listen: string;
  /**
   * Bearer token for the API; required when listening beyond loopback.
   * Without token, tokenFile and DROPMON_TOKEN, the service generates one
   * into its state directory (token.ts).
   */
  readonly token?: string;
  readonly tokenFile?: string;
  /** Where the generated token lives; default: the recording's folder, else /var/lib/dropmon. */
  readonly stateDir?: string;
  readonly http: HttpConfig;
  readonly queries: QueryConfig;
  readonly source: SourceSetting;
  readonly mode: ModeSetting;
  readonly intervalMs: number;
  readonly maxPoints: number;
  readonly filters: FilterConfig;
  /**
   * scope: every network namespace of the host ("host", the default when
   * absent) or the service's own ("own"); netns narrows to that one.
   */
  readonly counters: { readonly enabled: boolean; readonly netns?: string; readonly driver: boolean; readonly scope?: 'host' | 'own' };
  /** file "" turns recording off. */
  readonly recording: { readonly file: string; readonly maxAgeMs?: number; readonly maxBytes?: number };
  /** Intervals kept in memory for the live view. */
  readonly memoryIntervals: number;
  readonly metrics: { readonly topLocations: number; readonly maxCounterSeries: number };
  readonly alerts: { readonly rules: readonly AlertRule[]; readonly webhooks: readonly WebhookConfig[] };
  /** The dashboard's folder; default: web/ of this installation. */
  readonly webDir?: string;
  /**
   * The user the API process runs as (HTTP, JSON, the dashboard, range
   * queries: none of it needs root). Default: "dropmon" where that user
   * exists, else "nobody".
   */
  readonly apiUser?: string;
}

export const DEFAULT_HTTP: HttpConfig = {
  readOnlyPublic: false,
  maxConnections: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  eventStreams: 64,
  eventStreamsPerClient: 8,
};

/**
 * Two threads: the dashboard asks for points and series together, and one
 * long diagnosis should not make them wait; more would take CPUs from the
 * monitor on a small host for little gain (a query is mostly one thread's
 * worth of SQLite). 20 s answers the diagnosis of a week's recording of 1 GiB
 * on a slow host and stays well under the 60 s idle timeout of HTTP.
 */
export const DEFAULT_QUERIES: QueryConfig = {
  workers: 2,
  queue: 16,
  timeoutMs: 20_000,
  maxRangeMs: 31 * 86_400_000,
  maxPoints: 1000,
  maxBuckets: 2000,
};

export const DEFAULT_CONFIG: ServiceConfig = {
  listen: '127.0.0.1:9947',
  http: DEFAULT_HTTP,
  queries: DEFAULT_QUERIES,
  source: 'auto',
  mode: 'summary',
  intervalMs: 1000,
  maxPoints: 64,
  filters: { reasons: [], protocols: [], locations: [] },
  counters: { enabled: true, driver: true },
  recording: { file: '/var/lib/dropmon/dropmon.db', maxAgeMs: 7 * 86_400_000, maxBytes: 1024 ** 3 },
  memoryIntervals: 300,
  metrics: { topLocations: 20, maxCounterSeries: 500 },
  alerts: { rules: [], webhooks: [] },
};

/** A configuration mistake: the message names the key. Status 400 in the API, exit 2 on the command line. */
export class ConfigError extends DropmonError {
  constructor(message: string, hint?: string) {
    super(message, hint, 2);
  }
}

// ---------------------------------------------------------------------------
// Small typed readers over unknown input. `at` is the key path for messages.

type Obj = Record<string, unknown>;

function fail(at: string, msg: string): never {
  throw new ConfigError(`config: ${at}: ${msg}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(at: string, v: unknown, keys: readonly string[]): Obj {
  if (!isObj(v)) fail(at, 'must be a mapping of keys to values');
  for (const k of Object.keys(v)) if (!keys.includes(k)) fail(at === '' ? k : `${at}.${k}`, `unknown key; known keys here: ${keys.join(', ')}`);
  return v;
}

function key(at: string, k: string): string {
  return at === '' ? k : `${at}.${k}`;
}

/** A namespace spec of the accepted forms only: the service never opens an arbitrary path (kernel/netns-handle.ts). */
function netnsSpec(spec: string): string {
  if (!isNetnsSpec(spec)) fail('counters.netns', 'must be an ip netns name, a process id or /proc/PID/ns/net');
  return spec;
}

/** Newlines and other control characters have no place in a setting (or a log line built from one). */
export function hasControlCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20 || s.charCodeAt(i) === 0x7f) return true;
  return false;
}

function str(at: string, v: unknown, max = 4096): string {
  if (typeof v !== 'string') fail(at, 'must be a string');
  if (v.length > max) fail(at, `must be at most ${max} characters`);
  if (hasControlCharacters(v)) fail(at, 'must not contain control characters');
  return v;
}

function oneOf<T extends string>(at: string, v: unknown, values: readonly T[]): T {
  const s = str(at, v, 64);
  if (!(values as readonly string[]).includes(s)) fail(at, `must be one of ${values.join(', ')}, not ${JSON.stringify(s)}`);
  return s as T;
}

function int(at: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(at, `must be a whole number from ${min} to ${max}`);
  return v;
}

function num(at: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(at, `must be a number from ${min} to ${max}`);
  return v;
}

function bool(at: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(at, 'must be true or false');
  return v;
}

function strList(at: string, v: unknown, maxItems = 256, maxLen = 256): string[] {
  if (typeof v === 'string') v = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!Array.isArray(v)) fail(at, 'must be a list of strings');
  if (v.length > maxItems) fail(at, `must have at most ${maxItems} items`);
  return v.map((x, i) => str(`${at}[${i}]`, typeof x === 'number' ? String(x) : x, maxLen).trim()).filter(Boolean);
}

/** A duration (units.ts: "500ms", "10s", "5m", "12h", "7d", a bare number of seconds), or a YAML number of seconds → ms. */
export function parseDuration(at: string, v: unknown, minMs: number, maxMs: number): number {
  const ms = typeof v === 'number' && Number.isFinite(v) ? v * 1000 : typeof v === 'string' ? units.parseDuration(v) : undefined;
  if (ms === undefined) fail(at, `must be a duration like 10s, 5m, 12h or 7d, not ${JSON.stringify(v)}`);
  if (!(ms >= minMs && ms <= maxMs)) fail(at, `must be a duration from ${minMs / 1000} s to ${maxMs / 1000} s`);
  return Math.round(ms);
}

/** A size (units.ts: "500M", "2G", a bare number of bytes), or a YAML number of bytes. */
export function parseByteSize(at: string, v: unknown): number {
  const bytes = typeof v === 'number' ? Math.floor(v) : typeof v === 'string' ? units.parseSize(v) : undefined;
  if (bytes === undefined) fail(at, `must be a size like 500M or 2G, not ${JSON.stringify(v)}`);
  if (!(bytes >= 64 * 1024)) fail(at, 'must be at least 64K');
  return bytes;
}

/** Split "host:port" / "[v6]:port" / ":port" / "port"; validates both parts. */
export function parseListen(at: string, v: unknown): { host: string; port: number } {
  const s = str(at, v, 300).trim();
  let host: string;
  let port: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (v6) [, host, port] = v6;
  else if (/^\d+$/.test(s)) [host, port] = ['127.0.0.1', s];
  else {
    const i = s.lastIndexOf(':');
    if (i < 0) fail(at, `must be HOST:PORT like 127.0.0.1:9947, not ${JSON.stringify(s)}`);
    host = s.slice(0, i) || '0.0.0.0';
    port = s.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) fail(at, `the port must be a number from 0 to 65535, not ${JSON.stringify(port)}`);
  if (host !== 'localhost' && isIP(host) === 0) fail(at, `the host must be an IP address or localhost, not ${JSON.stringify(host)}`);
  return { host, port: Number(port) };
}

/** Does this address only accept connections from this host? */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\./i.test(host);
}

const RULE_KEYS = ['name', 'kind', 'match', 'above', 'below', 'for'];

function alertRule(at: string, v: unknown): AlertRule {
  const o = object(at, v, RULE_KEYS);
  for (const k of ['name', 'kind', 'match', 'above']) if (o[k] === undefined) fail(key(at, k), 'is required');
  const above = num(key(at, 'above'), o.above, 0, 1e12);
  const below = o.below === undefined ? above : num(key(at, 'below'), o.below, 0, 1e12);
  if (below > above) fail(key(at, 'below'), `must not be above "above" (${above}): it is the level at which the alert resolves`);
  const name = str(key(at, 'name'), o.name, 100);
  if (!/^[\w.:@-]+$/.test(name)) fail(key(at, 'name'), 'must be letters, digits, and . _ : @ -');
  return {
    name,
    kind: oneOf(key(at, 'kind'), o.kind, ['reason', 'counter', 'interface'] as const),
    match: str(key(at, 'match'), o.match, 200).trim(),
    above,
    below,
    forMs: o.for === undefined ? 0 : parseDuration(key(at, 'for'), o.for, 0, 86_400_000),
  };
}

function webhook(at: string, v: unknown): WebhookConfig {
  const o = typeof v === 'string' ? { url: v } : object(at, v, ['url', 'headers', 'timeout']);
  const url = str(key(at, 'url'), o.url, 2000);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not echoed: a webhook URL may carry a secret, and this message reaches the logs.
    fail(key(at, 'url'), 'is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(key(at, 'url'), 'must be an http:// or https:// URL');
  const headers: Record<string, string> = {};
  if (o.headers !== undefined) {
    if (!isObj(o.headers)) fail(key(at, 'headers'), 'must be a mapping of header names to values');
    for (const [h, hv] of Object.entries(o.headers)) {
      if (!/^[A-Za-z0-9-]{1,100}$/.test(h)) fail(key(at, `headers.${h}`), 'is not a valid header name');
      headers[h] = str(key(at, `headers.${h}`), hv, 2000);
    }
  }
  return { url, headers, timeoutMs: o.timeout === undefined ? 5000 : parseDuration(key(at, 'timeout'), o.timeout, 100, 60_000) };
}

const TOP_KEYS = [
  'listen', 'token', 'tokenFile', 'stateDir', 'http', 'queries', 'source', 'mode', 'interval', 'intervalMs', 'maxPoints', 'filters', 'counters',
  'recording', 'memoryIntervals', 'metrics', 'alerts', 'webDir', 'apiUser',
];

const HTTP_KEYS = ['readOnlyPublic', 'maxConnections', 'headersTimeout', 'requestTimeout', 'keepAliveTimeout', 'idleTimeout', 'eventStreams', 'eventStreamsPerClient'];

function httpSettings(at: string, v: unknown, base: HttpConfig): HttpConfig {
  const o = object(at, v, HTTP_KEYS);
  const duration = (k: string, dflt: number, min: number, max: number) => (o[k] === undefined ? dflt : parseDuration(key(at, k), o[k], min, max));
  const h: HttpConfig = {
    readOnlyPublic: o.readOnlyPublic === undefined ? base.readOnlyPublic : bool(key(at, 'readOnlyPublic'), o.readOnlyPublic),
    maxConnections: o.maxConnections === undefined ? base.maxConnections : int(key(at, 'maxConnections'), o.maxConnections, 1, 100_000),
    headersTimeoutMs: duration('headersTimeout', base.headersTimeoutMs, 1000, 300_000),
    requestTimeoutMs: duration('requestTimeout', base.requestTimeoutMs, 1000, 3_600_000),
    keepAliveTimeoutMs: duration('keepAliveTimeout', base.keepAliveTimeoutMs, 100, 300_000),
    idleTimeoutMs: duration('idleTimeout', base.idleTimeoutMs, 1000, 3_600_000),
    eventStreams: o.eventStreams === undefined ? base.eventStreams : int(key(at, 'eventStreams'), o.eventStreams, 1, 10_000),
    eventStreamsPerClient: o.eventStreamsPerClient === undefined ? base.eventStreamsPerClient : int(key(at, 'eventStreamsPerClient'), o.eventStreamsPerClient, 1, 10_000),
  };
  // Node checks the request deadline only once the headers are in: a longer header deadline would make it moot.
  if (h.headersTimeoutMs > h.requestTimeoutMs) fail(key(at, 'headersTimeout'), `must not be longer than requestTimeout (${h.requestTimeoutMs / 1000} s)`);
  if (h.eventStreamsPerClient > h.eventStreams) fail(key(at, 'eventStreamsPerClient'), `must not be more than eventStreams (${h.eventStreams})`);
  return h;
}

const QUERY_KEYS = ['workers', 'queue', 'timeout', 'maxRange', 'maxPoints', 'maxBuckets'];

function querySettings(at: string, v: unknown, base: QueryConfig): QueryConfig {
  const o = object(at, v, QUERY_KEYS);
  const whole = (k: string, dflt: number, min: number, max: number) => (o[k] === undefined ? dflt : int(key(at, k), o[k], min, max));
  return {
    workers: whole('workers', base.workers, 1, 16),
    queue: whole('queue', base.queue, 0, 10_000),
    timeoutMs: o.timeout === undefined ? base.timeoutMs : parseDuration(key(at, 'timeout'), o.timeout, 100, 3_600_000),
    maxRangeMs: o.maxRange === undefined ? base.maxRangeMs : parseDuration(key(at, 'maxRange'), o.maxRange, 1000, 100 * 365 * 86_400_000),
    maxPoints: whole('maxPoints', base.maxPoints, 1, 100_000),
    // recording.ts answers at most 2000 buckets whatever is asked.
    maxBuckets: whole('maxBuckets', base.maxBuckets, 1, 2000),
  };
}

function filters(at: string, v: unknown, base: FilterConfig): FilterConfig {
  const o = object(at, v, ['reasons', 'protocols', 'locations']);
  return {
    reasons: o.reasons === undefined || o.reasons === null ? base.reasons : strList(key(at, 'reasons'), o.reasons),
    protocols: o.protocols === undefined || o.protocols === null ? base.protocols : strList(key(at, 'protocols'), o.protocols),
    locations: o.locations === undefined || o.locations === null ? base.locations : strList(key(at, 'locations'), o.locations),
  };
}

/**
 * Apply a configuration document (parsed YAML or JSON) over `base`. Keys left
 * out keep base's values. Throws ConfigError naming the first bad key.
 */
export function applyConfig(base: ServiceConfig, doc: unknown): ServiceConfig {
  if (doc === null || doc === undefined) return base;
  const o = object('', doc, TOP_KEYS);
  let c: ServiceConfig = { ...base };
  if (o.listen !== undefined) {
    parseListen('listen', o.listen);
    c = { ...c, listen: String(o.listen).trim() };
  }
  if (o.token !== undefined) {
    const t = str('token', o.token, 1000);
    if (t.length < 16) fail('token', 'must be at least 16 characters (e.g. openssl rand -hex 32)');
    c = { ...c, token: t };
  }
  if (o.tokenFile !== undefined) c = { ...c, tokenFile: str('tokenFile', o.tokenFile) };
  if (o.stateDir !== undefined) {
    const d = str('stateDir', o.stateDir).trim();
    if (!d.startsWith('/')) fail('stateDir', 'must be an absolute path');
    c = { ...c, stateDir: d };
  }
  if (o.http !== undefined) c = { ...c, http: httpSettings('http', o.http, c.http) };
  if (o.queries !== undefined) c = { ...c, queries: querySettings('queries', o.queries, c.queries) };
  // A query's answer (or its 504) must come before the connection is closed as idle: a timeout
  // asked for must be shorter; one not asked for follows a shorter idle timeout (half of it).
  if (c.queries.timeoutMs >= c.http.idleTimeoutMs) {
    if (isObj(o.queries) && o.queries.timeout !== undefined)
      fail('queries.timeout', `must be shorter than http.idleTimeout (${c.http.idleTimeoutMs / 1000} s): the connection would be closed before the answer`);
    c = { ...c, queries: { ...c.queries, timeoutMs: Math.floor(c.http.idleTimeoutMs / 2) } };
  }
  if (o.source !== undefined) c = { ...c, source: oneOf('source', o.source, ['auto', 'bpf', 'tracefs', 'netdm'] as const) };
  if (o.mode !== undefined) c = { ...c, mode: oneOf('mode', o.mode, ['summary', 'packet'] as const) };
  if (o.interval !== undefined && o.intervalMs !== undefined) fail('interval', 'give interval or intervalMs, not both');
  if (o.interval !== undefined) c = { ...c, intervalMs: parseDuration('interval', o.interval, 100, 3_600_000) };
  if (o.intervalMs !== undefined) c = { ...c, intervalMs: int('intervalMs', o.intervalMs, 100, 3_600_000) };
  if (o.maxPoints !== undefined) c = { ...c, maxPoints: int('maxPoints', o.maxPoints, 1, 100_000) };
  if (o.filters !== undefined) c = { ...c, filters: filters('filters', o.filters, c.filters) };
  if (o.counters !== undefined) {
    if (typeof o.counters === 'boolean') c = { ...c, counters: { ...c.counters, enabled: o.counters } };
    else {
      const k = object('counters', o.counters, ['enabled', 'netns', 'driver', 'scope']);
      const scope = k.scope === undefined ? c.counters.scope : oneOf('counters.scope', k.scope, ['host', 'own'] as const);
      c = {
        ...c,
        counters: {
          enabled: k.enabled === undefined ? c.counters.enabled : bool('counters.enabled', k.enabled),
          driver: k.driver === undefined ? c.counters.driver : bool('counters.driver', k.driver),
          ...(scope !== undefined ? { scope } : {}),
          ...(k.netns !== undefined && k.netns !== null && k.netns !== ''
            ? { netns: netnsSpec(str('counters.netns', k.netns, 300)) }
            : k.netns === undefined && c.counters.netns !== undefined
              ? { netns: c.counters.netns }
              : {}),
        },
      };
    }
  }
  if (o.recording !== undefined) {
    if (o.recording === false) c = { ...c, recording: { file: '' } };
    else {
      const r = object('recording', o.recording, ['file', 'maxAge', 'maxSize']);
      const file = r.file === undefined ? c.recording.file : r.file === null || r.file === false ? '' : str('recording.file', r.file);
      const maxAgeMs = r.maxAge === undefined ? c.recording.maxAgeMs : r.maxAge === null ? undefined : parseDuration('recording.maxAge', r.maxAge, 1000, 100 * 365 * 86_400_000);
      const maxBytes = r.maxSize === undefined ? c.recording.maxBytes : r.maxSize === null ? undefined : parseByteSize('recording.maxSize', r.maxSize);
      c = { ...c, recording: { file, ...(maxAgeMs !== undefined ? { maxAgeMs } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}) } };
    }
  }
  if (o.memoryIntervals !== undefined) c = { ...c, memoryIntervals: int('memoryIntervals', o.memoryIntervals, 1, 100_000) };
  if (o.metrics !== undefined) {
    const m = object('metrics', o.metrics, ['topLocations', 'maxCounterSeries']);
    c = {
      ...c,
      metrics: {
        topLocations: m.topLocations === undefined ? c.metrics.topLocations : int('metrics.topLocations', m.topLocations, 0, 1000),
        maxCounterSeries: m.maxCounterSeries === undefined ? c.metrics.maxCounterSeries : int('metrics.maxCounterSeries', m.maxCounterSeries, 0, 10_000),
      },
    };
  }
  if (o.alerts !== undefined) {
    const a = object('alerts', o.alerts, ['rules', 'webhooks']);
    const list = (k: string, v: unknown) => {
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) fail(`alerts.${k}`, 'must be a list');
      if (v.length > 1000) fail(`alerts.${k}`, 'must have at most 1000 items');
      return v as unknown[];
    };
    const rules = list('rules', a.rules).map((r, i) => alertRule(`alerts.rules[${i}]`, r));
    const names = new Set<string>();
    rules.forEach((r, i) => {
      if (names.has(r.name)) fail(`alerts.rules[${i}].name`, `${JSON.stringify(r.name)} is used by another rule`);
      names.add(r.name);
    });
    c = { ...c, alerts: { rules, webhooks: list('webhooks', a.webhooks).map((w, i) => webhook(`alerts.webhooks[${i}]`, w)) } };
  }
  if (o.webDir !== undefined) c = { ...c, webDir: str('webDir', o.webDir) };
  if (o.apiUser !== undefined) {
    const u = str('apiUser', o.apiUser).trim();
    if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/i.test(u) || u === 'root') fail('apiUser', 'must be the name of a user other than root');
    c = { ...c, apiUser: u };
  }
  return c;
}

/** Read and validate a YAML config file over the defaults. */
export function loadConfigFile(file: string, base: ServiceConfig = DEFAULT_CONFIG): ServiceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the config file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  try {
    return applyConfig(base, doc);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: ${err.message}`, err.hint);
    throw err;
  }
}

/** The token to use: the config's own, else the token file's first line, else DROPMON_TOKEN. */
export function resolveToken(c: ServiceConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (c.token) return c.token;
  if (c.tokenFile) {
    let t: string;
    try {
      t = readFileSync(c.tokenFile, 'utf8').split('\n')[0].trim();
    } catch (err) {
      throw new ConfigError(`cannot read tokenFile ${c.tokenFile}: ${(err as Error).message}`);
    }
    if (t.length < 16) throw new ConfigError(`tokenFile ${c.tokenFile}: the token must be at least 16 characters`);
    return t;
  }
  const e = env.DROPMON_TOKEN?.trim();
  if (e) {
    if (e.length < 16) throw new ConfigError('DROPMON_TOKEN must be at least 16 characters');
    return e;
  }
  return undefined;
}

/** Refuse a configuration that would expose the API without a token. */
export function checkExposure(c: ServiceConfig, token: string | undefined): void {
  const { host } = parseListen('listen', c.listen);
  if (!isLoopback(host) && !token)
    throw new ConfigError(
      `listen ${c.listen} accepts connections from other hosts, and no token is set`,
      'set token or tokenFile in the config (or DROPMON_TOKEN), or listen on 127.0.0.1',
    );
}

/** The keys PUT /api/v1/config may change at run time. */
export const RUNTIME_KEYS = ['source', 'mode', 'intervalMs', 'filters', 'counters'] as const;

/** Apply a PUT body: only the run-time keys; the rest of the config is the file's business. */
export function applyRuntimeChange(base: ServiceConfig, body: unknown): ServiceConfig {
  if (!isObj(body)) fail('body', 'must be a JSON object');
  for (const k of Object.keys(body))
    if (!(RUNTIME_KEYS as readonly string[]).includes(k)) fail(k, `cannot be changed at run time; changeable: ${RUNTIME_KEYS.join(', ')}`);
  return applyConfig(base, body);
}

/** The config as the API shows it: never the token itself, webhook URLs without their credentials. */
export function publicConfig(c: ServiceConfig): Record<string, unknown> {
  return {
    listen: c.listen,
    token: c.token || c.tokenFile ? '(set)' : null,
    ...(c.stateDir !== undefined ? { stateDir: c.stateDir } : {}),
    ...(c.apiUser !== undefined ? { apiUser: c.apiUser } : {}),
    http: c.http,
    queries: c.queries,
    source: c.source,
    mode: c.mode,
    intervalMs: c.intervalMs,
    maxPoints: c.maxPoints,
    filters: c.filters,
    counters: c.counters,
    recording: c.recording,
    memoryIntervals: c.memoryIntervals,
    metrics: c.metrics,
    alerts: { rules: c.alerts.rules, webhooks: c.alerts.webhooks.map((w) => ({ url: redactUrl(w.url), headers: Object.keys(w.headers), timeoutMs: w.timeoutMs })) },
  };
}

