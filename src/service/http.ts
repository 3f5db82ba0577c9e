/**
 * The HTTP API of `dropmon serve` (node:http, no framework), the Prometheus
 * endpoint, the live event stream and the dashboard's static files. The
 * routes and their answers are documented in docs/api.md.
 *
 * Security, since this controls tracing on the host and runs as root:
 * - a bearer token, compared in constant time, on /api/* and /metrics, on
 *   loopback too: the configured one, else the one generated into the state
 *   directory (token.ts), which only root can read. The dashboard's static
 *   files need none (the page asks for the token, or takes it from the URL's
 *   fragment); EventSource cannot send headers, so /api/v1/events alone also
 *   takes ?token=;
 * - with http.readOnlyPublic, clients without the token may read (GET/HEAD),
 *   never change anything, and never see a kernel address (redact.ts); on a
 *   loopback socket their Host header must name this host, so a web page
 *   cannot read the API through DNS rebinding;
 * - a browser request from another web origin gets nothing (Origin, when
 *   present, is checked on every API request);
 * - bounded connections: a cap, header/request/keep-alive/idle deadlines
 *   checked every second, event streams bounded in all and per client;
 * - request bodies are limited, every parameter is validated, errors are
 *   JSON `{error}` with a 4xx status; nothing runs a shell.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { entryJson } from '../knowledge/entry.js';
import { kernelHasReason } from '../sources/bpf/availability.js';
import { DropmonError } from '../core/errors.js';
import * as units from '../core/units.js';
import { ConfigError, DEFAULT_HTTP, hasControlCharacters, isLoopback, publicConfig, type HttpConfig } from './config.js';
import { ApiProcessMetrics } from './api-process-metrics.js';
import { diagnosis, reasonSeries, topPoints, type RangeContext } from './queries.js';
import { QueryBusyError, QueryFailedError, QueryPool, QueryTimeoutError, type PoolOptions } from './query-pool.js';
import type { StateEvent } from './service.js';
import { ServiceBusyError, ServiceTimeoutError, type ServicePort } from './service-port.js';
import { byAudience, SseHub, type Audience, type SseOptions } from './sse.js';
import { withoutKernelAddresses } from './redact.js';
import type { IntervalJson } from './interval-json.js';

export interface ApiOptions {
  /** The bearer token every change needs (and every read, unless http.readOnlyPublic). */
  readonly token: string;
  /** Public reads and connection bounds (default DEFAULT_HTTP). */
  readonly http?: HttpConfig;
  /** Folder of the dashboard (index.html, app.js, style.css). */
  readonly webDir?: string;
  /** Largest request body accepted (default 64 KiB). */
  readonly maxBodyBytes?: number;
  readonly sse?: Pick<SseOptions, 'maxBufferBytes' | 'heartbeatMs'>;
  /** The range queries' threads (limits come from the service's config). */
  readonly queries?: PoolOptions;
  /** Who answers, for GET /api/v1/status: the API process's user, and whether it is separate from the monitor. */
  readonly process?: { readonly user: string; readonly separate: boolean };
}

/** Node checks the header and request deadlines this often (its default, 30 s, let a slow client stay 40 s). */
const DEADLINE_CHECK_MS = 1000;

/** An error with its HTTP status (and headers, e.g. Retry-After), turned into `{error}` by the router. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * A range query that could not be answered: busy (503, with when to ask
 * again), stopped at its time limit (504), a recording that cannot be read
 * (500; 503 for storage trouble, which may pass).
 */
function queryError(err: unknown): HttpError | undefined {
  if (err instanceof QueryBusyError) return new HttpError(503, err.message, { 'retry-after': String(err.retryAfterS) });
  if (err instanceof QueryTimeoutError || err instanceof ServiceTimeoutError) return new HttpError(504, err.message);
  if (err instanceof ServiceBusyError) return new HttpError(503, err.message, { 'retry-after': String(err.retryAfterS) });
  if (err instanceof QueryFailedError) {
    const f = err.failure;
    const text = `the recording cannot be read: ${f.message}${f.hint ? ` (${f.hint})` : ''}`;
    return f.fault === 'storage' ? new HttpError(503, text, { 'retry-after': '5' }) : new HttpError(500, text);
  }
  return undefined;
}

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** The dashboard shipped with dropmon: web/ beside dist/ (or beside src/ when run from the sources). */
export function defaultWebDir(): string {
  for (const rel of ['../../../web/', '../../web/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return fileURLToPath(new URL('../../../web/', import.meta.url));
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison (of equal-length digests, so the length leaks nothing either). */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(given), digest(token));
}

/**
 * A time parameter (units.ts's time grammar): ms since the epoch, ISO 8601,
 * @UNIXSECONDS, or before now ("-15m", "-2h"). An offset after now asks about
 * the future, which nothing has recorded: refused.
 */
export function parseTimeParam(name: string, v: string | null, now: number): number | undefined {
  if (v === null || v === '') return undefined;
  const t = units.parseTimeSpec(v);
  if (t?.kind === 'absolute' || t?.kind === 'epoch-ms') return t.ms;
  if (t?.kind === 'offset' && t.sign === '-') return now - t.ms;
  throw new HttpError(400, `${name} must be ms since the epoch, an ISO 8601 time or -DURATION like -15m, not ${JSON.stringify(v.slice(0, 60))}`);
}

function intParam(name: string, v: string | null, min: number, max: number, dflt: number): number {
  if (v === null || v === '') return dflt;
  if (!/^\d{1,9}$/.test(v.trim()) || Number(v) < min || Number(v) > max) throw new HttpError(400, `${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

function rangeParams(q: URLSearchParams): { from: number; to: number } {
  const now = Date.now();
  const to = parseTimeParam('to', q.get('to'), now) ?? now;
  const from = parseTimeParam('from', q.get('from'), now) ?? to - 3_600_000;
  if (from > to) throw new HttpError(400, 'from is after to');
  return { from, to };
}

/** A connection that arrived on a loopback address (127.0.0.0/8, ::1, IPv4-mapped). */
function isLoopbackSocket(req: IncomingMessage): boolean {
  const a = req.socket.localAddress;
  return a !== undefined && isLoopback(a);
}

function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/**
 * A valid request that this host cannot carry out (no NET_DM in the kernel, BPF
 * refused): 409, with the source's own explanation, rather than a 500 that
 * suggests a bug.
 */
async function hostRefuses<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof DropmonError && !(err instanceof ConfigError)) throw new HttpError(409, err.message + (err.hint ? ` (${err.hint})` : ''));
    throw err;
  }
}


export class ApiServer {
  readonly server: Server;
  readonly hub: SseHub;
  /** Reads the recording for the range queries, off the main thread. */
  readonly queries: QueryPool;
  private readonly webDir: string;
  private token: string;
  private http: HttpConfig;
  /** Who each request in flight is answered for (json() redacts for the public). */
  private readonly audiences = new WeakMap<ServerResponse, Audience>();
  /** The API process's own memory, for /metrics when it runs apart from the monitor. */
  private readonly ownMetrics = new ApiProcessMetrics();
  private readonly onInterval: (j: IntervalJson) => void;
  private readonly onState: (s: StateEvent) => void;

  constructor(
    private readonly service: ServicePort,
    private readonly opts: ApiOptions,
  ) {
    this.webDir = opts.webDir ?? defaultWebDir();
    this.token = opts.token;
    this.http = opts.http ?? DEFAULT_HTTP;
    this.hub = new SseHub(opts.sse);
    this.queries = new QueryPool(() => this.service.config.queries, opts.queries);
    this.onInterval = (j) => this.hub.broadcast('interval', byAudience(j, () => withoutKernelAddresses(j)));
    this.onState = (s) => {
      const data = { ...s, ...this.stateExtras() };
      this.hub.broadcast('state', byAudience(data, () => withoutKernelAddresses(data)));
    };
    service.on('interval', this.onInterval);
    service.on('state', this.onState);
    this.server = createServer({ connectionsCheckingInterval: DEADLINE_CHECK_MS }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.maxHeadersCount = 100;
    this.applyHttp();
  }

  /** Change the token at run time (reload). */
  setToken(token: string): void {
    this.token = token;
  }

  /** New public-read and connection settings (reload); connections already open keep theirs. */
  setHttp(http: HttpConfig): void {
    this.http = http;
    this.applyHttp();
  }

  /** Slow-loris and flood bounds: headers and bodies arrive in time, idle connections go, connections are capped. */
  private applyHttp(): void {
    const h = this.http;
    this.server.maxConnections = h.maxConnections;
    this.server.headersTimeout = h.headersTimeoutMs;
    this.server.requestTimeout = h.requestTimeoutMs;
    this.server.keepAliveTimeout = h.keepAliveTimeoutMs;
    // No traffic either way for this long: the socket is destroyed (event streams opt out, sse.ts).
    this.server.timeout = h.idleTimeoutMs;
    this.hub.setLimits({ maxClients: h.eventStreams, maxPerAddress: h.eventStreamsPerClient });
  }

  /** Serve on a listening socket bound by another process (the monitor binds, the API process serves): its descriptor. */
  listenOn(fd: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ fd }, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: '', port: 0 });
      });
    });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new DropmonError(`cannot listen on ${host}:${port}: ${err.message}`, 'choose another listen address or port'));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
      });
    });
  }

  async close(): Promise<void> {
    this.service.off('interval', this.onInterval);
    this.service.off('state', this.onState);
    this.hub.close();
    await this.queries.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** The process answering: separate from the monitor and without root, or (where it could not start) the monitor itself. */
  private identity(): { pid: number; uid: number | null; user: string | null; separate: boolean } {
    return { pid: process.pid, uid: process.getuid?.() ?? null, user: this.opts.process?.user ?? null, separate: this.opts.process?.separate ?? false };
  }

  private stateExtras(): Record<string, unknown> {
    return { config: publicConfig(this.service.config) };
  }

  private fail(res: ServerResponse, err: unknown): void {
    let status = 500;
    let message = 'internal error';
    let headers: Record<string, string> = {};
    err = queryError(err) ?? err;
    if (err instanceof HttpError) [status, message, headers] = [err.status, err.message, err.headers];
    else if (err instanceof ConfigError) [status, message] = [400, err.message.replace(/^config: /, '')];
    else if (err instanceof DropmonError) [status, message] = [500, err.message + (err.hint ? ` (${err.hint})` : '')];
    else process.stderr.write(`dropmon: API error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.json(res, status, { error: message }, headers);
  }

  private json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(this.audiences.get(res) === 'public' ? withoutKernelAddresses(body) : body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS, ...extra });
    res.end(text);
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const max = this.opts.maxBodyBytes ?? 64 * 1024;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) throw new HttpError(413, `the request body is larger than ${max} bytes`);
    const type = req.headers['content-type'] ?? '';
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > max) throw new HttpError(413, `the request body is larger than ${max} bytes`);
      chunks.push(c);
    }
    if (size === 0) return undefined;
    if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'the request body must be JSON (Content-Type: application/json)');
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new HttpError(400, 'the request body is not valid JSON');
    }
  }

  /**
   * Who is asking: "admin" with the token; "public" without one, for reads
   * only and only with http.readOnlyPublic. Throws 401 (no or a wrong token, a
   * change without the token) or 403 (a public read through another host name).
   */
  private authorize(req: IncomingMessage, url: URL, allowQueryToken: boolean): Audience {
    const auth = req.headers.authorization;
    let given: string | undefined;
    if (auth !== undefined) {
      given = /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
      if (given === undefined) throw new HttpError(401, 'the Authorization header must be "Bearer TOKEN"');
    } else if (allowQueryToken) given = url.searchParams.get('token') ?? undefined;
    if (given !== undefined) {
      if (tokenMatches(given, this.token)) return 'admin';
      throw new HttpError(401, 'the token was refused');
    }
    if (!this.http.readOnlyPublic) throw new HttpError(401, 'a bearer token is required (Authorization: Bearer TOKEN); as root, `dropmon serve --print-url` shows it');
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(401, 'changing the service needs its token (Authorization: Bearer TOKEN)');
    if (isLoopbackSocket(req) && !isLoopbackHostHeader(req.headers.host)) throw new HttpError(403, 'without a token, the API answers only requests addressed to localhost');
    return 'public';
  }

  /** A browser's request from another web origin (or an opaque one) gets nothing, read or write. */
  private checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (origin === 'null') throw new HttpError(403, 'requests from an opaque origin are refused');
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new HttpError(403, 'bad Origin header');
    }
    if (host !== req.headers.host) throw new HttpError(403, 'requests from another web origin are refused');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new HttpError(400, 'bad request URL');
    }
    const path = url.pathname;
    if (path === '/metrics') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'use GET');
      this.authorize(req, url, false);
      this.checkOrigin(req);
      const m = await this.service.scrapeMetrics();
      res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
      // Appended to the Prometheus text format only (an OpenMetrics body ends in "# EOF").
      const own = this.opts.process?.separate && m.contentType.startsWith('text/plain') ? await this.ownMetrics.render() : '';
      res.end(method === 'HEAD' ? undefined : m.body + own);
      return;
    }
    if (path.startsWith('/api/')) {
      this.audiences.set(res, this.authorize(req, url, path === '/api/v1/events'));
      this.checkOrigin(req);
      return this.api(method, path, url.searchParams, req, res);
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'use GET');
    return this.serveStatic(path, method, res);
  }

  private async api(method: string, path: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = this.service;
    const route = `${method} ${path}`;
    const ctx = (): RangeContext => ({
      file: s.config.recording.file,
      reports: s.reports(),
      kb: s.kb,
      symbols: s.symbols,
      attribution: s.attribution,
      pool: this.queries,
      budget: s.config.queries,
    });
    switch (route) {
      case 'GET /api/v1/status':
        return this.json(res, 200, { ...s.status(), sseClients: this.hub.size, api: this.identity() });
      case 'GET /api/v1/config':
        return this.json(res, 200, publicConfig(s.config));
      case 'PUT /api/v1/config': {
        const body = await this.body(req);
        if (body === undefined) throw new HttpError(400, 'PUT /api/v1/config needs a JSON object with the keys to change');
        // From the configuration in effect at its turn, not now: a reload queued before it is kept (service.update).
        const applied = await hostRefuses(s.change(body, 'config'));
        return this.json(res, 200, publicConfig(applied));
      }
      case 'POST /api/v1/start':
        await this.body(req);
        await hostRefuses(s.start('start'));
        return this.json(res, 200, s.status());
      case 'POST /api/v1/stop':
        await this.body(req);
        await s.stop('stop');
        return this.json(res, 200, s.status());
      case 'GET /api/v1/intervals': {
        const limit = intParam('limit', q.get('limit'), 1, 100_000, 60);
        return this.json(res, 200, { intervals: s.intervals(limit) });
      }
      case 'GET /api/v1/points':
        // Beyond queries.maxPoints (maxBuckets) the answer is capped and says so, not refused.
        return this.json(res, 200, await topPoints(ctx(), rangeParams(q), intParam('top', q.get('top'), 1, 100_000, 20)));
      case 'GET /api/v1/series':
        return this.json(res, 200, await reasonSeries(ctx(), rangeParams(q), intParam('buckets', q.get('buckets'), 1, 100_000, 60)));
      case 'GET /api/v1/counters': {
        const c = await s.counters();
        const last = s.intervals(1)[0];
        return this.json(res, 200, { enabled: c.enabled, at: c.at, counters: c.counters, moved: last?.counters ?? [], notRead: c.notRead });
      }
      case 'GET /api/v1/diagnosis':
        return this.json(res, 200, await diagnosis(ctx(), rangeParams(q)));
      case 'GET /api/v1/events': {
        const audience = this.audiences.get(res) ?? 'public';
        const state = { state: s.state, source: s.status().source, since: s.status().since, why: 'connected', ...this.stateExtras() };
        const first = [{ event: 'state', data: audience === 'admin' ? state : withoutKernelAddresses(state) }];
        const refused = this.hub.accept(req, res, first, audience);
        if (refused === 'full') throw new HttpError(503, 'too many event streams open');
        if (refused === 'client-limit') throw new HttpError(429, `too many event streams from ${req.socket.remoteAddress ?? 'this address'} (at most ${this.http.eventStreamsPerClient})`);
        return;
      }
    }
    if (path.startsWith('/api/v1/explain/') && method === 'GET') return this.explain(path.slice('/api/v1/explain/'.length), res);
    const known = ['/api/v1/status', '/api/v1/config', '/api/v1/start', '/api/v1/stop', '/api/v1/intervals', '/api/v1/points', '/api/v1/series', '/api/v1/counters', '/api/v1/diagnosis', '/api/v1/events'];
    if (known.includes(path)) throw new HttpError(405, `${method} is not allowed on ${path}`);
    throw new HttpError(404, `no such endpoint: ${path}`);
  }

  private explain(raw: string, res: ServerResponse): void {
    let name: string;
    try {
      name = decodeURIComponent(raw).trim();
    } catch {
      throw new HttpError(400, 'bad percent-encoding in the name');
    }
    if (name === '' || name.length > 200 || hasControlCharacters(name)) throw new HttpError(400, 'the name must be 1 to 200 printable characters');
    const kb = this.service.kb;
    const answer = kb.explain(name, 5, undefined, kernelHasReason);
    if (!answer) throw new HttpError(404, `nothing in the knowledge base is close to ${JSON.stringify(name)}`);
    const { entry, hits } = answer;
    return this.json(res, 200, {
      query: name,
      exact: answer.match === 'exact',
      match: answer.match,
      entry: {
        ...entryJson(entry),
        related: {
          counters: entry.kind === 'reason' ? kb.countersForReason(entry.name) : entry.counters,
          reasons: entry.kind === 'counter' ? kb.reasonsForCounter(entry.name) : entry.reasons,
          symbols: entry.symbols,
        },
      },
      hits: hits.map((h) => ({ kind: h.entry.kind, name: h.entry.name, summary: h.entry.summary, score: Math.round(h.score * 100) / 100 })),
    });
  }

  private async serveStatic(path: string, method: string, res: ServerResponse): Promise<void> {
    const name = path === '/' ? 'index.html' : path.slice(1);
    // One flat folder of plain names: no "..", no slashes, no hidden files.
    const ext = /\.[a-z0-9]+$/i.exec(name)?.[0].toLowerCase() ?? '';
    if (!/^[\w-][\w.-]*$/.test(name) || name.includes('..') || !(ext in STATIC_TYPES)) throw new HttpError(404, `not found: ${path.slice(0, 100)}`);
    let data: Buffer;
    try {
      data = await readFile(join(this.webDir, name));
    } catch {
      throw new HttpError(404, `not found: ${path.slice(0, 100)}`);
    }
    res.writeHead(200, {
      'content-type': STATIC_TYPES[ext],
      'content-length': data.length,
      'cache-control': 'no-cache',
      'content-security-policy': CSP,
      ...SECURITY_HEADERS,
    });
    res.end(method === 'HEAD' ? undefined : data);
  }
}
