/**
 * Netlink message and attribute codec (host byte order, 4-byte alignment),
 * shared by generic netlink (NET_DM, nlctrl, devlink, ethtool) and rtnetlink.
 * Decoders take bytes and return values or throw a ParseError that says
 * what was malformed and where; they never read outside the input.
 */
import { ParseError } from '../../core/errors.js';

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP = 0x300;
/** In an NLMSG_ERROR: the echoed request was cut to its header. */
export const NLM_F_CAPPED = 0x100;
/** In an NLMSG_ERROR: extended-ACK TLVs follow. */
export const NLM_F_ACK_TLVS = 0x200;

export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const align4 = (n: number): number => (n + 3) & ~3;

export interface NlMsgHeader {
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
}

/** One message: its header and its payload (a view into the input). */
export interface NlMessage extends NlMsgHeader {
  readonly payload: Uint8Array;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Split a datagram into netlink messages. */
export function parseMessages(buf: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  const v = dv(buf);
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const length = v.getUint32(off, true);
    if (length < NLMSG_HDRLEN || off + length > buf.length)
      throw new ParseError('netlink message', `byte ${off}`, `length ${length} does not fit the ${buf.length - off} bytes left`);
    out.push({
      length,
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      pid: v.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + length),
    });
    off += align4(length);
  }
  if (off < buf.length && buf.length - off >= 4)
    throw new ParseError('netlink message', `byte ${off}`, `${buf.length - off} trailing bytes are not a message`);
  return out;
}

/** One attribute: its type (flags masked off), whether it was marked nested, its data. */
export interface NlAttr {
  readonly type: number;
  readonly nested: boolean;
  readonly data: Uint8Array;
}

/** Parse a run of attributes. Type 0 is kept (NET_DM uses it). */
export function parseAttrs(buf: Uint8Array, what = 'netlink attributes'): NlAttr[] {
  const out: NlAttr[] = [];
  const v = dv(buf);
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = v.getUint16(off, true);
    const rawType = v.getUint16(off + 2, true);
    if (len < NLA_HDRLEN || off + len > buf.length)
      throw new ParseError(what, `byte ${off}`, `attribute length ${len} does not fit the ${buf.length - off} bytes left`);
    out.push({ type: rawType & NLA_TYPE_MASK, nested: (rawType & NLA_F_NESTED) !== 0, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

/** Attributes by type (the last one wins), for sets where each type appears once. */
export function attrMap(attrs: readonly NlAttr[]): Map<number, NlAttr> {
  const m = new Map<number, NlAttr>();
  for (const a of attrs) m.set(a.type, a);
  return m;
}

function need(a: NlAttr, size: number, what: string): DataView {
  if (a.data.length < size) throw new ParseError(what, `attribute ${a.type}`, `${a.data.length} bytes, need ${size}`);
  return dv(a.data);
}

export const attrU8 = (a: NlAttr, what = 'attribute'): number => need(a, 1, what).getUint8(0);
export const attrU16 = (a: NlAttr, what = 'attribute'): number => need(a, 2, what).getUint16(0, true);
export const attrU32 = (a: NlAttr, what = 'attribute'): number => need(a, 4, what).getUint32(0, true);
export const attrU64 = (a: NlAttr, what = 'attribute'): bigint => need(a, 8, what).getBigUint64(0, true);

/**
 * An unsigned integer of 4 or 8 bytes as a number (NLA_UINT: newer kernels
 * send counters that fit in 32 bits as u32, e.g. devlink since 6.8). Values
 * above 2^53 lose precision, which no counter rate notices.
 */
export function attrUint(a: NlAttr, what = 'attribute'): number {
  const v = dv(a.data);
  if (a.data.length === 4) return v.getUint32(0, true);
  if (a.data.length === 8) return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
  throw new ParseError(what, `attribute ${a.type}`, `${a.data.length} bytes, need 4 or 8`);
}

/** A NUL-terminated string (the NUL and anything after it dropped). */
export function attrString(a: NlAttr): string {
  const nul = a.data.indexOf(0);
  return Buffer.from(a.data.buffer, a.data.byteOffset, nul < 0 ? a.data.length : nul).toString('utf8');
}

/** The kernel's answer in an NLMSG_ERROR: 0 for an ACK, else a negative errno. */
export interface NlError {
  readonly error: number;
  /** The echoed request header. */
  readonly request?: NlMsgHeader;
  /** Extended ACK message (NETLINK_EXT_ACK), e.g. "drop_monitor: ...". */
  readonly message?: string;
  /** Extended ACK: offset of the offending attribute in the request. */
  readonly offset?: number;
}

export function parseError(m: NlMessage): NlError {
  const p = m.payload;
  if (p.length < 4) throw new ParseError('netlink error', 'payload', `${p.length} bytes, need 4`);
  const v = dv(p);
  const error = v.getInt32(0, true);
  let request: NlMsgHeader | undefined;
  let tlvStart = 4;
  if (p.length >= 4 + NLMSG_HDRLEN) {
    request = { length: v.getUint32(4, true), type: v.getUint16(8, true), flags: v.getUint16(10, true), seq: v.getUint32(12, true), pid: v.getUint32(16, true) };
    // the whole request is echoed unless CAPPED (or on success)
    tlvStart = 4 + (m.flags & NLM_F_CAPPED || error === 0 ? NLMSG_HDRLEN : align4(Math.max(request.length, NLMSG_HDRLEN)));
  }
  let message: string | undefined, offset: number | undefined;
  if (m.flags & NLM_F_ACK_TLVS && tlvStart <= p.length) {
    for (const a of parseAttrs(p.subarray(tlvStart), 'extended ack')) {
      if (a.type === NLMSGERR_ATTR_MSG) message = attrString(a);
      else if (a.type === NLMSGERR_ATTR_OFFS && a.data.length >= 4) offset = attrU32(a);
    }
  }
  return { error, ...(request ? { request } : {}), ...(message !== undefined ? { message } : {}), ...(offset !== undefined ? { offset } : {}) };
}

/**
 * The status in an NLMSG_DONE that ends a dump: 0, or the negative errno of a
 * dump that failed midway, with the kernel's extended-ACK message if any.
 */
export function parseDone(m: NlMessage): { readonly error: number; readonly message?: string } {
  if (m.payload.length < 4) return { error: 0 }; // very old kernels send an empty DONE
  const error = dv(m.payload).getInt32(0, true);
  let message: string | undefined;
  if (m.flags & NLM_F_ACK_TLVS) {
    for (const a of parseAttrs(m.payload.subarray(4), 'extended ack')) if (a.type === NLMSGERR_ATTR_MSG) message = attrString(a);
  }
  return message === undefined ? { error } : { error, message };
}

/**
 * Apply `parse` to every message of a dump and keep what it returns. A message
 * that throws a ParseError is skipped and the skips add one line to `errors`,
 * so one malformed message never hides the others.
 */
export function parseEach<T>(msgs: readonly NlMessage[], parse: (m: NlMessage) => T | undefined, errors: string[]): T[] {
  const out: T[] = [];
  let bad = 0, first = '';
  for (const m of msgs) {
    try {
      const x = parse(m);
      if (x !== undefined) out.push(x);
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      if (bad++ === 0) first = err.message;
    }
  }
  if (bad) errors.push(`${first}${bad > 1 ? ` (and ${bad - 1} more malformed messages)` : ''}`);
  return out;
}

/** An attribute to encode: raw bytes, or nested attributes. */
export type AttrValue = Uint8Array | readonly AttrSpec[];
export interface AttrSpec {
  readonly type: number;
  readonly value: AttrValue;
}

export const u8 = (v: number): Uint8Array => Uint8Array.of(v & 0xff);
export function u16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  dv(b).setUint16(0, v, true);
  return b;
}
export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  dv(b).setUint32(0, v >>> 0, true);
  return b;
}
export const flag = (): Uint8Array => new Uint8Array(0);
export const cstring = (s: string): Uint8Array => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.of(0)]);

function attrSize(a: AttrSpec): number {
  const body = a.value instanceof Uint8Array ? a.value.length : a.value.reduce((n, x) => n + align4(attrSize(x)), 0);
  return NLA_HDRLEN + body;
}

function writeAttrs(out: Uint8Array, off: number, attrs: readonly AttrSpec[]): number {
  const v = dv(out);
  for (const a of attrs) {
    const len = attrSize(a);
    v.setUint16(off, len, true);
    const nested = !(a.value instanceof Uint8Array);
    v.setUint16(off + 2, a.type | (nested ? NLA_F_NESTED : 0), true);
    if (a.value instanceof Uint8Array) out.set(a.value, off + NLA_HDRLEN);
    else writeAttrs(out, off + NLA_HDRLEN, a.value);
    off += align4(len);
  }
  return off;
}

/** Encode attributes, each padded to 4 bytes (the last one too, as the kernel and libnl do). */
export function encodeAttrs(attrs: readonly AttrSpec[]): Uint8Array {
  const total = attrs.reduce((n, a) => n + align4(attrSize(a)), 0);
  const out = new Uint8Array(total);
  writeAttrs(out, 0, attrs);
  return out;
}

/** Encode one message (header + payload). */
export function encodeMessage(h: Omit<NlMsgHeader, 'length'>, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(NLMSG_HDRLEN + payload.length);
  const v = dv(out);
  v.setUint32(0, out.length, true);
  v.setUint16(4, h.type, true);
  v.setUint16(6, h.flags, true);
  v.setUint32(8, h.seq >>> 0, true);
  v.setUint32(12, h.pid >>> 0, true);
  out.set(payload, NLMSG_HDRLEN);
  return out;
}
