/**
 * The kernel's NET_DM generic netlink protocol (include/uapi/linux/net_dropmon.h,
 * net/core/drop_monitor.c): requests, and decoders for alerts and replies.
 * Integers are host order. Requests are strict: the kernel rejects
 * output-only attributes and wrong sizes, so only the five input attributes
 * can be encoded here.
 */
import { ParseError } from '../../core/errors.js';
import { attrMap, attrString, attrU16, attrU32, attrU64, attrU8, flag, parseAttrs, u32, u8, type AttrSpec, type NlAttr } from '../../kernel/netlink/message.js';
import { genlPayload, type GenlMessage } from '../../kernel/netlink/genl.js';

export const NET_DM_FAMILY = 'NET_DM';
export const NET_DM_GROUP = 'events';
/** The family's version; the kernel ignores what clients send. */
export const NET_DM_VERSION = 2;

export const CMD = {
  ALERT: 1,
  CONFIG: 2,
  START: 3,
  STOP: 4,
  PACKET_ALERT: 5,
  CONFIG_GET: 6,
  CONFIG_NEW: 7,
  STATS_GET: 8,
  STATS_NEW: 9,
} as const;

export const ATTR = {
  UNSPEC: 0,
  ALERT_MODE: 1,
  PC: 2,
  SYMBOL: 3,
  IN_PORT: 4,
  TIMESTAMP: 5,
  PROTO: 6,
  PAYLOAD: 7,
  PAD: 8,
  TRUNC_LEN: 9,
  ORIG_LEN: 10,
  QUEUE_LEN: 11,
  STATS: 12,
  HW_STATS: 13,
  ORIGIN: 14,
  HW_TRAP_GROUP_NAME: 15,
  HW_TRAP_NAME: 16,
  HW_ENTRIES: 17,
  HW_ENTRY: 18,
  HW_TRAP_COUNT: 19,
  SW_DROPS: 20,
  HW_DROPS: 21,
  FLOW_ACTION_COOKIE: 22,
  REASON: 23,
} as const;

export const PORT_ATTR = { NETDEV_IFINDEX: 0, NETDEV_NAME: 1 } as const;
export const STATS_ATTR = { DROPPED: 0 } as const;

export type AlertMode = 'summary' | 'packet';
export const ALERT_MODE: Record<AlertMode, number> = { summary: 0, packet: 1 };

// ---- requests ------------------------------------------------------------

export interface ConfigRequest {
  readonly mode?: AlertMode;
  /** Bytes of each dropped packet to send in packet mode; 0 = all. */
  readonly truncLen?: number;
  /** Per-CPU queue of packets waiting to be sent, packet mode. */
  readonly queueLen?: number;
}

export function configRequest(c: ConfigRequest): Uint8Array {
  const attrs: AttrSpec[] = [];
  if (c.mode !== undefined) attrs.push({ type: ATTR.ALERT_MODE, value: u8(ALERT_MODE[c.mode]) });
  if (c.truncLen !== undefined) attrs.push({ type: ATTR.TRUNC_LEN, value: u32(c.truncLen) });
  if (c.queueLen !== undefined) attrs.push({ type: ATTR.QUEUE_LEN, value: u32(c.queueLen) });
  return genlPayload(CMD.CONFIG, NET_DM_VERSION, attrs);
}

export interface Origins {
  readonly sw: boolean;
  readonly hw: boolean;
}

function originFlags(o: Origins): AttrSpec[] {
  const attrs: AttrSpec[] = [];
  if (o.sw) attrs.push({ type: ATTR.SW_DROPS, value: flag() });
  if (o.hw) attrs.push({ type: ATTR.HW_DROPS, value: flag() });
  return attrs;
}

/** START for the given origins. With neither flag the kernel means software only. */
export const startRequest = (o: Origins): Uint8Array => genlPayload(CMD.START, NET_DM_VERSION, originFlags(o));
export const stopRequest = (o: Origins): Uint8Array => genlPayload(CMD.STOP, NET_DM_VERSION, originFlags(o));
export const configGetRequest = (): Uint8Array => genlPayload(CMD.CONFIG_GET, NET_DM_VERSION);
export const statsGetRequest = (): Uint8Array => genlPayload(CMD.STATS_GET, NET_DM_VERSION);

// ---- decoders ------------------------------------------------------------

export interface SummaryPoint {
  /** Drop location; 0 means "a device's rx_dropped counter moved" (NAPI heuristic). */
  readonly pc: bigint;
  readonly count: number;
}

export interface HwSummaryEntry {
  readonly trap: string;
  readonly count: number;
}

export interface SummaryAlert {
  readonly kind: 'summary';
  readonly points: readonly SummaryPoint[];
  readonly hw: readonly HwSummaryEntry[];
}

export interface PacketAlert {
  readonly kind: 'packet';
  readonly origin: 'software' | 'hardware';
  readonly pc?: bigint;
  /** The kernel's own %pS of pc (at most 39 characters, may be cut). */
  readonly symbol?: string;
  /** Reason name without SKB_DROP_REASON_. */
  readonly reason?: string;
  readonly ifindex?: number;
  readonly ifname?: string;
  /** Nanoseconds since the epoch. */
  readonly timestamp?: bigint;
  readonly origLen?: number;
  /** EtherType, host order. */
  readonly proto?: number;
  /** Packet bytes from the MAC header, possibly truncated. */
  readonly payload?: Uint8Array;
  readonly trapGroup?: string;
  readonly trapName?: string;
  readonly cookie?: Uint8Array;
}

export type Alert = SummaryAlert | PacketAlert;

const LEGACY_POINT = 12;

/** NET_DM_CMD_ALERT: the legacy struct in attribute 0, then optional HW entries. */
export function decodeSummaryAlert(g: GenlMessage): SummaryAlert {
  const attrs = parseAttrs(g.attrs, 'NET_DM alert');
  const points: SummaryPoint[] = [];
  const hw: HwSummaryEntry[] = [];
  for (const a of attrs) {
    if (a.type === ATTR.UNSPEC) {
      const d = a.data;
      if (d.length < 4) throw new ParseError('NET_DM alert', 'attribute 0', `${d.length} bytes, need 4`);
      const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
      const entries = v.getUint32(0, true);
      if (entries > 64 || 4 + entries * LEGACY_POINT > d.length)
        throw new ParseError('NET_DM alert', 'attribute 0', `${entries} drop points do not fit ${d.length} bytes`);
      for (let i = 0; i < entries; i++) {
        const o = 4 + i * LEGACY_POINT;
        points.push({ pc: v.getBigUint64(o, true), count: v.getUint32(o + 8, true) });
      }
    } else if (a.type === ATTR.HW_ENTRIES) {
      for (const e of parseAttrs(a.data, 'NET_DM hw entries')) {
        if (e.type !== ATTR.HW_ENTRY) continue;
        const m = attrMap(parseAttrs(e.data, 'NET_DM hw entry'));
        const name = m.get(ATTR.HW_TRAP_NAME), count = m.get(ATTR.HW_TRAP_COUNT);
        if (name && count) hw.push({ trap: attrString(name), count: attrU32(count, 'NET_DM hw entry') });
      }
    }
  }
  return { kind: 'summary', points, hw };
}

function port(a: NlAttr): { ifindex?: number; ifname?: string } {
  const m = attrMap(parseAttrs(a.data, 'NET_DM port'));
  const i = m.get(PORT_ATTR.NETDEV_IFINDEX), n = m.get(PORT_ATTR.NETDEV_NAME);
  return { ...(i ? { ifindex: attrU32(i, 'NET_DM port') } : {}), ...(n ? { ifname: attrString(n) } : {}) };
}

/** NET_DM_CMD_PACKET_ALERT, software or hardware. Unknown attributes are skipped. */
export function decodePacketAlert(g: GenlMessage): PacketAlert {
  const m = attrMap(parseAttrs(g.attrs, 'NET_DM packet alert'));
  const w = 'NET_DM packet alert';
  const get = <T>(t: number, f: (a: NlAttr) => T): T | undefined => {
    const a = m.get(t);
    return a ? f(a) : undefined;
  };
  const origin = get(ATTR.ORIGIN, (a) => attrU16(a, w)) === 1 ? 'hardware' : 'software';
  const p = get(ATTR.IN_PORT, port) ?? {};
  const out: { -readonly [K in keyof PacketAlert]: PacketAlert[K] } = { kind: 'packet', origin, ...p };
  const pc = get(ATTR.PC, (a) => attrU64(a, w));
  if (pc !== undefined) out.pc = pc;
  const symbol = get(ATTR.SYMBOL, attrString);
  if (symbol !== undefined) out.symbol = symbol;
  const reason = get(ATTR.REASON, attrString);
  if (reason !== undefined) out.reason = reason;
  const ts = get(ATTR.TIMESTAMP, (a) => attrU64(a, w));
  if (ts !== undefined) out.timestamp = ts;
  const ol = get(ATTR.ORIG_LEN, (a) => attrU32(a, w));
  if (ol !== undefined) out.origLen = ol;
  const proto = get(ATTR.PROTO, (a) => attrU16(a, w));
  if (proto !== undefined) out.proto = proto;
  const payload = get(ATTR.PAYLOAD, (a) => a.data);
  if (payload !== undefined) out.payload = payload;
  const tg = get(ATTR.HW_TRAP_GROUP_NAME, attrString);
  if (tg !== undefined) out.trapGroup = tg;
  const tn = get(ATTR.HW_TRAP_NAME, attrString);
  if (tn !== undefined) out.trapName = tn;
  const cookie = get(ATTR.FLOW_ACTION_COOKIE, (a) => a.data);
  if (cookie !== undefined) out.cookie = cookie;
  return out;
}

/** Decode an alert of either kind; undefined for other commands. */
export function decodeAlert(g: GenlMessage): Alert | undefined {
  if (g.cmd === CMD.ALERT) return decodeSummaryAlert(g);
  if (g.cmd === CMD.PACKET_ALERT) return decodePacketAlert(g);
  return undefined;
}

export interface NetdmConfig {
  readonly mode: AlertMode;
  readonly truncLen: number;
  readonly queueLen: number;
}

export function decodeConfig(g: GenlMessage): NetdmConfig {
  if (g.cmd !== CMD.CONFIG_NEW) throw new ParseError('NET_DM config', 'cmd', `expected CONFIG_NEW (7), got ${g.cmd}`);
  const m = attrMap(parseAttrs(g.attrs, 'NET_DM config'));
  const mode = m.get(ATTR.ALERT_MODE), trunc = m.get(ATTR.TRUNC_LEN), queue = m.get(ATTR.QUEUE_LEN);
  if (!mode || !trunc || !queue) throw new ParseError('NET_DM config', 'attributes', 'mode, truncation or queue length missing');
  const modeNum = attrU8(mode, 'NET_DM config');
  return { mode: modeNum === 1 ? 'packet' : 'summary', truncLen: attrU32(trunc, 'NET_DM config'), queueLen: attrU32(queue, 'NET_DM config') };
}

export interface NetdmStats {
  /** Packets the kernel could not queue in packet mode (per-CPU queue full), since module load. */
  readonly swDropped: bigint;
  readonly hwDropped: bigint;
}

export function decodeStats(g: GenlMessage): NetdmStats {
  if (g.cmd !== CMD.STATS_NEW) throw new ParseError('NET_DM stats', 'cmd', `expected STATS_NEW (9), got ${g.cmd}`);
  const m = attrMap(parseAttrs(g.attrs, 'NET_DM stats'));
  const dropped = (t: number): bigint => {
    const a = m.get(t);
    if (!a) return 0n;
    const d = attrMap(parseAttrs(a.data, 'NET_DM stats')).get(STATS_ATTR.DROPPED);
    return d ? attrU64(d, 'NET_DM stats') : 0n;
  };
  return { swDropped: dropped(ATTR.STATS), hwDropped: dropped(ATTR.HW_STATS) };
}
