/**
 * Reads a `dropmon serve` instance from afar: its status once (host, kernel,
 * source), then its event stream (`GET /api/v1/events`) for as long as the
 * view runs, reconnecting after the delay the service asks for when the
 * connection drops. Authentication is auth.ts's business.
 */
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { DropmonError, UsageError } from '../../core/errors.js';
import type { LiveInterval } from '../../core/live.js';
import { authHeaders, authProblem } from './auth.js';
import { parseIntervalEvent, parseStateEvent, parseStatus, type RemoteState } from './interval.js';
import { SseParser } from './sse.js';

/** "host:port", "http://host:port", "https://host/prefix" → the service's base URL. */
export function parseRemoteUrl(spec: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(spec) ? spec : `http://${spec}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--remote ${JSON.stringify(spec)}: not a URL; expected http://HOST:PORT (the address of dropmon serve)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--remote ${JSON.stringify(spec)}: only http:// and https:// are supported`);
  if (url.username || url.password) throw new UsageError('--remote: put the token in --token-file or DROPMON_TOKEN, not in the URL');
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

export interface RemoteStatus {
  readonly hostname: string;
  readonly kernel: string;
  readonly source: string;
  readonly state: string;
  readonly intervalMs: number;
}

export interface RemoteHandlers {
  interval(r: LiveInterval): void;
  state(s: RemoteState): void;
  /** The connection's news for the screen ("" once connected). */
  status(text: string): void;
  /** An error that reconnecting will not cure (the token refused): the view should end. */
  fatal(err: Error): void;
}

const TIMEOUT_MS = 10_000;
/**
 * The service writes at least a heartbeat every 15 s on its event stream: a
 * stream silent for longer than this is a peer that vanished without closing
 * the connection (a host that went down, a dropped route). Reconnect rather
 * than show stale data as live.
 */
const STREAM_IDLE_MS = 45_000;

export class RemoteClient {
  private req: ClientRequest | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private retryMs = 2000;
  /** The current connection; a stale one's late events are ignored. */
  private generation = 0;

  constructor(
    readonly base: URL,
    private readonly token: string | undefined,
  ) {}

  private url(path: string): URL {
    return new URL(path, this.base);
  }

  private send(path: string, accept: string, onResponse: (res: IncomingMessage) => void, onError: (err: Error) => void): ClientRequest {
    const u = this.url(path);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { headers: { accept, ...authHeaders(this.token) } }, onResponse);
    req.on('error', onError);
    req.end();
    return req;
  }

  /** GET /api/v1/status; refuses with the service's words when it cannot be read. */
  status(): Promise<RemoteStatus> {
    return new Promise((resolve, reject) => {
      const req = this.send(
        'api/v1/status',
        'application/json',
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > 1024 * 1024) req.destroy(new Error('answer larger than 1 MiB'));
            else chunks.push(c);
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const auth = authProblem(status, this.token !== undefined);
            if (auth) return reject(new DropmonError(`${this.base.href}: ${auth.message}`, auth.hint));
            if (status !== 200) return reject(new DropmonError(`${this.base.href}api/v1/status answered ${status}`, 'is this the address of dropmon serve?'));
            try {
              resolve(parseStatus(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
            } catch (err) {
              reject(new DropmonError(`${this.base.href}: not a dropmon service (${(err as Error).message})`));
            }
          });
        },
        (err) => reject(new DropmonError(`cannot reach ${this.base.href}: ${err.message}`, 'is dropmon serve running there, and is --listen reachable from here?')),
      );
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
    });
  }

  /** Follow the event stream until close(); reconnects by itself. */
  follow(h: RemoteHandlers): void {
    if (this.closed) return;
    const parser = new SseParser();
    const generation = ++this.generation;
    let connected = false;
    const retry = (why: string) => {
      if (this.closed || this.timer || generation !== this.generation) return;
      h.status(`disconnected (${why}); reconnecting`);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.follow(h);
      }, this.retryMs);
    };
    this.req = this.send(
      'api/v1/events',
      'text/event-stream',
      (res) => {
        const status = res.statusCode ?? 0;
        const auth = authProblem(status, this.token !== undefined);
        if (auth) {
          res.resume();
          return h.fatal(new DropmonError(`${this.base.href}: ${auth.message}`, auth.hint));
        }
        if (status !== 200) {
          res.resume();
          return retry(`the service answered ${status}`);
        }
        connected = true;
        h.status('');
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (generation !== this.generation) return;
          const parsed: Array<{ interval: LiveInterval } | { state: RemoteState }> = [];
          try {
            for (const e of parser.push(chunk)) {
              if (e.event === 'interval') parsed.push({ interval: parseIntervalEvent(JSON.parse(e.data)) });
              else if (e.event === 'state') parsed.push({ state: parseStateEvent(JSON.parse(e.data)) });
            }
            if (parser.retryMs !== undefined) this.retryMs = Math.min(Math.max(parser.retryMs, 500), 60_000);
          } catch (err) {
            // Bad data from the other end: said on screen, the stream read again from a clean start.
            res.destroy();
            retry(`bad data: ${(err as Error).message}`);
          }
          // Outside the try: an error of the view is dropmon's own (an internal error), not the service's.
          for (const p of parsed) {
            if ('interval' in p) h.interval(p.interval);
            else h.state(p.state);
          }
        });
        res.on('end', () => retry('the service closed the stream'));
        res.on('error', (err) => retry(err.message));
      },
      (err) => retry(connected ? err.message : `cannot reach it: ${err.message}`),
    );
    const req = this.req;
    req.setTimeout(STREAM_IDLE_MS, () => {
      req.destroy();
      retry(`nothing from the service in ${STREAM_IDLE_MS / 1000} s`);
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.req?.destroy();
  }
}
