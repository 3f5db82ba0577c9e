/**
 * Decoder of ftrace ring-buffer pages as read from `per_cpu/cpuN/trace_pipe_raw`.
 *
 * Page: header (`events/header_page`: timestamp, commit word whose low 30 bits
 * are the data size and whose top two bits flag missed events and a stored
 * missed count) then events. Event: a 32-bit header (`events/header_event`:
 * type_len in the low bits, time delta above) then data:
 *   type_len 1..max   data of type_len*4 bytes follows the header
 *   type_len 0        the next word is the length (it included), data after it
 *   padding           next word is the length after the header; delta 0 ends the page
 *   time_extend/stamp 8 bytes, no data
 *
 * This is the hot path of the tracefs source: it reads 32-bit words from a
 * Uint32Array (every field it needs is 4-byte aligned), counts into a
 * DropTally with a run-length cache, and allocates nothing per event.
 * Malformed pages throw a ParseError after counting every event before the
 * fault, so nothing decodable is lost.
 */
import { ParseError } from '../../core/errors.js';
import { NO_REASON } from '../../core/drop.js';
import type { DropTally } from '../../core/tally.js';
import type { EventFormat, EventHeaderFormat, PageHeaderFormat } from './format.js';
import type { TrapReportTally } from './traps.js';

/** Where the fields of `skb:kfree_skb` are, in 32-bit words from the event data. */
export interface KfreeSkbLayout {
  readonly id: number;
  readonly locationWord: number;
  /** 8 on 64-bit kernels, 4 on 32-bit ones. */
  readonly locationSize: 4 | 8;
  /** -1 when the kernel has no `reason` field (before 5.17). */
  readonly reasonWord: number;
  readonly protocolWord: number;
  /** 0 when the u16 is the low half of its word, 16 when the high half. */
  readonly protocolShift: number;
  /** Smallest event data size holding every field above, in bytes. */
  readonly minBytes: number;
}

/** Where the fields of `ftrace:kernel_stack` are. */
export interface KernelStackLayout {
  readonly id: number;
  readonly sizeWord: number;
  readonly callerWord: number;
  readonly callerSize: 4 | 8;
}

function aligned(what: string, offset: number, size: number): void {
  if (offset % 4 !== 0 && !(size === 2 && offset % 2 === 0))
    throw new ParseError('event format', what, `field at offset ${offset} is not 4-byte aligned; this layout is not supported`);
}

export function kfreeSkbLayout(fmt: EventFormat): KfreeSkbLayout {
  const loc = fmt.fields.get('location');
  const proto = fmt.fields.get('protocol');
  const reason = fmt.fields.get('reason');
  if (!loc) throw new ParseError('event format', fmt.name, 'no "location" field');
  if (!proto) throw new ParseError('event format', fmt.name, 'no "protocol" field');
  if (loc.size !== 8 && loc.size !== 4) throw new ParseError('event format', 'location', `unexpected size ${loc.size}`);
  if (proto.size !== 2) throw new ParseError('event format', 'protocol', `unexpected size ${proto.size}`);
  if (reason && reason.size !== 4) throw new ParseError('event format', 'reason', `unexpected size ${reason.size}`);
  aligned('location', loc.offset, loc.size);
  aligned('protocol', proto.offset, 2);
  if (reason) aligned('reason', reason.offset, 4);
  return {
    id: fmt.id,
    locationWord: loc.offset >>> 2,
    locationSize: loc.size,
    reasonWord: reason ? reason.offset >>> 2 : -1,
    protocolWord: proto.offset >>> 2,
    protocolShift: (proto.offset & 2) * 8,
    minBytes: Math.max(loc.offset + loc.size, proto.offset + 2, reason ? reason.offset + 4 : 0),
  };
}

export function kernelStackLayout(fmt: EventFormat): KernelStackLayout {
  const size = fmt.fields.get('size');
  const caller = fmt.fields.get('caller');
  if (!size || !caller) throw new ParseError('event format', fmt.name, 'no "size" or "caller" field');
  aligned('size', size.offset, 4);
  aligned('caller', caller.offset, 4);
  const callerSize = caller.arrayLength ? caller.size / caller.arrayLength : 8;
  if (callerSize !== 8 && callerSize !== 4) throw new ParseError('event format', 'caller', `unexpected element size ${callerSize}`);
  return { id: fmt.id, sizeWord: size.offset >>> 2, callerWord: caller.offset >>> 2, callerSize };
}

const MISSED_EVENTS = 0x80000000;
const MISSED_STORED = 0x40000000;
const SIZE_MASK = 0x3fffffff;

/** What the last decoded page said about itself. */
export interface PageInfo {
  /** Bytes of event data on the page. */
  dataBytes: number;
  /** kfree_skb events counted from the page. */
  drops: number;
  /** devlink_trap_report events counted from the page (hardware drops). */
  trapReports: number;
  /** Other events (stack records are counted here too). */
  otherEvents: number;
  /** The kernel flagged events lost before this page. */
  missed: boolean;
  /** How many, when the kernel stored the count; 0 when only flagged. */
  missedCount: number;
}

export class PageDecoder {
  /** Info about the most recent page (reused object: copy what you keep). */
  readonly info: PageInfo = { dataBytes: 0, drops: 0, trapReports: 0, otherEvents: 0, missed: false, missedCount: 0 };
  private readonly typeMask: number;
  private readonly deltaShift: number;
  private readonly maxTypeLen: number;
  private readonly padding: number;
  private readonly timeExtend: number;
  private readonly timeStamp: number;
  private readonly commitWord: number;
  private readonly dataWord: number;
  /** A kfree_skb seen just before its stack record (stack mode only). */
  private pending: { lo: number; hi: number; reason: number; protocol: number } | undefined;
  /** Byte view of the last buffer decoded (trap reports hold strings). */
  private u8: Uint8Array | undefined;

  constructor(
    readonly page: PageHeaderFormat,
    header: EventHeaderFormat,
    private readonly kfree: KfreeSkbLayout,
    private readonly tally: DropTally,
    /** Set to aggregate drops by kernel stack (`--stack`). */
    private readonly stack?: KernelStackLayout,
    /** Set to count devlink_trap_report events (hardware drops) too. */
    private readonly traps?: TrapReportTally,
  ) {
    this.typeMask = (1 << header.typeLenBits) - 1;
    this.deltaShift = header.typeLenBits;
    this.maxTypeLen = header.dataMaxTypeLen;
    this.padding = header.padding;
    this.timeExtend = header.timeExtend;
    this.timeStamp = header.timeStamp;
    this.commitWord = page.commitOffset >>> 2;
    this.dataWord = page.dataOffset >>> 2;
  }

  /**
   * Decode one page that starts at byte `byteOffset` of `u32`'s buffer and of
   * which `length` bytes were read. `byteOffset` must be a multiple of 4.
   */
  decode(u32: Uint32Array, byteOffset: number, length: number): PageInfo {
    const info = this.info;
    info.dataBytes = 0;
    info.drops = 0;
    info.trapReports = 0;
    info.otherEvents = 0;
    info.missed = false;
    info.missedCount = 0;
    const dataOffset = this.page.dataOffset;
    if (length < dataOffset) throw new ParseError('ring-buffer page', `byte ${byteOffset}`, `truncated header: ${length} bytes, need ${dataOffset}`);
    if (byteOffset % 4 !== 0 || byteOffset + length > u32.byteLength) throw new RangeError('page outside the buffer or misaligned');
    const w0 = byteOffset >>> 2;
    const commit = u32[w0 + this.commitWord];
    let size = commit & SIZE_MASK;
    const avail = length - dataOffset;
    let truncated = false;
    if (size > avail) {
      truncated = true;
      size = avail;
    }
    if (commit & MISSED_EVENTS) {
      info.missed = true;
      // The count is a long after the data, when the page has room for it.
      if (commit & MISSED_STORED && !truncated && size + 4 <= avail) info.missedCount = u32[w0 + this.dataWord + (size >>> 2)];
    }
    info.dataBytes = size;

    const typeMask = this.typeMask, deltaShift = this.deltaShift, maxTypeLen = this.maxTypeLen;
    const kfree = this.kfree, kid = kfree.id;
    const stackId = this.stack ? this.stack.id : -1;
    const traps = this.traps, trapId = traps ? traps.layout.id : -1;
    let trapReports = 0;
    const tally = this.tally;
    let p = w0 + this.dataWord;
    const end = p + (size >>> 2);
    // run-length cache of the last drop point; valid within this call only
    let cLo = -1, cHi = -1, cReason = -2, cProto = -1;
    let cEntry: ReturnType<DropTally['entry']> | undefined;
    let cRun = 0;
    let drops = 0, other = 0;
    const fault = (detail: string) => {
      if (cEntry && cRun) tally.bump(cEntry, cRun);
      info.drops = drops;
      info.trapReports = trapReports;
      info.otherEvents = other;
      return new ParseError('ring-buffer page', `byte ${(p - w0) * 4}`, detail);
    };
    while (p < end) {
      const h = u32[p];
      const tl = h & typeMask;
      let d: number, next: number;
      if (tl !== 0 && tl <= maxTypeLen) {
        d = p + 1;
        next = d + tl;
      } else if (tl === 0) {
        if (p + 1 >= end) throw fault('event length word past the end of the data');
        const len = u32[p + 1];
        // The length counts its own word; an event's data holds at least its type word.
        if (len < 8 || len & 3) throw fault(`bad event length ${len}`);
        d = p + 2;
        next = p + 1 + (len >>> 2);
      } else if (tl === this.padding) {
        if (h >>> deltaShift === 0) break; // null padding: nothing more on this page
        if (p + 1 >= end) break; // padding to the end of the page
        const len = u32[p + 1];
        if (len & 3) throw fault(`bad padding length ${len}`);
        p = p + 1 + Math.max(1, len >>> 2);
        continue;
      } else if (tl === this.timeExtend || tl === this.timeStamp) {
        p += 2;
        continue;
      } else {
        throw fault(`unknown event type_len ${tl}`);
      }
      if (next > end) {
        if (truncated) break; // the read was cut inside this event: reported below
        throw fault('event runs past the end of the data');
      }
      const type = u32[d] & 0xffff;
      if (type === kid) {
        if ((next - d) * 4 < kfree.minBytes) throw fault('kfree_skb event shorter than its format');
        const lo = u32[d + kfree.locationWord] | 0;
        const hi = kfree.locationSize === 8 ? u32[d + kfree.locationWord + 1] : 0;
        const reason = kfree.reasonWord >= 0 ? u32[d + kfree.reasonWord] : NO_REASON;
        const proto = (u32[d + kfree.protocolWord] >>> kfree.protocolShift) & 0xffff;
        if (stackId >= 0) {
          if (this.pending) tally.addWithStack(this.pending.lo, this.pending.hi, this.pending.reason, this.pending.protocol, []);
          this.pending = { lo: lo >>> 0, hi, reason, protocol: proto };
        } else if (lo === cLo && reason === cReason && proto === cProto && hi === cHi) {
          cRun++;
        } else {
          if (cEntry && cRun) tally.bump(cEntry, cRun);
          cEntry = tally.entry(lo >>> 0, hi, reason, proto);
          cLo = lo;
          cHi = hi;
          cReason = reason;
          cProto = proto;
          cRun = 1;
        }
        drops++;
      } else if (type === trapId && traps) {
        try {
          traps.add(this.bytes(u32), u32.byteOffset + d * 4, (next - d) * 4);
        } catch (err) {
          if (err instanceof ParseError) throw fault(err.message);
          throw err;
        }
        trapReports++;
      } else {
        if (type === stackId && this.pending && this.stack) {
          const pend = this.pending;
          this.pending = undefined;
          tally.addWithStack(pend.lo, pend.hi, pend.reason, pend.protocol, this.readStack(u32, d, next));
        }
        other++;
      }
      p = next;
    }
    if (cEntry && cRun) tally.bump(cEntry, cRun);
    info.drops = drops;
    info.trapReports = trapReports;
    info.otherEvents = other;
    if (truncated) {
      throw new ParseError('ring-buffer page', `byte ${byteOffset}`, `truncated page: commit says ${commit & SIZE_MASK} data bytes, ${avail} were read`);
    }
    return info;
  }

  /** A byte view of the whole buffer behind `u32`, kept while the buffer is the same. */
  private bytes(u32: Uint32Array): Uint8Array {
    if (this.u8?.buffer !== u32.buffer) this.u8 = new Uint8Array(u32.buffer);
    return this.u8;
  }

  /** Count a kfree_skb still waiting for its stack record (end of a read cycle). */
  flushPending(): void {
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      this.tally.addWithStack(p.lo, p.hi, p.reason, p.protocol, []);
    }
  }

  private readStack(u32: Uint32Array, d: number, next: number): bigint[] {
    const st = this.stack!;
    if (d + st.sizeWord >= next) return []; // a record too short for its size field
    const n = u32[d + st.sizeWord];
    const stride = st.callerSize >>> 2;
    const out: bigint[] = [];
    for (let i = 0, w = d + st.callerWord; i < n && i < 64 && w + stride <= next; i++, w += stride) {
      const lo = BigInt(u32[w]);
      const addr = stride === 2 ? (BigInt(u32[w + 1]) << 32n) | lo : lo;
      if (addr === 0n) break;
      out.push(addr);
    }
    return out;
  }
}
