/**
 * Server-Sent Events for the live view (GET /api/v1/events). Each event is
 * serialized once per audience (administrators; the read-only public, which
 * gets a redacted copy, and only when such a client is connected) and written
 * to every client. A client that does not read
 * (a phone asleep with the tab open, a stalled proxy) fills its socket's
 * buffer; past `maxBufferBytes` it is disconnected, so it never holds the
 * pipeline back or makes the service's memory grow. EventSource reconnects
 * by itself when the client wakes up.
 *
 * Streams are bounded in number, in all and per client address, so one
 * client cannot take every stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Who reads a stream: administrators see everything, the public a redacted copy. */
export type Audience = 'admin' | 'public';

/** The payload of an event, or, for the public, a function that makes its redacted copy. */
export interface AudienceData {
  readonly admin: unknown;
  readonly public: () => unknown;
}

/** Why a stream was not accepted. */
export type SseRefusal = 'full' | 'client-limit';

interface Client {
  readonly audience: Audience;
  readonly address: string;
}

export interface SseOptions {
  /** Bytes queued for one client before it is dropped (default 1 MiB). */
  readonly maxBufferBytes?: number;
  /** Comment line sent this often so proxies keep the stream open (default 15 s). */
  readonly heartbeatMs?: number;
  /** Clients at once (default 64); more are refused with 503. */
  readonly maxClients?: number;
  /** Clients from one remote address at once (default 8); more are refused with 429. */
  readonly maxPerAddress?: number;
}

export class SseHub {
  private readonly clients = new Map<ServerResponse, Client>();
  private readonly perAddress = new Map<string, number>();
  private readonly heartbeat: NodeJS.Timeout;
  private dropped_ = 0;

  constructor(private opts: SseOptions = {}) {
    this.heartbeat = setInterval(() => this.send(': heartbeat\n\n'), opts.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Clients disconnected because they did not keep up. */
  get dropped(): number {
    return this.dropped_;
  }

  /** New limits (reload); streams already open stay. */
  setLimits(limits: Pick<SseOptions, 'maxClients' | 'maxPerAddress'>): void {
    this.opts = { ...this.opts, ...limits };
  }

  /**
   * Take over a request as an event stream; `first` events (already in the
   * audience's form) are sent at once. Returns why not when a limit is reached.
   */
  accept(req: IncomingMessage, res: ServerResponse, first: readonly { event: string; data: unknown }[] = [], audience: Audience = 'admin'): SseRefusal | undefined {
    if (this.clients.size >= (this.opts.maxClients ?? 64)) return 'full';
    const address = req.socket.remoteAddress ?? '';
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= (this.opts.maxPerAddress ?? 8)) return 'client-limit';
    // The heartbeat keeps the stream alive: the server's idle timeout is for requests, not for it.
    req.socket.setTimeout(0);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    for (const e of first) res.write(format(e.event, e.data));
    this.clients.set(res, { audience, address });
    this.perAddress.set(address, fromAddress + 1);
    const gone = () => this.remove(res);
    req.on('close', gone);
    res.on('close', gone);
    res.on('error', gone);
    return undefined;
  }

  /** Streams open now by audience. */
  count(audience: Audience): number {
    let n = 0;
    for (const c of this.clients.values()) if (c.audience === audience) n++;
    return n;
  }

  /**
   * Send one event to every client. Plain data goes to everyone as it is;
   * AudienceData gives administrators `admin` and the public `public()`,
   * made (and serialized) once, only when a public client is connected.
   */
  broadcast(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    if (!isAudienceData(data)) {
      this.send(format(event, data));
      return;
    }
    const text: Partial<Record<Audience, string>> = {};
    this.send((a) => (text[a] ??= format(event, a === 'admin' ? data.admin : data.public())));
  }

  private send(text: string | ((audience: Audience) => string)): void {
    const max = this.opts.maxBufferBytes ?? 1024 * 1024;
    for (const [res, c] of this.clients) {
      if (res.writableLength > max) {
        this.dropped_++;
        this.remove(res);
        res.destroy();
        continue;
      }
      res.write(typeof text === 'string' ? text : text(c.audience));
    }
  }

  private remove(res: ServerResponse): void {
    const c = this.clients.get(res);
    if (!c) return;
    this.clients.delete(res);
    const n = (this.perAddress.get(c.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(c.address, n);
    else this.perAddress.delete(c.address);
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const res of this.clients.keys()) res.end();
    this.clients.clear();
    this.perAddress.clear();
  }
}

const AUDIENCE_DATA = Symbol('audience data');

/** Event data that differs by audience (see broadcast). */
export function byAudience(admin: unknown, publicCopy: () => unknown): AudienceData {
  return { admin, public: publicCopy, [AUDIENCE_DATA]: true } as AudienceData;
}

function isAudienceData(d: unknown): d is AudienceData {
  return typeof d === 'object' && d !== null && AUDIENCE_DATA in d;
}

/** One SSE message; the JSON has no newlines, so it is one data line. */
export function format(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
