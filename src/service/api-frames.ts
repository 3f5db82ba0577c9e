/**
 * Framing of the channel between the monitor and the API process: a 4-byte
 * big-endian length, then the payload. Each direction has its own limit: the
 * monitor reads at most MAX_FROM_API bytes a message (small JSON), the API
 * process takes the monitor's larger ones (kernel symbols, intervals).
 *
 * node's own IPC is not used: its reader throws out of the event loop on a
 * malformed frame and buffers frames of any length, so a compromised API
 * process could crash or exhaust the root monitor through it. This reader
 * never throws on input: a frame over the limit is reported, and the caller
 * ends the channel.
 */

/** The largest message the monitor reads from the API process. */
export const MAX_FROM_API = 256 * 1024; // a request body is at most 64 KiB

export function encodeFrame(payload: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Set once a frame was over the limit: nothing more is read. */
  failed: string | undefined;

  constructor(private readonly max: number) {}

  /** The complete frames `chunk` finishes (none once failed). */
  push(chunk: Buffer): Buffer[] {
    if (this.failed) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) return frames;
      const length = this.peekLength();
      if (length > this.max) {
        this.failed = `a message of ${length} bytes (at most ${this.max})`;
        this.chunks = [];
        this.buffered = 0;
        return frames;
      }
      if (this.buffered < 4 + length) return frames;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
      frames.push(all.subarray(4, 4 + length));
      const rest = all.subarray(4 + length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
    }
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, this.buffered).subarray(0, 4);
    return head.readUInt32BE(0);
  }
}
