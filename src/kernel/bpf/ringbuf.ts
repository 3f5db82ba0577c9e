/**
 * Consumer of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8+), read
 * from memory mapped through koffi, polled on a timer: no syscall per record.
 *
 * Mapping (kernel/bpf/ringbuf.c): at offset 0 one page holding consumer_pos,
 * mapped read-write (we advance it); at offset PAGE_SIZE the producer page
 * (producer_pos) followed by the data area mapped twice in a row, read-only,
 * so that a record that wraps around the end is still contiguous for us.
 * Each record has an 8-byte header: u32 length with BUSY (bit 31, still
 * being written) and DISCARD (bit 30) flags, then u32 page offset; records
 * are 8-byte aligned.
 */
import { DropmonError } from '../../core/errors.js';
import { loadLibc, errnoName } from './native.js';
import { BpfMap, MapType } from './syscall.js';

const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
const BUSY = 0x80000000, DISCARD = 0x40000000;
const HEADER = 8;
const PAGE = 4096;

interface Mapping {
  ptr: unknown;
  len: number;
}

export class RingBuffer {
  readonly map: BpfMap;
  private consumer: Mapping | undefined;
  private producer: Mapping | undefined;
  private consumerView: DataView;
  private producerView: DataView;
  private data: Uint8Array;
  private readonly mask: number;
  /** Records skipped because the program discarded them. */
  discarded = 0;
  /** Times a record header was impossible (the rest of the buffer was skipped). */
  corrupt = 0;

  /** `size`: data bytes, a power of two and a multiple of the page size. */
  constructor(
    readonly size: number,
    name: string,
  ) {
    if (size < PAGE || (size & (size - 1)) !== 0) throw new Error(`ring buffer size ${size} is not a power of two >= ${PAGE}`);
    this.map = new BpfMap({ type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: size, name });
    this.mask = size - 1;
    const c = loadLibc();
    try {
      this.consumer = this.mmap(PAGE, PROT_READ | PROT_WRITE, 0);
      this.producer = this.mmap(PAGE + 2 * size, PROT_READ, PAGE);
    } catch (err) {
      this.close();
      throw err;
    }
    this.consumerView = new DataView(c.koffi.view(this.consumer.ptr, PAGE));
    const prod = c.koffi.view(this.producer.ptr, PAGE + 2 * size);
    this.producerView = new DataView(prod, 0, PAGE);
    this.data = new Uint8Array(prod, PAGE, 2 * size);
  }

  private mmap(len: number, prot: number, offset: number): Mapping {
    const c = loadLibc();
    const ptr = c.mmap(len, prot, MAP_SHARED, this.map.fd, offset);
    const addr = ptr === null ? 0n : c.koffi.address(ptr);
    if (addr === 0n || addr === 0xffffffffffffffffn)
      throw new DropmonError(`cannot map the BPF ring buffer: ${errnoName(c.errno())}`);
    return { ptr, len };
  }

  /**
   * Hand every complete record to `visit` (a view valid only during the call),
   * at most `limit` of them, then release their space to the producer.
   * Returns the number of records read.
   */
  poll(visit: (record: DataView, offset: number, length: number) => void, limit = 100_000): number {
    if (!this.consumer || !this.producer) return 0;
    let cons = Number(this.consumerView.getBigUint64(0, true));
    const prod = Number(this.producerView.getBigUint64(0, true));
    const view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    let n = 0;
    while (cons < prod && n < limit) {
      const at = cons & this.mask;
      const hdr = view.getUint32(at, true);
      if (hdr & BUSY) break; // the producer is still writing this one
      const len = hdr & ~(BUSY | DISCARD);
      // A record never exceeds the buffer (the data area is mapped twice so it is contiguous);
      // a length that says otherwise is corrupt: stop rather than read past the mapping.
      if (len > this.size - HEADER) {
        this.corrupt++;
        cons = prod;
        break;
      }
      if (hdr & DISCARD) this.discarded++;
      else {
        visit(view, at + HEADER, len);
        n++;
      }
      cons += (len + HEADER + 7) & ~7;
    }
    // Release the space (the kernel reads consumer_pos with acquire semantics; x86/arm64 stores are ordered enough for a u64 write here).
    this.consumerView.setBigUint64(0, BigInt(cons), true);
    return n;
  }

  close(): void {
    const c = loadLibc();
    for (const m of [this.consumer, this.producer]) if (m) c.munmap(m.ptr, m.len);
    this.consumer = this.producer = undefined;
    this.map.close();
  }
}
