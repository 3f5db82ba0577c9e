/**
 * Interface and queueing-discipline counters from rtnetlink (NETLINK_ROUTE):
 *
 *   RTM_GETLINK dump     → link:<field> per interface, every field of struct
 *                          rtnl_link_stats64 (what `ip -s -s link` prints),
 *                          plus the ifindex → name/kind/promiscuity map.
 *   RTM_GETQDISC dump    → qdisc:* per qdisc (what `tc -s qdisc show invisible` prints)
 *   RTM_GETTCLASS dumps  → class:* per class (`tc -s class show dev IF`), one
 *                          dump per interface that has a classful qdisc: the
 *                          kernel dumps classes of one device at a time.
 *
 * Parsers take one netlink message and return a plain object or throw a
 * ParseError; the readers skip a malformed message (one error line) and keep
 * the others.
 */
import type { CounterReading } from '../../core/counter.js';
import { ParseError } from '../../core/errors.js';
import { attrMap, attrString, encodeAttrs, flag, parseAttrs, parseEach, type NlMessage } from '../../kernel/netlink/message.js';
import { NetlinkError, type NetlinkSocket } from '../../kernel/netlink/socket.js';

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWQDISC = 36;
export const RTM_GETQDISC = 38;
export const RTM_NEWTCLASS = 40;
export const RTM_GETTCLASS = 42;

const IFINFOMSG_LEN = 16;
const TCMSG_LEN = 20;

export const IFLA_STATS = 7;
export const IFLA_IFNAME = 3;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;
export const IFLA_STATS64 = 23;
const IFF_PROMISC = 0x100;

export const TCA_KIND = 1;
export const TCA_STATS = 3;
export const TCA_STATS2 = 7;
export const TCA_DUMP_INVISIBLE = 10;
export const TCA_STATS_BASIC = 1;
export const TCA_STATS_QUEUE = 3;
export const TCA_STATS_PKT64 = 8;

export const TC_H_ROOT = 0xffffffff;

const SOURCE = 'rtnetlink';

/**
 * The fields of struct rtnl_link_stats64 in order (include/uapi/linux/if_link.h).
 * The struct grew over the years (rx_nohandler in 4.6, rx_otherhost_dropped in
 * 5.19): a field exists when the attribute is long enough to hold it.
 * struct rtnl_link_stats (IFLA_STATS, 32-bit) has the same order without the last one.
 */
export const LINK_STATS_FIELDS = [
  'rx_packets', 'tx_packets', 'rx_bytes', 'tx_bytes', 'rx_errors', 'tx_errors', 'rx_dropped', 'tx_dropped',
  'multicast', 'collisions', 'rx_length_errors', 'rx_over_errors', 'rx_crc_errors', 'rx_frame_errors',
  'rx_fifo_errors', 'rx_missed_errors', 'tx_aborted_errors', 'tx_carrier_errors', 'tx_fifo_errors',
  'tx_heartbeat_errors', 'tx_window_errors', 'rx_compressed', 'tx_compressed', 'rx_nohandler', 'rx_otherhost_dropped',
] as const;

/** What callers want to know of an interface besides its counters. */
export interface LinkInfo {
  readonly name: string;
  /** IFLA_INFO_KIND: "veth", "bridge", "vxlan"…; absent for physical NICs and lo. */
  readonly kind?: string;
  /** IFF_PROMISC: frames for other hosts reach the stack and are dropped there (OTHERHOST). */
  readonly promiscuous: boolean;
}

export interface ParsedLink extends LinkInfo {
  readonly index: number;
  /** Field values in LINK_STATS_FIELDS order, as many as the kernel sent (none when it sent no statistics). */
  readonly stats: readonly number[];
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A u64 at `off` as a number, without a BigInt per value (dumps carry thousands). */
function u64At(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * 2 ** 32;
}

/**
 * The RTM_GETLINK dump request. No IFLA_EXT_MASK: its RTEXT_FILTER_SKIP_STATS
 * would remove exactly the statistics we want, and RTEXT_FILTER_VF would add
 * per-VF blocks (kilobytes per SR-IOV NIC) that we do not read.
 */
export function linkDumpRequest(): Uint8Array {
  return new Uint8Array(IFINFOMSG_LEN); // ifinfomsg, family AF_UNSPEC: every interface
}

/** One RTM_NEWLINK message; undefined for other message types. */
export function parseLinkMessage(m: NlMessage): ParsedLink | undefined {
  if (m.type !== RTM_NEWLINK) return undefined;
  const what = 'rtnetlink link';
  if (m.payload.length < IFINFOMSG_LEN) throw new ParseError(what, 'ifinfomsg', `${m.payload.length} bytes, need ${IFINFOMSG_LEN}`);
  const hv = view(m.payload);
  const index = hv.getInt32(4, true);
  const flags = hv.getUint32(8, true);
  const a = attrMap(parseAttrs(m.payload.subarray(IFINFOMSG_LEN), what));
  const nameAttr = a.get(IFLA_IFNAME);
  if (!nameAttr) throw new ParseError(what, `ifindex ${index}`, 'no IFLA_IFNAME');
  const name = attrString(nameAttr);
  let kind: string | undefined;
  const li = a.get(IFLA_LINKINFO);
  if (li) {
    const k = parseAttrs(li.data, 'rtnetlink linkinfo').find((x) => x.type === IFLA_INFO_KIND);
    if (k) kind = attrString(k);
  }
  const stats: number[] = [];
  const s64 = a.get(IFLA_STATS64);
  const s32 = a.get(IFLA_STATS);
  if (s64) {
    const v = view(s64.data);
    const n = Math.min(LINK_STATS_FIELDS.length, Math.floor(s64.data.length / 8));
    for (let i = 0; i < n; i++) stats.push(u64At(v, i * 8));
  } else if (s32) {
    // kernels before 2.6.35 have only the 32-bit struct (wrapping counters)
    const v = view(s32.data);
    const n = Math.min(LINK_STATS_FIELDS.length - 1, Math.floor(s32.data.length / 4));
    for (let i = 0; i < n; i++) stats.push(v.getUint32(i * 4, true));
  }
  return { index, name, ...(kind !== undefined ? { kind } : {}), promiscuous: (flags & IFF_PROMISC) !== 0, stats };
}

export function linkReadings(link: ParsedLink): CounterReading[] {
  return link.stats.map((value, i) => ({ name: `link:${LINK_STATS_FIELDS[i]}`, scope: link.name, layer: 'nic', value, source: SOURCE }));
}

/** Statistics of one qdisc or class, each present when the kernel sent it. */
export interface TcStats {
  readonly bytes?: number;
  readonly packets?: number;
  readonly drops?: number;
  readonly overlimits?: number;
  readonly requeues?: number;
  /** Bytes queued now (gauge). */
  readonly backlog?: number;
  /** Packets queued now (gauge). */
  readonly qlen?: number;
}

/** A qdisc or a class as the kernel dumps it. */
export interface TcObject {
  readonly ifindex: number;
  /** The qdisc kind ("tbf", "htb"); for a class, the kind of the qdisc that owns it. */
  readonly kind: string;
  /** The qdisc handle or the class id. */
  readonly handle: number;
  readonly parent: number;
  readonly stats: TcStats;
}

/** A tc handle as maj:min in hex ("1:0", "ffff:fff1"); the root parent as "root". */
export function formatTcHandle(h: number): string {
  if (h >>> 0 === TC_H_ROOT) return 'root';
  return `${(h >>> 16).toString(16)}:${(h & 0xffff).toString(16)}`;
}

/** The RTM_GETQDISC dump request (all devices) or RTM_GETTCLASS request for one device. */
export function tcDumpRequest(ifindex = 0): Uint8Array {
  // TCA_DUMP_INVISIBLE: also the qdiscs the kernel creates without being asked
  // (e.g. the default pfifo under each htb leaf class), which do drop packets.
  const attrs = encodeAttrs([{ type: TCA_DUMP_INVISIBLE, value: flag() }]);
  const out = new Uint8Array(TCMSG_LEN + attrs.length);
  view(out).setInt32(4, ifindex, true);
  out.set(attrs, TCMSG_LEN);
  return out;
}

function parseStats2(data: Uint8Array): TcStats {
  const s: { -readonly [K in keyof TcStats]: TcStats[K] } = {};
  for (const a of parseAttrs(data, 'tc stats2')) {
    const v = view(a.data);
    if (a.type === TCA_STATS_BASIC && a.data.length >= 12) {
      // struct gnet_stats_basic { __u64 bytes; __u32 packets; }
      s.bytes = u64At(v, 0);
      if (s.packets === undefined) s.packets = v.getUint32(8, true);
    } else if (a.type === TCA_STATS_PKT64 && a.data.length >= 8) {
      // sent beside BASIC when packets overflowed its u32 (5.10+)
      s.packets = u64At(v, 0);
    } else if (a.type === TCA_STATS_QUEUE && a.data.length >= 20) {
      // struct gnet_stats_queue { qlen, backlog, drops, requeues, overlimits } (u32 each)
      s.qlen = v.getUint32(0, true);
      s.backlog = v.getUint32(4, true);
      s.drops = v.getUint32(8, true);
      s.requeues = v.getUint32(12, true);
      s.overlimits = v.getUint32(16, true);
    }
  }
  return s;
}

/** struct tc_stats (TCA_STATS): what kernels before TCA_STATS2 (2.6.x) sent, and still do beside it. */
function parseLegacyStats(data: Uint8Array): TcStats {
  if (data.length < 36) throw new ParseError('tc stats', 'TCA_STATS', `${data.length} bytes, need 36`);
  const v = view(data);
  return {
    bytes: u64At(v, 0),
    packets: v.getUint32(8, true),
    drops: v.getUint32(12, true),
    overlimits: v.getUint32(16, true),
    qlen: v.getUint32(28, true),
    backlog: v.getUint32(32, true),
  };
}

/** One RTM_NEWQDISC or RTM_NEWTCLASS message; undefined for other message types. */
export function parseTcMessage(m: NlMessage): TcObject | undefined {
  if (m.type !== RTM_NEWQDISC && m.type !== RTM_NEWTCLASS) return undefined;
  const what = m.type === RTM_NEWQDISC ? 'rtnetlink qdisc' : 'rtnetlink class';
  if (m.payload.length < TCMSG_LEN) throw new ParseError(what, 'tcmsg', `${m.payload.length} bytes, need ${TCMSG_LEN}`);
  const hv = view(m.payload);
  const ifindex = hv.getInt32(4, true);
  const handle = hv.getUint32(8, true);
  const parent = hv.getUint32(12, true);
  const a = attrMap(parseAttrs(m.payload.subarray(TCMSG_LEN), what));
  const kindAttr = a.get(TCA_KIND);
  if (!kindAttr) throw new ParseError(what, `ifindex ${ifindex} handle ${formatTcHandle(handle)}`, 'no TCA_KIND');
  const s2 = a.get(TCA_STATS2);
  const legacy = a.get(TCA_STATS);
  let stats: TcStats = s2 ? parseStats2(s2.data) : {};
  if (stats.drops === undefined && legacy) stats = { ...parseLegacyStats(legacy.data), ...stats };
  return { ifindex, kind: attrString(kindAttr), handle, parent, stats };
}

const TC_COUNTERS = ['packets', 'bytes', 'drops', 'overlimits', 'requeues'] as const;
const TC_GAUGES = ['backlog', 'qlen'] as const;

/** qdisc:* or class:* readings of one object; `ifname` names its device. */
export function tcReadings(obj: TcObject, ifname: string, family: 'qdisc' | 'class'): CounterReading[] {
  const scope = `${ifname} ${obj.kind} ${formatTcHandle(obj.handle)} parent ${formatTcHandle(obj.parent)}`;
  const out: CounterReading[] = [];
  for (const f of TC_COUNTERS) {
    const value = obj.stats[f];
    if (value !== undefined) out.push({ name: `${family}:${f}`, scope, layer: 'qdisc', value, source: SOURCE });
  }
  for (const f of TC_GAUGES) {
    const value = obj.stats[f];
    if (value !== undefined) out.push({ name: `${family}:${f}`, scope, layer: 'qdisc', value, source: SOURCE, gauge: true });
  }
  return out;
}

/**
 * Qdiscs whose devices need no class dump: classless ones, and those whose only
 * "class" is the slot of one child qdisc (tbf, netem, red, sfb), which the
 * qdisc dump already shows. Any other kind, including ones unknown here, gets
 * its device's classes dumped.
 */
const NO_CLASS_DUMP = new Set([
  'noqueue', 'noop', 'pfifo_fast', 'pfifo', 'bfifo', 'pfifo_head_drop', 'fq', 'fq_codel', 'fq_pie', 'codel', 'pie',
  'sfq', 'cake', 'hhf', 'choke', 'gred', 'plug', 'skbprio', 'ingress', 'clsact', 'tbf', 'netem', 'red', 'sfb',
]);

/**
 * Qdiscs whose "classes" are their flow buckets, listed while packets queue in
 * them: ephemeral, and counted in the qdisc's own totals. Not reported.
 */
const FLOW_CLASSES = new Set(['fq_codel', 'sfq', 'cake']);

function ifname(links: ReadonlyMap<number, LinkInfo>, ifindex: number): string {
  return links.get(ifindex)?.name ?? `ifindex ${ifindex}`;
}

/** Interfaces and their link:* counters. Throws NetlinkError when the dump fails. */
export function readLinks(sock: NetlinkSocket, errors: string[]): { readings: CounterReading[]; links: Map<number, LinkInfo> } {
  const msgs = sock.dump(RTM_GETLINK, linkDumpRequest(), 'dumping interfaces (RTM_GETLINK)');
  const readings: CounterReading[] = [];
  const links = new Map<number, LinkInfo>();
  for (const l of parseEach(msgs, parseLinkMessage, errors)) {
    links.set(l.index, { name: l.name, ...(l.kind !== undefined ? { kind: l.kind } : {}), promiscuous: l.promiscuous });
    for (const r of linkReadings(l)) readings.push(r);
  }
  return { readings, links };
}

/**
 * qdisc:* of every qdisc, then class:* of the devices with classful qdiscs.
 * A failed class dump of one device (it vanished meanwhile) is one error line.
 */
export function readQdiscsAndClasses(sock: NetlinkSocket, links: ReadonlyMap<number, LinkInfo>, errors: string[]): CounterReading[] {
  const readings: CounterReading[] = [];
  const qdiscs = parseEach(sock.dump(RTM_GETQDISC, tcDumpRequest(), 'dumping qdiscs (RTM_GETQDISC)'), parseTcMessage, errors);
  const classful = new Set<number>();
  for (const q of qdiscs) {
    for (const r of tcReadings(q, ifname(links, q.ifindex), 'qdisc')) readings.push(r);
    if (!NO_CLASS_DUMP.has(q.kind)) classful.add(q.ifindex);
  }
  for (const ifindex of classful) {
    let msgs: NlMessage[];
    try {
      msgs = sock.dump(RTM_GETTCLASS, tcDumpRequest(ifindex), `dumping classes of ${ifname(links, ifindex)} (RTM_GETTCLASS)`);
    } catch (err) {
      if (!(err instanceof NetlinkError)) throw err;
      errors.push(err.message);
      continue;
    }
    for (const c of parseEach(msgs, parseTcMessage, errors)) {
      if (FLOW_CLASSES.has(c.kind)) continue;
      for (const r of tcReadings(c, ifname(links, c.ifindex), 'class')) readings.push(r);
    }
  }
  return readings;
}
