/**
 * An incremental parser of Server-Sent Events (the text/event-stream format):
 * chunks in, whole events out. Fields other than event, data and retry are
 * ignored, as the format says; a stream that sends an event larger than the
 * bound without ending it is an error, not a memory leak.
 */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

export class SseError extends Error {}

/** An event longer than this is refused (the service's intervals are a few hundred kB at most). */
const MAX_EVENT = 16 * 1024 * 1024;

export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  private size = 0;
  /** The reconnection delay the server asked for (ms), when it did. */
  retryMs: number | undefined;

  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    this.buf += chunk;
    for (;;) {
      const nl = this.buf.search(/\r\n|\r|\n/);
      // A lone \r at the end may be half of \r\n: wait for the next chunk.
      if (nl < 0 || (this.buf[nl] === '\r' && nl === this.buf.length - 1)) break;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf.startsWith('\r\n', nl) ? 2 : 1));
      this.line(line, out);
    }
    if (this.buf.length + this.size > MAX_EVENT) throw new SseError(`an event of more than ${MAX_EVENT} bytes`);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n') });
      this.event = '';
      this.data = [];
      this.size = 0;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') {
      this.data.push(value);
      this.size += value.length;
      if (this.size > MAX_EVENT) throw new SseError(`an event of more than ${MAX_EVENT} bytes`);
    } else if (field === 'retry' && /^\d{1,9}$/.test(value)) this.retryMs = Number(value);
  }
}
