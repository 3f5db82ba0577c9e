/**
 * The qdiscs of a namespace with the parameters that decide their drops:
 * limits of FIFOs (txqueuelen for pfifo_fast), tbf's rate and queue, netem's
 * emulated loss and limit, fq_codel's limits and its overlimit drops, fq's
 * flow limit drops. The same RTM_GETQDISC dump the counters read
 * (rtnetlink.ts), with each qdisc's TCA_OPTIONS and extended statistics
 * decoded for the kinds a refinement rule asks about (kb/refinements.yaml).
 */
import type { QdiscFact } from '../../core/config-facts.js';
import { attrMap, parseAttrs, parseEach, type NlAttr, type NlMessage } from '../../kernel/netlink/message.js';
import type { NetlinkSocket } from '../../kernel/netlink/socket.js';
import { formatTcHandle, parseLinkMessage, parseTcMessage, linkDumpRequest, tcDumpRequest, RTM_GETLINK, RTM_GETQDISC, RTM_NEWLINK, TCA_STATS2 } from '../counters/rtnetlink.js';

const TCMSG_LEN = 20;
const IFINFOMSG_LEN = 16;
const IFLA_TXQLEN = 13;
const TCA_OPTIONS = 2;
const TCA_XSTATS = 4;
const TCA_STATS_APP = 4;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u32At = (b: Uint8Array, off: number) => (b.length >= off + 4 ? view(b).getUint32(off, true) : undefined);
const u64At = (b: Uint8Array, off: number) => (b.length >= off + 8 ? view(b).getUint32(off, true) + view(b).getUint32(off + 4, true) * 2 ** 32 : undefined);

/** Nested attributes, or none when the blob is not a run of attributes. */
function nested(data: Uint8Array | undefined): Map<number, NlAttr> {
  if (!data) return new Map();
  try {
    return attrMap(parseAttrs(data, 'qdisc options'));
  } catch {
    return new Map();
  }
}

function put(params: Record<string, number>, key: string, v: number | undefined): void {
  if (v !== undefined) params[key] = v;
}

/**
 * A qdisc kind's parameters from its TCA_OPTIONS and extended statistics
 * (struct layouts of include/uapi/linux/pkt_sched.h). Kinds not listed here
 * have none; a blob too short for its struct gives what it holds.
 */
export function qdiscParams(kind: string, options: Uint8Array | undefined, xstats: Uint8Array | undefined, txqlen?: number): Record<string, number> {
  const p: Record<string, number> = {};
  switch (kind) {
    case 'pfifo':
    case 'bfifo':
    case 'pfifo_head_drop':
      put(p, 'limit', options && u32At(options, 0)); // struct tc_fifo_qopt { __u32 limit; }
      break;
    case 'pfifo_fast':
      put(p, 'limit', txqlen); // pfifo_fast queues up to the device's txqueuelen
      break;
    case 'tbf': {
      const a = nested(options);
      const parms = a.get(1)?.data; // TCA_TBF_PARMS: struct tc_tbf_qopt { rate, peakrate (tc_ratespec, 12 B each); limit; buffer; mtu }
      if (parms) {
        put(p, 'limit', u32At(parms, 24));
        put(p, 'rate', u32At(parms, 8));
      }
      put(p, 'rate', a.get(4)?.data && u64At(a.get(4)!.data, 0)); // TCA_TBF_RATE64, bytes/s
      break;
    }
    case 'netem': {
      // struct tc_netem_qopt { latency; limit; loss; gap; duplicate; jitter } then nested TCA_NETEM_* attributes.
      if (!options) break;
      put(p, 'limit', u32At(options, 4));
      const loss = u32At(options, 8);
      if (loss !== undefined) p.loss = Math.round((loss / 0xffffffff) * 100 * 1000) / 1000;
      const a = nested(options.subarray(24));
      if (a.has(5)) p.lossModel = 1; // TCA_NETEM_LOSS: a Gilbert-Elliott or 4-state loss model
      break;
    }
    case 'fq_codel': {
      const a = nested(options);
      put(p, 'limit', a.get(2)?.data && u32At(a.get(2)!.data, 0)); // TCA_FQ_CODEL_LIMIT
      put(p, 'memoryLimit', a.get(9)?.data && u32At(a.get(9)!.data, 0)); // TCA_FQ_CODEL_MEMORY_LIMIT
      // struct tc_fq_codel_xstats { type (0: qdisc); maxpacket; drop_overlimit; ecn_mark; ...; drop_overmemory (9th) }
      if (xstats && u32At(xstats, 0) === 0) {
        put(p, 'dropOverlimit', u32At(xstats, 8));
        put(p, 'dropOvermemory', u32At(xstats, 36));
      }
      break;
    }
    case 'fq': {
      const a = nested(options);
      put(p, 'limit', a.get(1)?.data && u32At(a.get(1)!.data, 0)); // TCA_FQ_PLIMIT
      put(p, 'flowLimit', a.get(2)?.data && u32At(a.get(2)!.data, 0)); // TCA_FQ_FLOW_PLIMIT
      // struct tc_fq_qd_stats: u64 gc_flows, highprio_packets, tcp_retrans, throttled, flows_plimit (at 32) ... horizon_drops (at 88)
      if (xstats) {
        put(p, 'flowsPlimit', u64At(xstats, 32));
        put(p, 'horizonDrops', u64At(xstats, 88));
      }
      break;
    }
  }
  return p;
}

/** A qdisc message's TCA_OPTIONS and extended statistics (TCA_STATS2/TCA_STATS_APP, or the older TCA_XSTATS). */
function rawOptions(m: NlMessage): { options?: Uint8Array; xstats?: Uint8Array } {
  const a = attrMap(parseAttrs(m.payload.subarray(TCMSG_LEN), 'rtnetlink qdisc'));
  const app = nested(a.get(TCA_STATS2)?.data).get(TCA_STATS_APP)?.data;
  return { options: a.get(TCA_OPTIONS)?.data, xstats: app ?? a.get(TCA_XSTATS)?.data };
}

/** Interface names and txqueuelen by ifindex. */
function readInterfaces(sock: NetlinkSocket, errors: string[]): Map<number, { name: string; txqlen?: number }> {
  const out = new Map<number, { name: string; txqlen?: number }>();
  const msgs = sock.dump(RTM_GETLINK, linkDumpRequest(), 'dumping interfaces (RTM_GETLINK)');
  for (const m of msgs) {
    if (m.type !== RTM_NEWLINK) continue;
    const l = parseEach([m], parseLinkMessage, errors)[0];
    if (!l) continue;
    let txqlen: number | undefined;
    try {
      const t = attrMap(parseAttrs(m.payload.subarray(IFINFOMSG_LEN), 'rtnetlink link')).get(IFLA_TXQLEN);
      txqlen = t ? u32At(t.data, 0) : undefined;
    } catch {
      /* parseLinkMessage already reported a malformed message */
    }
    out.set(l.index, { name: l.name, ...(txqlen !== undefined ? { txqlen } : {}) });
  }
  return out;
}

/** An interface with a tc hook qdisc (ingress or clsact), whose filters are worth reading. */
export interface HookedInterface {
  readonly ifindex: number;
  readonly iface: string;
  /** clsact has an egress hook too. */
  readonly clsact: boolean;
}

/**
 * Every qdisc of the socket's namespace with its parameters, and the
 * interfaces with tc hooks. Throws a NetlinkError when a dump fails; a
 * malformed message is an error line.
 */
export function readQdiscFacts(sock: NetlinkSocket, errors: string[]): { qdiscs: QdiscFact[]; hooked: HookedInterface[] } {
  const links = readInterfaces(sock, errors);
  const out: QdiscFact[] = [];
  const hooked: HookedInterface[] = [];
  for (const m of sock.dump(RTM_GETQDISC, tcDumpRequest(), 'dumping qdiscs (RTM_GETQDISC)')) {
    const q = parseEach([m], parseTcMessage, errors)[0];
    if (!q) continue;
    const link = links.get(q.ifindex);
    let raw: ReturnType<typeof rawOptions> = {};
    try {
      raw = rawOptions(m);
    } catch {
      /* parseTcMessage read the same attributes: nothing more to report */
    }
    const params = qdiscParams(q.kind, raw.options, raw.xstats, link?.txqlen);
    if (q.kind === 'ingress' || q.kind === 'clsact') hooked.push({ ifindex: q.ifindex, iface: link?.name ?? `ifindex ${q.ifindex}`, clsact: q.kind === 'clsact' });
    out.push({
      iface: link?.name ?? `ifindex ${q.ifindex}`,
      kind: q.kind,
      handle: formatTcHandle(q.handle),
      parent: formatTcHandle(q.parent),
      ...(q.stats.drops !== undefined ? { drops: q.stats.drops } : {}),
      ...(Object.keys(params).length ? { params } : {}),
    });
  }
  return { qdiscs: out, hooked };
}
