/**
 * Decode the headers of a dropped packet (from its MAC header): Ethernet,
 * up to two VLAN tags, IPv4/IPv6 (IPv6 extension headers are not walked),
 * and the TCP/UDP ports or the ICMP type. Never throws: a short or odd
 * packet yields the fields that could be read.
 */
export interface PacketHeaders {
  readonly srcMac?: string;
  readonly dstMac?: string;
  readonly vlans?: readonly number[];
  /** EtherType after VLAN tags. */
  readonly ethertype?: number;
  readonly src?: string;
  readonly dst?: string;
  /** IP protocol name: tcp, udp, icmp, icmpv6, or the number. */
  readonly l4?: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly icmpType?: number;
}

const mac = (b: Uint8Array, o: number) => Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
const L4: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp', 47: 'gre' };

function ipv6(b: Uint8Array, o: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((b[o + i] << 8) | b[o + i + 1]).toString(16));
  // compress the longest run of zero groups
  const s = parts.join(':');
  const runs = s.match(/(^|:)0(:0)+(:|$)/g);
  if (!runs) return s;
  const longest = runs.reduce((a, c) => (c.length > a.length ? c : a));
  return s.replace(longest, '::');
}

/** `payload` starts at the MAC header when `hasEthernet` (NET_DM on Ethernet-like devices). */
export function decodeHeaders(payload: Uint8Array, protocol: number, hasEthernet = true): PacketHeaders {
  const b = payload;
  const out: { -readonly [K in keyof PacketHeaders]: PacketHeaders[K] } = {};
  let o = 0;
  let type = protocol;
  if (hasEthernet) {
    if (b.length < 14) return out;
    out.dstMac = mac(b, 0);
    out.srcMac = mac(b, 6);
    type = (b[12] << 8) | b[13];
    o = 14;
    const vlans: number[] = [];
    while ((type === 0x8100 || type === 0x88a8) && b.length >= o + 4 && vlans.length < 2) {
      vlans.push(((b[o] << 8) | b[o + 1]) & 0xfff);
      type = (b[o + 2] << 8) | b[o + 3];
      o += 4;
    }
    if (vlans.length) out.vlans = vlans;
  }
  out.ethertype = type;
  let proto = -1;
  if (type === 0x0800 && b.length >= o + 20) {
    const ihl = (b[o] & 0x0f) * 4;
    proto = b[o + 9];
    out.src = `${b[o + 12]}.${b[o + 13]}.${b[o + 14]}.${b[o + 15]}`;
    out.dst = `${b[o + 16]}.${b[o + 17]}.${b[o + 18]}.${b[o + 19]}`;
    const fragOff = ((b[o + 6] & 0x1f) << 8) | b[o + 7];
    o += Math.max(20, ihl);
    if (fragOff !== 0) proto = -2; // not the first fragment: no L4 header here
    else out.l4 = L4[proto] ?? String(proto);
  } else if (type === 0x86dd && b.length >= o + 40) {
    proto = b[o + 6];
    out.src = ipv6(b, o + 8);
    out.dst = ipv6(b, o + 24);
    out.l4 = L4[proto] ?? String(proto);
    o += 40;
  }
  if ((proto === 6 || proto === 17 || proto === 132) && b.length >= o + 4) {
    out.sport = (b[o] << 8) | b[o + 1];
    out.dport = (b[o + 2] << 8) | b[o + 3];
  } else if ((proto === 1 || proto === 58) && b.length >= o + 1) {
    out.icmpType = b[o];
  }
  return out;
}
