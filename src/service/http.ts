/**
 * The HTTP API of `dropmon serve` (node:http, no framework), the Prometheus
 * endpoint, the live event stream and the dashboard's static files. The
 * routes and their answers are documented in docs/api.md.
 *
 * Security, since this controls tracing on the host:
 * - a bearer token, compared in constant time, on /api/* and /metrics whenever
 *   one is configured (it must be, beyond loopback: see config.ts); the
 *   dashboard's static files need none (the page asks for the token);
 *   EventSource cannot send headers, so /api/v1/events alone also takes ?token=;
 * - without a token (loopback only), the Host header must name this host, so a
 *   web page cannot reach the API through DNS rebinding; a browser request
 *   from another origin cannot change anything (Origin is checked on writes);
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
import { applyRuntimeChange, ConfigError, hasControlCharacters, publicConfig } from './config.js';
import { diagnosis, reasonSeries, topPoints, type RangeContext } from './queries.js';
import type { DropService, StateEvent } from './service.js';
import { SseHub } from './sse.js';
import type { IntervalJson } from './interval-json.js';

export interface ApiOptions {
  /** Bearer token; undefined: no authentication (loopback only). */
  token?: string;
  /** Folder of the dashboard (index.html, app.js, style.css). */
  readonly webDir?: string;
  /** Largest request body accepted (default 64 KiB). */
  readonly maxBodyBytes?: number;
  readonly sse?: ConstructorParameters<typeof SseHub>[0];
}

/** An error with its HTTP status, turned into `{error}` by the router. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
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
async function hostRefuses(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DropmonError && !(err instanceof ConfigError)) throw new HttpError(409, err.message + (err.hint ? ` (${err.hint})` : ''));
    throw err;
  }
}


export class ApiServer {
  readonly server: Server;
  readonly hub: SseHub;
  private readonly webDir: string;
  private readonly onInterval: (j: IntervalJson) => void;
  private readonly onState: (s: StateEvent) => void;

  constructor(
    private readonly service: DropService,
    private readonly opts: ApiOptions,
  ) {
    this.webDir = opts.webDir ?? defaultWebDir();
    this.hub = new SseHub(opts.sse);
    this.onInterval = (j) => this.hub.broadcast('interval', j);
    this.onState = (s) => this.hub.broadcast('state', { ...s, ...this.stateExtras() });
    service.on('interval', this.onInterval);
    service.on('state', this.onState);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    // Slow-loris bounds: headers and bodies must arrive in reasonable time.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
    this.server.maxHeadersCount = 100;
  }

  /** Change the token at run time (reload). */
  setToken(token: string | undefined): void {
    this.opts.token = token;
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
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private stateExtras(): Record<string, unknown> {
    return { config: publicConfig(this.service.config) };
  }

  private fail(res: ServerResponse, err: unknown): void {
    let status = 500;
    let message = 'internal error';
    if (err instanceof HttpError) [status, message] = [err.status, err.message];
    else if (err instanceof ConfigError) [status, message] = [400, err.message.replace(/^config: /, '')];
    else if (err instanceof DropmonError) [status, message] = [500, err.message + (err.hint ? ` (${err.hint})` : '')];
    else process.stderr.write(`dropmon: API error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.json(res, status, { error: message });
  }

  private json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
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

  private authorize(req: IncomingMessage, url: URL, allowQueryToken: boolean): void {
    const token = this.opts.token;
    if (token === undefined) {
      if (!isLoopbackHostHeader(req.headers.host)) throw new HttpError(403, 'without a token, the API answers only requests addressed to localhost');
      return;
    }
    const auth = req.headers.authorization;
    const bearer = auth && /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
    if (bearer !== undefined && bearer !== null && tokenMatches(bearer, token)) return;
    const q = allowQueryToken ? url.searchParams.get('token') : null;
    if (q !== null && tokenMatches(q, token)) return;
    throw new HttpError(401, 'a bearer token is required (Authorization: Bearer TOKEN)');
  }

  private checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') {
      if (origin === 'null') throw new HttpError(403, 'requests from an opaque origin cannot change the service');
      return;
    }
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new HttpError(403, 'bad Origin header');
    }
    if (host !== req.headers.host) throw new HttpError(403, 'requests from another web origin cannot change the service');
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
      const m = await this.service.metrics.scrape();
      res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : m.body);
      return;
    }
    if (path.startsWith('/api/')) {
      this.authorize(req, url, path === '/api/v1/events');
      if (method !== 'GET' && method !== 'HEAD') this.checkOrigin(req);
      return this.api(method, path, url.searchParams, req, res);
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'use GET');
    return this.serveStatic(path, method, res);
  }

  private async api(method: string, path: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = this.service;
    const route = `${method} ${path}`;
    const ctx = (): RangeContext => ({ file: s.config.recording.file, reports: s.reports(), kb: s.kb, symbols: s.symbols, attribution: s.attribution });
    switch (route) {
      case 'GET /api/v1/status':
        return this.json(res, 200, { ...s.status(), sseClients: this.hub.size });
      case 'GET /api/v1/config':
        return this.json(res, 200, publicConfig(s.config));
      case 'PUT /api/v1/config': {
        const body = await this.body(req);
        if (body === undefined) throw new HttpError(400, 'PUT /api/v1/config needs a JSON object with the keys to change');
        const next = applyRuntimeChange(s.config, body);
        await hostRefuses(s.reconfigure(next, 'config'));
        return this.json(res, 200, publicConfig(s.config));
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
        return this.json(res, 200, topPoints(ctx(), rangeParams(q), intParam('top', q.get('top'), 1, 1000, 20)));
      case 'GET /api/v1/series':
        return this.json(res, 200, reasonSeries(ctx(), rangeParams(q), intParam('buckets', q.get('buckets'), 1, 2000, 60)));
      case 'GET /api/v1/counters': {
        const snap = s.lastSnapshot();
        const last = s.intervals(1)[0];
        return this.json(res, 200, {
          enabled: s.config.counters.enabled,
          at: snap ? new Date(snap.wallMs).toISOString() : null,
          counters: s.shownCounters().map((c) => ({ name: c.name, scope: c.scope, layer: c.layer, value: c.value, class: c.class, meaning: c.meaning, ...(c.detail ? { detail: c.detail } : {}) })),
          moved: last?.counters ?? [],
          notRead: snap?.errors ?? [],
        });
      }
      case 'GET /api/v1/diagnosis':
        return this.json(res, 200, diagnosis(ctx(), rangeParams(q)));
      case 'GET /api/v1/events': {
        const first = [{ event: 'state', data: { state: s.state, source: s.status().source, since: s.status().since, why: 'connected', ...this.stateExtras() } }];
        if (!this.hub.accept(req, res, first)) throw new HttpError(503, 'too many event streams open');
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
