/**
 * Server-Sent Events for the live view (GET /api/v1/events). Each event is
 * serialized once and written to every client. A client that does not read
 * (a phone asleep with the tab open, a stalled proxy) fills its socket's
 * buffer; past `maxBufferBytes` it is disconnected, so it never holds the
 * pipeline back or makes the service's memory grow. EventSource reconnects
 * by itself when the client wakes up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface SseOptions {
  /** Bytes queued for one client before it is dropped (default 1 MiB). */
  readonly maxBufferBytes?: number;
  /** Comment line sent this often so proxies keep the stream open (default 15 s). */
  readonly heartbeatMs?: number;
  /** Clients at once (default 64); more are refused with 503. */
  readonly maxClients?: number;
}

export class SseHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private dropped_ = 0;

  constructor(private readonly opts: SseOptions = {}) {
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

  /** Take over a request as an event stream; `first` events are sent at once. Returns false when full. */
  accept(req: IncomingMessage, res: ServerResponse, first: readonly { event: string; data: unknown }[] = []): boolean {
    if (this.clients.size >= (this.opts.maxClients ?? 64)) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    for (const e of first) res.write(format(e.event, e.data));
    this.clients.add(res);
    const gone = () => this.clients.delete(res);
    req.on('close', gone);
    res.on('close', gone);
    res.on('error', gone);
    return true;
  }

  /** Send one event to every client. */
  broadcast(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    this.send(format(event, data));
  }

  private send(text: string): void {
    const max = this.opts.maxBufferBytes ?? 1024 * 1024;
    for (const res of this.clients) {
      if (res.writableLength > max) {
        this.dropped_++;
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

/** One SSE message; the JSON has no newlines, so it is one data line. */
export function format(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
