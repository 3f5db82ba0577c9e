/**
 * The tc filters on the ingress and egress hooks of a namespace's
 * interfaces (those with an ingress or clsact qdisc): their classifier kind,
 * their actions, and whether an action drops. TC_INGRESS and TC_EGRESS say
 * only that a tc verdict dropped; the filters say which kind of policy it was
 * (a police rate limit, a gact drop, a BPF program), and their absence that
 * the program was attached without a tc filter (tcx, bpf links). Read over
 * rtnetlink (RTM_GETTFILTER, one dump per hook of each such interface), the
 * same way `tc filter show dev IFACE ingress` does.
 */
import type { TcFilterFact } from '../../core/config-facts.js';
import { ParseError } from '../../core/errors.js';
import { attrMap, attrString, parseAttrs, type NlAttr, type NlMessage } from '../../kernel/netlink/message.js';
import { NetlinkError, type NetlinkSocket } from '../../kernel/netlink/socket.js';

export const RTM_NEWTFILTER = 44;
export const RTM_GETTFILTER = 46;
const TCMSG_LEN = 20;
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
/** The parents of the ingress and egress hooks of an ingress or clsact qdisc (ffff:fff2, ffff:fff3). */
export const TC_PARENT = { ingress: 0xfffffff2, egress: 0xfffffff3 } as const;
/** Where each classifier keeps its actions (TCA_<KIND>_ACT of include/uapi/linux/pkt_cls.h). */
const ACT_ATTR: Readonly<Record<string, number>> = { u32: 7, bpf: 1, flower: 3, matchall: 2, basic: 3, fw: 3, route: 6, flow: 9, cgroup: 1 };
/** Where a classifier keeps its police action of the old style (TCA_<KIND>_POLICE). */
const POLICE_ATTR: Readonly<Record<string, number>> = { u32: 6, bpf: 2, basic: 4, fw: 2, route: 5, flow: 10 };
const TCA_U32_SEL = 5;
const TCA_ACT_KIND = 1;
const TCA_ACT_OPTIONS = 2;
const TCA_GACT_PARMS = 2;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** TC_ACT_SHOT: the verdict that drops. */
const TC_ACT_SHOT = 2;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A dump request for the filters of one hook of one interface. */
export function filterDumpRequest(ifindex: number, parent: number): Uint8Array {
  const out = new Uint8Array(TCMSG_LEN);
  const v = view(out);
  v.setInt32(4, ifindex, true);
  v.setUint32(12, parent >>> 0, true);
  return out;
}

function nested(a: NlAttr | undefined): Map<number, NlAttr> {
  if (!a) return new Map();
  return attrMap(parseAttrs(a.data, 'tc filter options'));
}

/** The kinds of the actions in a TCA_<KIND>_ACT nest, and whether one of them is a gact drop. */
function actions(a: NlAttr | undefined): { kinds: string[]; drops: boolean } {
  const kinds: string[] = [];
  let drops = false;
  if (!a) return { kinds, drops };
  for (const act of parseAttrs(a.data, 'tc actions')) {
    const m = attrMap(parseAttrs(act.data, 'tc action'));
    const kindAttr = m.get(TCA_ACT_KIND);
    if (!kindAttr) continue;
    const kind = attrString(kindAttr);
    kinds.push(kind);
    if (kind === 'gact') {
      // struct tc_gact { index; capab; int action; refcnt; bindcnt }
      const parms = nested(m.get(TCA_ACT_OPTIONS)).get(TCA_GACT_PARMS)?.data;
      if (parms && parms.length >= 12 && view(parms).getInt32(8, true) === TC_ACT_SHOT) drops = true;
    }
  }
  return { kinds, drops };
}

/**
 * One RTM_NEWTFILTER message as a fact; undefined for another message type or
 * a message without a kind (u32's hash tables, chain templates).
 */
export function parseFilterMessage(m: NlMessage, iface: string, direction: 'ingress' | 'egress'): TcFilterFact | undefined {
  if (m.type !== RTM_NEWTFILTER || m.payload.length < TCMSG_LEN) return undefined;
  const info = view(m.payload).getUint32(16, true);
  const a = attrMap(parseAttrs(m.payload.subarray(TCMSG_LEN), 'rtnetlink filter'));
  const kindAttr = a.get(TCA_KIND);
  if (!kindAttr) return undefined;
  const kind = attrString(kindAttr);
  const opts = nested(a.get(TCA_OPTIONS));
  // A priority's head without an instance, and u32's hash tables (no selector), are no filters.
  if (!opts.size || (kind === 'u32' && !opts.has(TCA_U32_SEL))) return undefined;
  const act = actions(ACT_ATTR[kind] !== undefined ? opts.get(ACT_ATTR[kind]) : undefined);
  const police = POLICE_ATTR[kind] !== undefined && opts.has(POLICE_ATTR[kind]);
  const fact: { -readonly [K in keyof TcFilterFact]: TcFilterFact[K] } = {
    iface,
    direction,
    kind,
    pref: info >>> 16,
    actions: police ? [...act.kinds, 'police'] : act.kinds,
  };
  if (act.drops) fact.dropAction = true;
  if (kind === 'bpf') {
    const name = opts.get(TCA_BPF_NAME);
    if (name) fact.program = attrString(name);
    const flags = opts.get(TCA_BPF_FLAGS);
    if (flags && flags.data.length >= 4 && (view(flags.data).getUint32(0, true) & TCA_BPF_FLAG_ACT_DIRECT) !== 0) fact.directAction = true;
  }
  return fact;
}

/**
 * The filters of both hooks of every interface that has an ingress or clsact
 * qdisc. A hook whose dump fails (the interface went away meanwhile) is an
 * error line; a malformed message is skipped with one.
 */
export function readTcFilters(sock: NetlinkSocket, hooked: ReadonlyArray<{ ifindex: number; iface: string; clsact: boolean }>, errors: string[]): TcFilterFact[] {
  const out: TcFilterFact[] = [];
  for (const h of hooked) {
    for (const direction of h.clsact ? (['ingress', 'egress'] as const) : (['ingress'] as const)) {
      let msgs: NlMessage[];
      try {
        msgs = sock.dump(RTM_GETTFILTER, filterDumpRequest(h.ifindex, TC_PARENT[direction]), `dumping the ${direction} filters of ${h.iface} (RTM_GETTFILTER)`);
      } catch (err) {
        if (!(err instanceof NetlinkError)) throw err;
        errors.push(err.message);
        continue;
      }
      for (const m of msgs) {
        try {
          const f = parseFilterMessage(m, h.iface, direction);
          if (f) out.push(f);
        } catch (err) {
          if (!(err instanceof ParseError)) throw err;
          errors.push(`tc filter of ${h.iface}: ${err.message}`);
        }
      }
    }
  }
  return out;
}
