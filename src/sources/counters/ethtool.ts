/**
 * NIC counters through ethtool, in its two interfaces:
 *
 * 1. Standard statistics (IEEE 802.3 MAC/PHY/MAC-control, RMON), through the
 *    "ethtool" generic netlink family (5.13+): one ETHTOOL_MSG_STATS_GET dump
 *    for every device → `ethtool:<name>` (FrameCheckSequenceErrors,
 *    SymbolErrorDuringCarrier, …: the kernel's own string sets, which is what
 *    `ethtool -S IF --all-groups` prints). Drivers that do not implement a
 *    group (veth, lo, virtio_net) report nothing for it.
 * 2. Driver-specific statistics (`ethtool -S IF`), which have no netlink
 *    interface: the SIOCETHTOOL ioctls ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS and
 *    ETHTOOL_GSTATS on an AF_INET datagram socket, three per interface →
 *    `ethtool-S:<string>`. Sockets and ioctls act in the network namespace
 *    of the thread that opened the socket.
 *
 * Pause-frame statistics (ETHTOOL_MSG_PAUSE_GET) are not read: pause frames
 * are flow control, not drops.
 */
import { loadLibc } from '../../kernel/libc.js';
import type { CounterReading } from '../../core/counter.js';
import { DropmonError, ParseError } from '../../core/errors.js';
import { genlPayload, parseGenl, type GenlFamily } from '../../kernel/netlink/genl.js';
import { attrMap, attrString, attrU32, flag, parseAttrs, parseEach, u32, type AttrSpec, type NlMessage } from '../../kernel/netlink/message.js';
import { NetlinkError, errnoName, type NetlinkSocket } from '../../kernel/netlink/socket.js';

export const ETHTOOL_FAMILY = 'ethtool';
export const ETHTOOL_GENL_VERSION = 1;

export const ETHTOOL_MSG_STRSET_GET = 1;
export const ETHTOOL_MSG_STATS_GET = 32;
export const ETHTOOL_MSG_STRSET_GET_REPLY = 1;
export const ETHTOOL_MSG_STATS_GET_REPLY = 33;

export const ETHTOOL_A_HEADER_DEV_INDEX = 1;
export const ETHTOOL_A_HEADER_DEV_NAME = 2;

export const ETHTOOL_A_BITSET_NOMASK = 1;
export const ETHTOOL_A_BITSET_SIZE = 2;
export const ETHTOOL_A_BITSET_VALUE = 4;

export const ETHTOOL_A_STRSET_HEADER = 1;
export const ETHTOOL_A_STRSET_STRINGSETS = 2;
export const ETHTOOL_A_STRINGSETS_STRINGSET = 1;
export const ETHTOOL_A_STRINGSET_ID = 1;
export const ETHTOOL_A_STRINGSET_STRINGS = 3;
export const ETHTOOL_A_STRINGS_STRING = 1;
export const ETHTOOL_A_STRING_INDEX = 1;
export const ETHTOOL_A_STRING_VALUE = 2;

export const ETHTOOL_A_STATS_HEADER = 2;
export const ETHTOOL_A_STATS_GROUPS = 3;
export const ETHTOOL_A_STATS_GRP = 4;
export const ETHTOOL_A_STATS_GRP_ID = 2;
export const ETHTOOL_A_STATS_GRP_SS_ID = 3;
export const ETHTOOL_A_STATS_GRP_STAT = 4;

/** The string set of the driver statistics (`ethtool -S`). */
export const ETH_SS_STATS = 1;

/** The groups of ETHTOOL_MSG_STATS_GET (enum ethtool_stats_grp) and the string set naming each one's counters. */
export const STATS_GROUPS = [
  { id: 0, name: 'eth-phy', stringSet: 17 },
  { id: 1, name: 'eth-mac', stringSet: 18 },
  { id: 2, name: 'eth-ctrl', stringSet: 19 },
  { id: 3, name: 'rmon', stringSet: 20 },
] as const;

const NETLINK_SOURCE = 'ethtool netlink';
const IOCTL_SOURCE = 'ethtool ioctl';

/** A u64 at `off` as a number. */
function u64At(b: Uint8Array, off: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * 2 ** 32;
}

/**
 * A request header naming no device: every device in a dump, the kernel's
 * global string sets in STRSET_GET. Kernels before 6.5 refuse a request
 * without a header ("request header missing"), even when it names nothing.
 */
const EMPTY_HEADER = (type: number): AttrSpec => ({ type, value: [] });

/** ETHTOOL_MSG_STRSET_GET for the global string sets `ids` (no device: the names are the kernel's, not a driver's). */
export function stringSetsRequest(ids: readonly number[]): Uint8Array {
  return genlPayload(ETHTOOL_MSG_STRSET_GET, ETHTOOL_GENL_VERSION, [
    EMPTY_HEADER(ETHTOOL_A_STRSET_HEADER),
    {
      type: ETHTOOL_A_STRSET_STRINGSETS,
      value: ids.map((id) => ({ type: ETHTOOL_A_STRINGSETS_STRINGSET, value: [{ type: ETHTOOL_A_STRINGSET_ID, value: u32(id) }] })),
    },
  ]);
}

/** String set id → strings by index, from an ETHTOOL_MSG_STRSET_GET_REPLY. */
export function parseStringSets(m: NlMessage): Map<number, Map<number, string>> {
  const g = parseGenl(m);
  const out = new Map<number, Map<number, string>>();
  if (g.cmd !== ETHTOOL_MSG_STRSET_GET_REPLY) return out;
  const sets = attrMap(parseAttrs(g.attrs, 'ethtool strset')).get(ETHTOOL_A_STRSET_STRINGSETS);
  if (!sets) return out;
  for (const set of parseAttrs(sets.data, 'ethtool stringsets')) {
    if (set.type !== ETHTOOL_A_STRINGSETS_STRINGSET) continue;
    const sa = attrMap(parseAttrs(set.data, 'ethtool stringset'));
    const id = sa.get(ETHTOOL_A_STRINGSET_ID);
    const strings = sa.get(ETHTOOL_A_STRINGSET_STRINGS);
    if (!id) continue;
    const names = new Map<number, string>();
    if (strings) {
      for (const s of parseAttrs(strings.data, 'ethtool strings')) {
        const x = attrMap(parseAttrs(s.data, 'ethtool string'));
        const i = x.get(ETHTOOL_A_STRING_INDEX), v = x.get(ETHTOOL_A_STRING_VALUE);
        if (i && v) names.set(attrU32(i, 'ethtool string index'), attrString(v));
      }
    }
    out.set(attrU32(id, 'ethtool stringset id'), names);
  }
  return out;
}

/**
 * The `ethtool -S` names of one device, from a reply of the ETHTOOL_MSG_STRSET_GET
 * dump for ETH_SS_STATS (stringSetsRequest([ETH_SS_STATS]) sent as a dump):
 * an empty list when its driver has no statistics.
 */
export function parseDeviceStatNames(m: NlMessage): { readonly ifname: string; readonly names: string[] } | undefined {
  const g = parseGenl(m);
  if (g.cmd !== ETHTOOL_MSG_STRSET_GET_REPLY) return undefined;
  const hdr = attrMap(parseAttrs(g.attrs, 'ethtool strset')).get(ETHTOOL_A_STRSET_HEADER);
  const name = hdr && attrMap(parseAttrs(hdr.data, 'ethtool header')).get(ETHTOOL_A_HEADER_DEV_NAME);
  if (!name) throw new ParseError('ethtool strset', 'header', 'no device name');
  const byIndex = parseStringSets(m).get(ETH_SS_STATS) ?? new Map<number, string>();
  let n = 0;
  for (const i of byIndex.keys()) n = Math.max(n, i + 1);
  if (n > 1 << 20) throw new ParseError('ethtool strset', 'strings', `string index ${n - 1}`);
  return { ifname: attrString(name), names: uniqueNames(Array.from({ length: n }, (_, i) => byIndex.get(i) ?? '')) };
}

/**
 * The `ethtool -S` names of every device in one netlink dump (ifname → names),
 * so that reading the values takes one ioctl per interface instead of three.
 * Undefined when the kernel cannot say (no ethtool netlink, before 5.6): the
 * ioctls then ask each driver.
 */
export function readDriverStatNames(sock: NetlinkSocket, family: GenlFamily, errors: string[]): Map<string, string[]> | undefined {
  let replies: NlMessage[];
  try {
    replies = sock.dump(family.id, stringSetsRequest([ETH_SS_STATS]), 'dumping ethtool -S names');
  } catch (err) {
    if (err instanceof NetlinkError) return undefined;
    throw err;
  }
  return new Map(parseEach(replies, parseDeviceStatNames, errors).map((d) => [d.ifname, d.names]));
}

/** ETHTOOL_MSG_STATS_GET (sent as a dump: every device) for all four groups, as a compact bitset. */
export function statsRequest(): Uint8Array {
  const mask = STATS_GROUPS.reduce((m, g) => m | (1 << g.id), 0);
  const groups: AttrSpec[] = [
    { type: ETHTOOL_A_BITSET_NOMASK, value: flag() },
    { type: ETHTOOL_A_BITSET_SIZE, value: u32(STATS_GROUPS.length) },
    { type: ETHTOOL_A_BITSET_VALUE, value: u32(mask) },
  ];
  return genlPayload(ETHTOOL_MSG_STATS_GET, ETHTOOL_GENL_VERSION, [EMPTY_HEADER(ETHTOOL_A_STATS_HEADER), { type: ETHTOOL_A_STATS_GROUPS, value: groups }]);
}

/** One device's standard statistics. */
export interface StandardStats {
  readonly ifindex: number;
  readonly ifname: string;
  readonly stats: readonly { readonly group: number; readonly stringSet: number; readonly index: number; readonly value: number }[];
}

/**
 * One ETHTOOL_MSG_STATS_GET_REPLY. Each counter is a nest (ETHTOOL_A_STATS_GRP_STAT)
 * holding one u64 attribute whose type is the counter's index in the group's
 * string set; counters the driver does not maintain are left out by the kernel.
 * RMON histograms (frame size buckets, not drops) are skipped.
 */
export function parseStatsReply(m: NlMessage): StandardStats | undefined {
  const g = parseGenl(m);
  if (g.cmd !== ETHTOOL_MSG_STATS_GET_REPLY) return undefined;
  const what = 'ethtool stats';
  const attrs = parseAttrs(g.attrs, what);
  const hdr = attrs.find((a) => a.type === ETHTOOL_A_STATS_HEADER);
  if (!hdr) throw new ParseError(what, 'attributes', 'no ETHTOOL_A_STATS_HEADER');
  const h = attrMap(parseAttrs(hdr.data, 'ethtool header'));
  const idx = h.get(ETHTOOL_A_HEADER_DEV_INDEX), name = h.get(ETHTOOL_A_HEADER_DEV_NAME);
  if (!idx || !name) throw new ParseError(what, 'header', 'no device index or name');
  const stats: { group: number; stringSet: number; index: number; value: number }[] = [];
  for (const grp of attrs) {
    if (grp.type !== ETHTOOL_A_STATS_GRP) continue;
    const ga = parseAttrs(grp.data, 'ethtool stats group');
    const gm = attrMap(ga);
    const gid = gm.get(ETHTOOL_A_STATS_GRP_ID), ssid = gm.get(ETHTOOL_A_STATS_GRP_SS_ID);
    if (!gid || !ssid) throw new ParseError(what, 'group', 'no group id or string set id');
    const group = attrU32(gid, 'ethtool stats group id'), stringSet = attrU32(ssid, 'ethtool stats string set');
    for (const st of ga) {
      if (st.type !== ETHTOOL_A_STATS_GRP_STAT) continue;
      for (const v of parseAttrs(st.data, 'ethtool stat')) {
        if (v.data.length !== 8) throw new ParseError(what, `stat ${v.type}`, `${v.data.length} bytes, need 8`);
        stats.push({ group, stringSet, index: v.type, value: u64At(v.data, 0) });
      }
    }
  }
  return { ifindex: attrU32(idx, 'ethtool dev index'), ifname: attrString(name), stats };
}

/** `ethtool:<name>` readings of one device; `names` are the kernel's string sets (see parseStringSets). */
export function standardReadings(s: StandardStats, names: ReadonlyMap<number, ReadonlyMap<number, string>>): CounterReading[] {
  return s.stats.map((x) => {
    const group = STATS_GROUPS.find((g) => g.id === x.group)?.name ?? `group${x.group}`;
    const name = names.get(x.stringSet)?.get(x.index) ?? `${group}#${x.index}`;
    return { name: `ethtool:${name}`, scope: s.ifname, layer: 'nic', value: x.value, source: NETLINK_SOURCE };
  });
}

/**
 * Standard statistics of every device. `family` is the resolved "ethtool"
 * family. Kernels before 5.13 have the family without STATS_GET (EOPNOTSUPP):
 * nothing, no error. Malformed replies are skipped, one line in `errors`.
 */
export function readStandardStats(sock: NetlinkSocket, family: GenlFamily, errors: string[]): CounterReading[] {
  let replies: NlMessage[];
  try {
    replies = sock.dump(family.id, statsRequest(), 'dumping ethtool standard statistics');
  } catch (err) {
    if (err instanceof NetlinkError && (err.errno === 95 || err.errno === 524)) return [];
    throw err;
  }
  const devices = parseEach(replies, parseStatsReply, errors).filter((d) => d.stats.length > 0);
  if (!devices.length) return []; // the common case (no NIC implements them): no string set request
  let names = new Map<number, Map<number, string>>();
  try {
    const r = sock.request(family.id, 0, stringSetsRequest(STATS_GROUPS.map((g) => g.stringSet)), 'reading ethtool string sets');
    const m = r.find((x) => x.type === family.id);
    if (m) names = parseStringSets(m);
  } catch (err) {
    if (!(err instanceof NetlinkError || err instanceof ParseError)) throw err;
    errors.push(`${err.message}: standard statistics are named by index`);
  }
  return devices.flatMap((d) => standardReadings(d, names));
}

// ---- driver statistics: the SIOCETHTOOL ioctl ----

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const SIOCETHTOOL = 0x8946;
const ETHTOOL_GSTRINGS = 0x1b;
const ETHTOOL_GSTATS = 0x1d;
const ETHTOOL_GSSET_INFO = 0x37;
const ETH_GSTRING_LEN = 32;
const IFNAMSIZ = 16;
const IFREQ_LEN = 40;
const IFR_DATA_OFFSET = 16;
const EOPNOTSUPP = 95, ENODEV = 19, EINTR = 4;

interface IoctlLibc {
  socket(domain: number, type: number, protocol: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  close(fd: number): number;
  errno(): number;
  /** Unmanaged memory whose address can be put in a struct (ifr_data). */
  alloc(size: number): { address: bigint; bytes: Uint8Array; free(): void };
}

let ioctlLibc: IoctlLibc | undefined;

function loadIoctlLibc(): IoctlLibc {
  if (ioctlLibc) return ioctlLibc;
  const { koffi, lib } = loadLibc('ethtool ioctls');
  const socket = lib.func('int socket(int, int, int)') as (a: number, b: number, c: number) => number;
  // ioctl() is variadic: declared so, the call follows the variadic convention
  const ioctlv = lib.func('int ioctl(int, unsigned long, ...)') as (a: number, b: number, t: string, c: Uint8Array) => number;
  const ioctl = (fd: number, request: number, arg: Uint8Array) => ioctlv(fd, request, 'uint8_t *', arg);
  const close = lib.func('int close(int)') as (a: number) => number;
  ioctlLibc = {
    socket,
    ioctl,
    close,
    errno: () => koffi.errno(),
    alloc: (size) => {
      const ptr: unknown = koffi.alloc('uint8_t', size);
      return { address: koffi.address(ptr), bytes: new Uint8Array(koffi.view(ptr, size)), free: () => koffi.free(ptr) };
    },
  };
  return ioctlLibc;
}

/** One driver counter of `ethtool -S`. */
export interface DriverStat {
  readonly name: string;
  readonly value: number;
}

/**
 * Driver statistics with one datagram socket and one buffer, for as many
 * interfaces as needed; `close()` frees both.
 *
 * The buffer is larger than the counters need: kernels without the fix of
 * December 2025 (6.19 and its stable backports) write as many strings or
 * values as the driver counts at the time of the ioctl, not as many as we
 * asked for, so a device gaining queues between two ioctls would otherwise
 * write past it. The headroom (4×, at least 1 MiB) covers any realistic
 * change. Fixed kernels answer a mismatch with a count of 0; either way a
 * count other than ours makes us read the names again.
 */
export class EthtoolDriverStats {
  private readonly c: IoctlLibc;
  private fd: number;
  private buf: ReturnType<IoctlLibc['alloc']> | undefined;
  private readonly ifr = new Uint8Array(IFREQ_LEN);

  constructor() {
    this.c = loadIoctlLibc();
    this.fd = this.c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (this.fd < 0) throw new DropmonError(`cannot open a socket for ethtool ioctls: ${errnoName(this.c.errno())}`);
  }

  private buffer(size: number): ReturnType<IoctlLibc['alloc']> {
    if (!this.buf || this.buf.bytes.length < size) {
      this.buf?.free();
      this.buf = this.c.alloc(Math.max(1 << 20, size * 4));
    }
    return this.buf;
  }

  /** The ioctl on `ifname` with the buffer as ifr_data: 0, or a positive errno. */
  private call(ifname: string, buf: ReturnType<IoctlLibc['alloc']>): number {
    this.ifr.fill(0);
    this.ifr.set(Buffer.from(ifname, 'utf8').subarray(0, IFNAMSIZ - 1));
    new DataView(this.ifr.buffer).setBigUint64(IFR_DATA_OFFSET, buf.address, true);
    for (;;) {
      if (this.c.ioctl(this.fd, SIOCETHTOOL, this.ifr) === 0) return 0;
      const e = this.c.errno();
      if (e !== EINTR) return e;
    }
  }

  /** How many ETH_SS_STATS strings `ifname` has; 0 when its driver has none. */
  private count(ifname: string): number {
    const b = this.buffer(0);
    const v = new DataView(b.bytes.buffer, b.bytes.byteOffset, 24);
    v.setUint32(0, ETHTOOL_GSSET_INFO, true);
    v.setUint32(4, 0, true);
    v.setBigUint64(8, 1n << BigInt(ETH_SS_STATS), true);
    v.setUint32(16, 0, true);
    const e = this.call(ifname, b);
    if (e === EOPNOTSUPP || e === ENODEV) return 0;
    if (e) throw new NetlinkError(`ethtool GSSET_INFO on ${ifname}`, e);
    // the kernel clears the bits of the sets the driver lacks
    return v.getBigUint64(8, true) & (1n << BigInt(ETH_SS_STATS)) ? v.getUint32(16, true) : 0;
  }

  /**
   * `ethtool -S ifname`: undefined when the driver has no statistics or the
   * interface is gone; throws NetlinkError on another ioctl failure and
   * ParseError when the counters changed while they were read twice in a row.
   * With `names` (see readDriverStatNames) one ioctl reads the values; when
   * the driver's count no longer matches them, its names are read again.
   */
  read(ifname: string, names?: readonly string[]): DriverStat[] | undefined {
    if (Buffer.byteLength(ifname) >= IFNAMSIZ) throw new ParseError('ethtool -S', ifname, 'interface name too long');
    if (names?.length) {
      const b = this.buffer(8 + names.length * 8);
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset, 8);
      v.setUint32(0, ETHTOOL_GSTATS, true);
      v.setUint32(4, names.length, true);
      const e = this.call(ifname, b);
      if (e === ENODEV || e === EOPNOTSUPP) return undefined;
      if (e) throw new NetlinkError(`ethtool GSTATS on ${ifname}`, e);
      if (v.getUint32(4, true) === names.length) return names.map((name, i) => ({ name, value: u64At(b.bytes, 8 + i * 8) }));
    }
    for (let attempt = 0; ; attempt++) {
      const n = this.count(ifname);
      if (!n) return undefined;
      const b = this.buffer(12 + n * ETH_GSTRING_LEN);
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
      v.setUint32(0, ETHTOOL_GSTRINGS, true);
      v.setUint32(4, ETH_SS_STATS, true);
      v.setUint32(8, n, true);
      let e = this.call(ifname, b);
      if (e === ENODEV || e === EOPNOTSUPP) return undefined;
      if (e) throw new NetlinkError(`ethtool GSTRINGS on ${ifname}`, e);
      const nStrings = v.getUint32(8, true);
      const names = nStrings === n ? stringTable(b.bytes.subarray(12, 12 + n * ETH_GSTRING_LEN), n) : [];
      v.setUint32(0, ETHTOOL_GSTATS, true);
      v.setUint32(4, n, true);
      e = this.call(ifname, b);
      if (e === ENODEV || e === EOPNOTSUPP) return undefined;
      if (e) throw new NetlinkError(`ethtool GSTATS on ${ifname}`, e);
      const nStats = v.getUint32(4, true);
      if (nStrings === n && nStats === n) return names.map((name, i) => ({ name, value: u64At(b.bytes, 8 + i * 8) }));
      if (attempt > 0) throw new ParseError('ethtool -S', ifname, `the driver's counter count changed while read (${n}, ${nStrings}, ${nStats})`);
    }
  }

  close(): void {
    this.buf?.free();
    this.buf = undefined;
    if (this.fd >= 0) {
      this.c.close(this.fd);
      this.fd = -1;
    }
  }
}

/** The names in an ETH_SS_STATS string table of the ioctl (n NUL-padded 32-byte strings). */
export function stringTable(bytes: Uint8Array, n: number): string[] {
  const raw: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = bytes.subarray(i * ETH_GSTRING_LEN, Math.min(bytes.length, (i + 1) * ETH_GSTRING_LEN));
    const nul = s.indexOf(0);
    raw.push(Buffer.from(s.buffer, s.byteOffset, nul < 0 ? s.length : nul).toString('utf8'));
  }
  return uniqueNames(raw);
}

/**
 * Counter names as keys: some drivers pad names with spaces, and a few repeat
 * a name; repeats get "#2", "#3" and empty names "#index", so that every
 * counter of an interface has its own key.
 */
export function uniqueNames(raw: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return raw.map((r, i) => {
    const name = r.trim() || `#${i}`;
    const k = (seen.get(name) ?? 0) + 1;
    seen.set(name, k);
    return k > 1 ? `${name}#${k}` : name;
  });
}

/**
 * `ethtool-S:<name>` readings of interfaces `ifnames`; failures of one
 * interface are one error line each. `names` (readDriverStatNames) saves two
 * ioctls per interface, and all three for drivers without statistics.
 */
export function readDriverStats(ifnames: Iterable<string>, errors: string[], names?: ReadonlyMap<string, readonly string[]>): CounterReading[] {
  const out: CounterReading[] = [];
  const io = new EthtoolDriverStats();
  try {
    for (const ifname of ifnames) {
      const known = names?.get(ifname);
      if (known && !known.length) continue; // the driver has no statistics
      let stats: DriverStat[] | undefined;
      try {
        stats = io.read(ifname, known);
      } catch (err) {
        if (!(err instanceof NetlinkError || err instanceof ParseError)) throw err;
        errors.push(err.message);
        continue;
      }
      for (const s of stats ?? []) out.push({ name: `ethtool-S:${s.name}`, scope: ifname, layer: 'driver', value: s.value, source: IOCTL_SOURCE });
    }
  } finally {
    io.close();
  }
  return out;
}
