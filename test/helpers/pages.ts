/**
 * Builds ring-buffer pages in the kernel's layout for decoder tests:
 * the inverse of PageDecoder, written independently from it.
 */
export interface SyntheticDrop {
  location: bigint;
  reason: number;
  protocol: number;
}

export interface EventSlots {
  id: number;
  locationOffset: number;
  protocolOffset: number;
  /** -1 for kernels without reasons. */
  reasonOffset: number;
  /** Size of the event's data. */
  size: number;
}

/** One page: 8-byte timestamp, 8-byte commit, data; events use type_len or the length word. */
export class PageBuilder {
  private readonly words: number[] = [];

  constructor(private readonly pageSize = 4096, private readonly dataOffset = 16) {}

  get dataBytes(): number {
    return this.words.length * 4;
  }

  fits(bytes: number): boolean {
    return this.dataOffset + this.dataBytes + bytes + 8 <= this.pageSize;
  }

  drop(slots: EventSlots, d: SyntheticDrop, delta = 1, longForm = false): void {
    const data = new Uint8Array(slots.size);
    const dv = new DataView(data.buffer);
    dv.setUint16(0, slots.id, true);
    dv.setBigUint64(slots.locationOffset, d.location, true);
    dv.setUint16(slots.protocolOffset, d.protocol, true);
    if (slots.reasonOffset >= 0) dv.setUint32(slots.reasonOffset, d.reason >>> 0, true);
    this.raw(data, delta, longForm);
  }

  /** An event with arbitrary data (another event type). */
  raw(data: Uint8Array, delta = 1, longForm = false): void {
    const len = Math.ceil(data.length / 4);
    if (!longForm && len <= 28) this.words.push(((delta << 5) | len) >>> 0);
    else this.words.push((delta << 5) >>> 0, len * 4 + 4);
    const padded = new Uint8Array(len * 4);
    padded.set(data);
    const u = new Uint32Array(padded.buffer);
    for (const w of u) this.words.push(w);
  }

  timeExtend(): void {
    this.words.push(30 | (5 << 5), 123);
  }

  absoluteStamp(): void {
    this.words.push(31 | (7 << 5), 456);
  }

  padding(bytes: number): void {
    this.words.push((29 | (1 << 5)) >>> 0, bytes + 4); // the length counts its own word
    for (let i = 0; i < bytes / 4; i++) this.words.push(0);
  }

  build(flags: { missed?: boolean; missedCount?: number } = {}): Uint8Array {
    const page = new Uint8Array(this.pageSize);
    const dv = new DataView(page.buffer);
    dv.setBigUint64(0, 1000n, true);
    let commit = this.dataBytes;
    if (flags.missed) commit |= 0x80000000;
    if (flags.missedCount !== undefined) commit |= 0x40000000;
    dv.setUint32(8, commit >>> 0, true);
    this.words.forEach((w, i) => dv.setUint32(this.dataOffset + i * 4, w, true));
    if (flags.missedCount !== undefined) dv.setBigUint64(this.dataOffset + this.dataBytes, BigInt(flags.missedCount), true);
    return page;
  }
}

/** `u32` behind a proxy that notes the lowest and highest index read (a decoder must stay inside what it was given). */
export function watched(u32: Uint32Array): { view: Uint32Array; highest: () => number; lowest: () => number } {
  let highest = -1;
  let lowest = Infinity;
  const view = new Proxy(u32, {
    get(target, prop) {
      if (typeof prop === 'string' && /^\d+$/.test(prop)) {
        highest = Math.max(highest, Number(prop));
        lowest = Math.min(lowest, Number(prop));
      }
      const v: unknown = Reflect.get(target, prop);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { view, highest: () => highest, lowest: () => lowest };
}
