/**
 * A small BTF writer for tests: describe types as objects, get the blob the
 * kernel would export. Enough kinds for the structures the BPF source reads
 * (ints, pointers, structs/unions with bitfields, enums, typedefs,
 * function prototypes), so parser tests need no 5 MB fixture.
 */
export type TypeSpec =
  | { kind: 'int'; name: string; size: number }
  | { kind: 'ptr'; to: number }
  | { kind: 'struct' | 'union'; name: string; size: number; members: Array<{ name: string; type: number; bitOffset: number; bitSize?: number }> }
  | { kind: 'enum'; name: string; size: number; values: Array<[string, number]>; signed?: boolean }
  | { kind: 'enum64'; name: string; size: number; values: Array<[string, bigint]>; signed?: boolean }
  | { kind: 'typedef'; name: string; to: number }
  | { kind: 'const'; to: number }
  | { kind: 'array'; elem: number; n: number }
  | { kind: 'func_proto'; ret: number; params: Array<{ name: string; type: number }> };

const KIND = { int: 1, ptr: 2, array: 3, struct: 4, union: 5, enum: 6, typedef: 8, const: 10, func_proto: 13, enum64: 19 } as const;

/** The string section of a BTF blob, string → offset. */
function stringsOf(blob: Uint8Array): { offsets: Map<string, number>; length: number } {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const hdr = dv.getUint32(4, true), off = dv.getUint32(16, true), len = dv.getUint32(20, true);
  const offsets = new Map<string, number>();
  let start = 0;
  for (let i = 0; i < len; i++) {
    if (blob[hdr + off + i] !== 0) continue;
    const s = Buffer.from(blob.subarray(hdr + off + start, hdr + off + i)).toString('latin1');
    if (!offsets.has(s)) offsets.set(s, start);
    start = i + 1;
  }
  return { offsets, length: len };
}

/**
 * Types are numbered from 1 in the order given, or for a split BTF on top of
 * `base` from the base's last id + 1 (type references are the caller's); a
 * split BTF uses the base's strings when it has them, as pahole's
 * deduplication does, and its own string offsets continue after the base's
 * string section.
 */
export function writeBtf(types: readonly TypeSpec[], base?: Uint8Array): Uint8Array {
  const baseStrs = base ? stringsOf(base) : undefined;
  const strs: string[] = base ? [] : [''];
  const strOff = new Map<string, number>(base ? [] : [['', 0]]);
  let strLen = base ? 0 : 1;
  const str = (s: string) => {
    const inBase = baseStrs?.offsets.get(s);
    if (inBase !== undefined) return inBase;
    let o = strOff.get(s);
    if (o === undefined) {
      o = strLen;
      strOff.set(s, o);
      strs.push(s);
      strLen += Buffer.byteLength(s) + 1;
    }
    return o + (baseStrs?.length ?? 0);
  };
  const words: number[] = [];
  const rec = (name: string, kind: number, vlen: number, kflag: boolean, sizeOrType: number) =>
    words.push(str(name), ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen, sizeOrType);
  for (const t of types) {
    switch (t.kind) {
      case 'int':
        rec(t.name, KIND.int, 0, false, t.size);
        words.push(t.size * 8); // encoding 0, offset 0, bits
        break;
      case 'ptr':
      case 'const':
        rec('', KIND[t.kind], 0, false, t.to);
        break;
      case 'typedef':
        rec(t.name, KIND.typedef, 0, false, t.to);
        break;
      case 'array':
        rec('', KIND.array, 0, false, 0);
        words.push(t.elem, 1, t.n);
        break;
      case 'struct':
      case 'union': {
        const kflag = t.members.some((m) => m.bitSize);
        rec(t.name, KIND[t.kind], t.members.length, kflag, t.size);
        for (const m of t.members) words.push(str(m.name), m.type, kflag ? ((m.bitSize ?? 0) << 24) | m.bitOffset : m.bitOffset);
        break;
      }
      case 'enum':
        rec(t.name, KIND.enum, t.values.length, t.signed ?? false, t.size);
        for (const [n, v] of t.values) words.push(str(n), v);
        break;
      case 'enum64':
        rec(t.name, KIND.enum64, t.values.length, t.signed ?? false, t.size);
        for (const [n, v] of t.values) words.push(str(n), Number(BigInt.asUintN(64, v) & 0xffffffffn), Number(BigInt.asUintN(64, v) >> 32n));
        break;
      case 'func_proto':
        rec('', KIND.func_proto, t.params.length, false, t.ret);
        for (const p of t.params) words.push(str(p.name), p.type);
        break;
    }
  }
  const typeBytes = new Uint8Array(words.length * 4);
  const dv = new DataView(typeBytes.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  const strBytes = Buffer.concat(strs.map((s) => Buffer.concat([Buffer.from(s), Buffer.of(0)])));
  const hdr = new Uint8Array(24);
  const h = new DataView(hdr.buffer);
  h.setUint16(0, 0xeb9f, true);
  hdr[2] = 1;
  h.setUint32(4, 24, true);
  h.setUint32(8, 0, true);
  h.setUint32(12, typeBytes.length, true);
  h.setUint32(16, typeBytes.length, true);
  h.setUint32(20, strBytes.length, true);
  return new Uint8Array(Buffer.concat([hdr, typeBytes, strBytes]));
}

/**
 * A miniature of the kernel types the BPF source reads: sk_buff (dev in an
 * anonymous union, a bitfield, the header offsets), net_device, possible_net_t,
 * net, ns_common, enum skb_drop_reason and the btf_trace_kfree_skb typedef.
 * `withReason: false` gives the pre-5.17 prototype (skb, location).
 */
export function kernelLikeBtf(opts: { withReason?: boolean; skbArgType?: 'sk_buff' | 'void' } = {}): Uint8Array {
  const withReason = opts.withReason ?? true;
  // ids:            1 int   2 u16  3 void*  4 sk_buff  5 anon union  6 sk_buff*  7 net_device  8 possible_net_t
  //                 9 net*  10 net  11 ns_common  12 u32  13 enum  14 proto  15 proto*  16 typedef  17 net_device*  18 u8  19 u8*
  const bits = (bytes: number) => bytes * 8;
  return writeBtf([
    { kind: 'int', name: 'int', size: 4 },
    { kind: 'int', name: 'short unsigned int', size: 2 },
    { kind: 'ptr', to: 0 },
    {
      kind: 'struct', name: 'sk_buff', size: 232, members: [
        { name: 'next', type: 6, bitOffset: 0 },
        { name: '', type: 5, bitOffset: bits(16) },
        { name: 'len', type: 12, bitOffset: bits(112) },
        { name: 'pkt_type', type: 18, bitOffset: bits(128) + 3, bitSize: 3 },
        { name: 'protocol', type: 2, bitOffset: bits(176) },
        { name: 'network_header', type: 2, bitOffset: bits(180) },
        { name: 'mac_header', type: 2, bitOffset: bits(182) },
        { name: 'tail', type: 12, bitOffset: bits(184) },
        { name: 'head', type: 19, bitOffset: bits(192) },
        { name: 'data', type: 19, bitOffset: bits(200) },
      ],
    },
    { kind: 'union', name: '', size: 8, members: [{ name: 'dev', type: 17, bitOffset: 0 }, { name: 'dev_scratch', type: 1, bitOffset: 0 }] },
    { kind: 'ptr', to: 4 },
    { kind: 'struct', name: 'net_device', size: 300, members: [{ name: 'ifindex', type: 1, bitOffset: bits(224) }, { name: 'nd_net', type: 8, bitOffset: bits(264) }] },
    { kind: 'struct', name: 'possible_net_t', size: 8, members: [{ name: 'net', type: 9, bitOffset: 0 }] },
    { kind: 'ptr', to: 10 },
    { kind: 'struct', name: 'net', size: 200, members: [{ name: 'ns', type: 11, bitOffset: bits(152) }] },
    { kind: 'struct', name: 'ns_common', size: 32, members: [{ name: 'inum', type: 12, bitOffset: bits(24) }] },
    { kind: 'int', name: 'unsigned int', size: 4 },
    { kind: 'enum', name: 'skb_drop_reason', size: 4, values: [['SKB_NOT_DROPPED_YET', 0], ['SKB_DROP_REASON_NOT_SPECIFIED', 2], ['SKB_DROP_REASON_NO_SOCKET', 3], ['SKB_DROP_REASON_MAX', 4]] },
    {
      kind: 'func_proto', ret: 0, params: [
        { name: '__data', type: 3 },
        { name: 'skb', type: opts.skbArgType === 'void' ? 3 : 6 },
        { name: 'location', type: 3 },
        ...(withReason ? [{ name: 'reason', type: 13 }] : []),
      ],
    },
    { kind: 'ptr', to: 14 },
    { kind: 'typedef', name: 'btf_trace_kfree_skb', to: 15 },
    { kind: 'ptr', to: 7 },
    { kind: 'int', name: 'unsigned char', size: 1 },
    { kind: 'ptr', to: 18 },
  ]);
}

/** Subsystem numbering of Linux 6.4-6.12 (MAC80211_MONITOR still there). */
export const SUBSYS_6_12 = { MAC80211_UNUSABLE: 1, MAC80211_MONITOR: 2, OPENVSWITCH: 3 } as const;
/** Numbering of later kernels: MAC80211_MONITOR removed, OPENVSWITCH moved down, QDISC added. */
export const SUBSYS_LATER = { MAC80211_UNUSABLE: 1, OPENVSWITCH: 2, QDISC: 3 } as const;

export const OVS_REASONS = ['OVS_DROP_LAST_ACTION', 'OVS_DROP_ACTION_ERROR', 'OVS_DROP_EXPLICIT', 'OVS_DROP_EXPLICIT_WITH_ERROR', 'OVS_DROP_METER'];
export const MAC80211_U = ['RX_DROP_U_MIC_FAIL', 'RX_DROP_U_REPLAY', 'RX_DROP_U_BAD_MMIE'];
export const MAC80211_M = ['RX_DROP_M_UNEXPECTED_4ADDR_FRAME', 'RX_DROP_M_BAD_BCN_KEYIDX'];

/**
 * A vmlinux with the drop-reason enums (core and subsystem) and the split
 * BTF of the openvswitch and mac80211 modules, shaped like the kernel's:
 * the module enums hold whole values (subsystem << 16 | code) with their
 * bounds (__OVS_DROP_REASON, OVS_DROP_MAX), and mac80211 has the ___-prefixed
 * twin enum it keeps for sparse. `subsys` numbers the subsystems.
 */
export function dropReasonBtf(subsys: Record<string, number> = SUBSYS_6_12): { vmlinux: Uint8Array; openvswitch: Uint8Array; mac80211: Uint8Array } {
  const subsysValues: Array<[string, number]> = [['SKB_DROP_REASON_SUBSYS_CORE', 0]];
  for (const [n, v] of Object.entries(subsys)) subsysValues.push([`SKB_DROP_REASON_SUBSYS_${n}`, v]);
  subsysValues.push(['SKB_DROP_REASON_SUBSYS_NUM', Math.max(...Object.values(subsys)) + 1]);
  // ids: 1 int, 2 enum skb_drop_reason, 3 enum skb_drop_reason_subsys, 4 an unrelated enum with values in the subsystem ranges
  const vmlinux = writeBtf([
    { kind: 'int', name: 'int', size: 4 },
    {
      kind: 'enum', name: 'skb_drop_reason', size: 4,
      values: [['SKB_NOT_DROPPED_YET', 0], ['SKB_CONSUMED', 1], ['SKB_DROP_REASON_NOT_SPECIFIED', 2], ['SKB_DROP_REASON_NO_SOCKET', 3], ['SKB_DROP_REASON_MAX', 4]],
    },
    { kind: 'enum', name: 'skb_drop_reason_subsys', size: 4, values: subsysValues },
    { kind: 'enum', name: 'unrelated_flags', size: 4, values: [['UNRELATED_A', 0x10001], ['UNRELATED_B', 0x20001], ['UNRELATED_C', 0x30001]] },
  ]);
  // Module ids continue at 5; "int" is the base's string, id 1 the base's type.
  const ovs = (subsys.OPENVSWITCH ?? 0) << 16;
  const openvswitch = writeBtf([
    { kind: 'typedef', name: 'int', to: 1 },
    {
      kind: 'enum', name: 'ovs_drop_reason', size: 4,
      values: [['__OVS_DROP_REASON', ovs], ...OVS_REASONS.map((n, i): [string, number] => [n, ovs + 1 + i]), ['OVS_DROP_MAX', ovs + 1 + OVS_REASONS.length]],
    },
  ], vmlinux);
  const u = (subsys.MAC80211_UNUSABLE ?? 0) << 16, m = (subsys.MAC80211_MONITOR ?? 0) << 16;
  const twin: Array<[string, number]> = [['___RX_CONTINUE', 1], ['___RX_QUEUED', 0]];
  const plain: Array<[string, number]> = [['RX_CONTINUE', 1], ['RX_QUEUED', 0]];
  if (m) {
    twin.push(['___RX_DROP_MONITOR', m], ...MAC80211_M.map((n, i): [string, number] => [`___${n}`, m + 1 + i]));
    plain.push(['RX_DROP_MONITOR', m], ...MAC80211_M.map((n, i): [string, number] => [n, m + 1 + i]));
  }
  twin.push(['___RX_DROP_UNUSABLE', u], ...MAC80211_U.map((n, i): [string, number] => [`___${n}`, u + 1 + i]));
  plain.push(...MAC80211_U.map((n, i): [string, number] => [n, u + 1 + i]));
  const mac80211 = writeBtf([
    { kind: 'enum', name: '___mac80211_drop_reason', size: 4, values: twin },
    { kind: 'enum', name: 'mac80211_drop_reason', size: 4, values: plain },
  ], vmlinux);
  return { vmlinux, openvswitch, mac80211 };
}
