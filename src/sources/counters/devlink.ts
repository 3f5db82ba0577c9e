/**
 * Hardware drop counters of switch ASICs and smart NICs: devlink packet traps
 * (Documentation/networking/devlink/devlink-trap.rst), through the "devlink"
 * generic netlink family. One DEVLINK_CMD_TRAP_GET dump lists every trap of
 * every devlink device of this network namespace with its statistics, which
 * is what `devlink -s trap show` prints; one DEVLINK_CMD_TRAP_POLICER_GET dump
 * gives the packets the CPU-protection policers discarded.
 *
 * What the kernel counts per trap (net/devlink/trap.c):
 *   rx_packets, rx_bytes  packets the device trapped to the CPU, counted in
 *                         devlink_trap_report(). For a drop trap whose action
 *                         is "trap" these are packets the device dropped and
 *                         handed over for inspection (NET_DM reports each as a
 *                         hardware drop); the kernel frees them afterwards.
 *   rx_dropped            packets the device discarded itself without telling
 *                         the CPU (action "drop"), read from the driver's
 *                         trap_drop_counter_get(); only some drivers have it.
 * So `trap:<name>` = rx_packets + rx_dropped: the packets that hit the trap,
 * whatever its action, and it stays monotonic when the action is switched.
 * Control traps (STP, LLDP, ARP, …: packets the CPU must see) count no drops
 * and are left out. Exception traps (ttl_value_is_too_small, unresolved_neigh,
 * …) count packets the device could not forward; the kernel may still forward
 * or answer them, so the detail names the type.
 */
import type { CounterReading } from '../../core/counter.js';
import { ParseError } from '../../core/errors.js';
import { genlPayload, parseGenl, type GenlFamily } from '../../kernel/netlink/genl.js';
import { attrMap, attrString, attrU32, attrU8, attrUint, parseAttrs, parseEach, type NlAttr, type NlMessage } from '../../kernel/netlink/message.js';
import { NetlinkError, type NetlinkSocket } from '../../kernel/netlink/socket.js';

export const DEVLINK_FAMILY = 'devlink';
export const DEVLINK_GENL_VERSION = 1;

export const DEVLINK_CMD_TRAP_GET = 61;
export const DEVLINK_CMD_TRAP_NEW = 63;
export const DEVLINK_CMD_TRAP_POLICER_GET = 69;
export const DEVLINK_CMD_TRAP_POLICER_NEW = 71;

export const DEVLINK_ATTR_BUS_NAME = 1;
export const DEVLINK_ATTR_DEV_NAME = 2;
export const DEVLINK_ATTR_STATS = 129;
export const DEVLINK_ATTR_TRAP_NAME = 130;
export const DEVLINK_ATTR_TRAP_ACTION = 131;
export const DEVLINK_ATTR_TRAP_TYPE = 132;
export const DEVLINK_ATTR_TRAP_GROUP_NAME = 135;
export const DEVLINK_ATTR_TRAP_POLICER_ID = 142;
export const DEVLINK_ATTR_STATS_RX_PACKETS = 0;
export const DEVLINK_ATTR_STATS_RX_BYTES = 1;
export const DEVLINK_ATTR_STATS_RX_DROPPED = 2;

/** enum devlink_trap_action and enum devlink_trap_type, as `devlink trap show` names them. */
export const TRAP_ACTIONS = ['drop', 'trap', 'mirror'] as const;
export const TRAP_TYPES = ['drop', 'exception', 'control'] as const;

const SOURCE = 'devlink';

export interface TrapStats {
  readonly rxPackets?: number;
  readonly rxBytes?: number;
  /** Only from drivers that count what the device dropped without trapping it. */
  readonly rxDropped?: number;
}

export interface DevlinkTrap {
  /** "bus/device", e.g. "pci/0000:03:00.0", "netdevsim/netdevsim10". */
  readonly device: string;
  readonly name: string;
  readonly group: string;
  /** "drop" | "trap" | "mirror", or "action N" for a value this code does not know. */
  readonly action: string;
  /** "drop" | "exception" | "control", or "type N". */
  readonly type: string;
  readonly stats: TrapStats;
}

export interface DevlinkPolicer {
  readonly device: string;
  readonly id: number;
  readonly stats: TrapStats;
}

function parseStats(a: NlAttr | undefined): TrapStats {
  const s: { -readonly [K in keyof TrapStats]: TrapStats[K] } = {};
  if (!a) return s;
  for (const x of parseAttrs(a.data, 'devlink stats')) {
    // u64 with a pad attribute before kernel 6.8, the smallest of u32/u64 since
    if (x.type === DEVLINK_ATTR_STATS_RX_PACKETS) s.rxPackets = attrUint(x, 'devlink rx_packets');
    else if (x.type === DEVLINK_ATTR_STATS_RX_BYTES) s.rxBytes = attrUint(x, 'devlink rx_bytes');
    else if (x.type === DEVLINK_ATTR_STATS_RX_DROPPED) s.rxDropped = attrUint(x, 'devlink rx_dropped');
  }
  return s;
}

function device(a: Map<number, NlAttr>, what: string): string {
  const bus = a.get(DEVLINK_ATTR_BUS_NAME), dev = a.get(DEVLINK_ATTR_DEV_NAME);
  if (!bus || !dev) throw new ParseError(what, 'attributes', 'no bus or device name');
  return `${attrString(bus)}/${attrString(dev)}`;
}

/** One DEVLINK_CMD_TRAP_NEW message (a dump reply); undefined for other commands. */
export function parseTrapMessage(m: NlMessage): DevlinkTrap | undefined {
  const g = parseGenl(m);
  if (g.cmd !== DEVLINK_CMD_TRAP_NEW) return undefined;
  const what = 'devlink trap';
  const a = attrMap(parseAttrs(g.attrs, what));
  const name = a.get(DEVLINK_ATTR_TRAP_NAME);
  if (!name) throw new ParseError(what, 'attributes', 'no trap name');
  const group = a.get(DEVLINK_ATTR_TRAP_GROUP_NAME);
  const action = a.get(DEVLINK_ATTR_TRAP_ACTION);
  const type = a.get(DEVLINK_ATTR_TRAP_TYPE);
  const act = action ? attrU8(action, 'devlink trap action') : -1;
  const typ = type ? attrU8(type, 'devlink trap type') : -1;
  return {
    device: device(a, what),
    name: attrString(name),
    group: group ? attrString(group) : '',
    action: TRAP_ACTIONS[act] ?? `action ${act}`,
    type: TRAP_TYPES[typ] ?? `type ${typ}`,
    stats: parseStats(a.get(DEVLINK_ATTR_STATS)),
  };
}

/** One DEVLINK_CMD_TRAP_POLICER_NEW message; undefined for other commands. */
export function parsePolicerMessage(m: NlMessage): DevlinkPolicer | undefined {
  const g = parseGenl(m);
  if (g.cmd !== DEVLINK_CMD_TRAP_POLICER_NEW) return undefined;
  const what = 'devlink trap policer';
  const a = attrMap(parseAttrs(g.attrs, what));
  const id = a.get(DEVLINK_ATTR_TRAP_POLICER_ID);
  if (!id) throw new ParseError(what, 'attributes', 'no policer id');
  return { device: device(a, what), id: attrU32(id, 'devlink policer id'), stats: parseStats(a.get(DEVLINK_ATTR_STATS)) };
}

/** `trap:<name>` of a drop or exception trap (see the module comment); none for control traps. */
export function trapReadings(t: DevlinkTrap): CounterReading[] {
  if (t.type === 'control') return [];
  if (t.stats.rxPackets === undefined && t.stats.rxDropped === undefined) return [];
  const value = (t.stats.rxPackets ?? 0) + (t.stats.rxDropped ?? 0);
  const detail = `group ${t.group || '?'}, action ${t.action}, type ${t.type}`;
  return [{ name: `trap:${t.name}`, scope: t.device, layer: 'nic', value, source: SOURCE, detail }];
}

/** `trap-policer:rx_dropped`: packets a CPU-protection policer discarded (drivers that count them). */
export function policerReadings(p: DevlinkPolicer): CounterReading[] {
  if (p.stats.rxDropped === undefined) return [];
  return [{ name: 'trap-policer:rx_dropped', scope: `${p.device} policer ${p.id}`, layer: 'nic', value: p.stats.rxDropped, source: SOURCE }];
}

/** Dump `cmd`; nothing when the kernel predates it (EOPNOTSUPP). */
function dumpCmd(sock: NetlinkSocket, family: GenlFamily, cmd: number, what: string): NlMessage[] {
  try {
    return sock.dump(family.id, genlPayload(cmd, DEVLINK_GENL_VERSION), what);
  } catch (err) {
    if (err instanceof NetlinkError && (err.errno === 95 || err.errno === 524)) return [];
    throw err;
  }
}

/**
 * Trap and policer counters of every devlink device in this namespace.
 * `family` is the resolved "devlink" family. Throws NetlinkError when a dump fails.
 */
export function readDevlinkTraps(sock: NetlinkSocket, family: GenlFamily, errors: string[]): CounterReading[] {
  const out: CounterReading[] = [];
  const traps = parseEach(dumpCmd(sock, family, DEVLINK_CMD_TRAP_GET, 'dumping devlink traps'), parseTrapMessage, errors);
  for (const t of traps) for (const r of trapReadings(t)) out.push(r);
  if (!traps.length) return out; // no device has traps: no policers either
  const policers = parseEach(dumpCmd(sock, family, DEVLINK_CMD_TRAP_POLICER_GET, 'dumping devlink trap policers'), parsePolicerMessage, errors);
  for (const p of policers) for (const r of policerReadings(p)) out.push(r);
  return out;
}
