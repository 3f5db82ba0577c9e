/**
 * What the drop sources cannot read from a trap report, asked of devlink:
 * each trap's type and action (the tracefs record has neither; the BPF
 * program reads the type but not the action, which lives in devlink's own
 * trap item), and which net device each devlink port is (name and ifindex).
 *
 * Two dumps (DEVLINK_CMD_TRAP_GET, DEVLINK_CMD_PORT_GET) answer every lookup;
 * they are repeated when a lookup misses (a device or trap that appeared since),
 * at most once per `minRefreshMs`, so a storm of reports of an unknown trap
 * costs one dump per second, never one per report. devlink is per network
 * namespace: devices of other namespaces are not listed, and their reports
 * keep the names the source itself read.
 */
import { ParseError } from '../../core/errors.js';
import { genlPayload, parseGenl, resolveFamily } from '../../kernel/netlink/genl.js';
import { attrMap, attrString, attrU32, parseAttrs, parseEach, type NlMessage } from '../../kernel/netlink/message.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../../kernel/netlink/socket.js';
import { DEVLINK_ATTR_BUS_NAME, DEVLINK_ATTR_DEV_NAME, DEVLINK_FAMILY, DEVLINK_GENL_VERSION, DEVLINK_CMD_TRAP_GET, parseTrapMessage } from './devlink.js';

export const DEVLINK_CMD_NEW = 3;
export const DEVLINK_CMD_PORT_GET = 5;
export const DEVLINK_CMD_PORT_NEW = 7;
export const DEVLINK_ATTR_PORT_INDEX = 3;
export const DEVLINK_ATTR_PORT_NETDEV_IFINDEX = 6;
export const DEVLINK_ATTR_PORT_NETDEV_NAME = 7;

export interface DevlinkPort {
  /** "bus/device". */
  readonly device: string;
  readonly index: number;
  readonly ifindex?: number;
  readonly netdev?: string;
}

/**
 * One port of a DEVLINK_CMD_PORT_GET dump; undefined for other messages.
 * Older kernels (6.1) answer the dump with DEVLINK_CMD_NEW, newer ones (6.12)
 * with DEVLINK_CMD_PORT_NEW.
 */
export function parsePortMessage(m: NlMessage): DevlinkPort | undefined {
  const g = parseGenl(m);
  if (g.cmd !== DEVLINK_CMD_PORT_NEW && g.cmd !== DEVLINK_CMD_NEW) return undefined;
  const what = 'devlink port';
  const a = attrMap(parseAttrs(g.attrs, what));
  const bus = a.get(DEVLINK_ATTR_BUS_NAME), dev = a.get(DEVLINK_ATTR_DEV_NAME), index = a.get(DEVLINK_ATTR_PORT_INDEX);
  if (!bus || !dev || !index) throw new ParseError(what, 'attributes', 'no bus, device or port index');
  const ifindex = a.get(DEVLINK_ATTR_PORT_NETDEV_IFINDEX), netdev = a.get(DEVLINK_ATTR_PORT_NETDEV_NAME);
  return {
    device: `${attrString(bus)}/${attrString(dev)}`,
    index: attrU32(index, what),
    ...(ifindex ? { ifindex: attrU32(ifindex, what) } : {}),
    ...(netdev ? { netdev: attrString(netdev) } : {}),
  };
}

export interface TrapDetails {
  readonly device: string;
  readonly type: string;
  readonly action: string;
  readonly group: string;
}

/** The lookups a source makes; tests give their own table. */
export interface TrapCatalog {
  /** A device's trap, by the device's "bus/device" name. */
  trap(device: string, name: string): TrapDetails | undefined;
  /** The ifindex of a device's port net device, by its name. */
  portIfindex(device: string, netdev: string): number | undefined;
  /** A trap by name on the device owning the net device `ifindex` (of this namespace). */
  trapOnPort(ifindex: number, name: string): TrapDetails | undefined;
}

export interface DevlinkListing {
  readonly traps: ReadonlyArray<TrapDetails & { readonly name: string }>;
  readonly ports: readonly DevlinkPort[];
}

/** Dump the traps and ports of every devlink device of this namespace; empty without devlink. */
export function listDevlink(errors: string[]): DevlinkListing {
  const sock = new NetlinkSocket(NETLINK_GENERIC);
  try {
    const family = resolveFamily(sock, DEVLINK_FAMILY);
    if (!family) return { traps: [], ports: [] };
    const traps = parseEach(sock.dump(family.id, genlPayload(DEVLINK_CMD_TRAP_GET, DEVLINK_GENL_VERSION), 'dumping devlink traps'), parseTrapMessage, errors);
    if (!traps.length) return { traps: [], ports: [] };
    const ports = parseEach(sock.dump(family.id, genlPayload(DEVLINK_CMD_PORT_GET, DEVLINK_GENL_VERSION), 'dumping devlink ports'), parsePortMessage, errors);
    return { traps: traps.map((t) => ({ device: t.device, name: t.name, type: t.type, action: t.action, group: t.group })), ports };
  } finally {
    sock.close();
  }
}

/** A TrapCatalog over the running kernel's devlink, refreshed on misses. */
export class DevlinkCatalog implements TrapCatalog {
  private traps = new Map<string, TrapDetails>();
  private ports = new Map<string, number>();
  private portDevice = new Map<number, string>();
  private last = -Infinity;
  private warned = false;

  constructor(
    private readonly opts: {
      readonly minRefreshMs?: number;
      readonly warn?: (message: string) => void;
      /** The listing; injectable for tests. */
      readonly list?: (errors: string[]) => DevlinkListing;
    } = {},
  ) {}

  private refresh(): boolean {
    const now = performance.now();
    if (now - this.last < (this.opts.minRefreshMs ?? 1000)) return false;
    this.last = now;
    const errors: string[] = [];
    try {
      const l = (this.opts.list ?? listDevlink)(errors);
      this.traps = new Map(l.traps.map((t) => [`${t.device}\0${t.name}`, { device: t.device, type: t.type, action: t.action, group: t.group }]));
      this.ports = new Map();
      this.portDevice = new Map();
      for (const p of l.ports) {
        if (p.netdev !== undefined && p.ifindex !== undefined) this.ports.set(`${p.device}\0${p.netdev}`, p.ifindex);
        if (p.ifindex !== undefined) this.portDevice.set(p.ifindex, p.device);
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
    if (errors.length && !this.warned) {
      this.warned = true;
      this.opts.warn?.(`devlink: ${errors[0]}; trap types and actions may be missing`);
    }
    return true;
  }

  private get<T>(read: () => T | undefined): T | undefined {
    const v = read();
    if (v !== undefined) return v;
    return this.refresh() ? read() : undefined;
  }

  trap(device: string, name: string): TrapDetails | undefined {
    return this.get(() => this.traps.get(`${device}\0${name}`));
  }

  portIfindex(device: string, netdev: string): number | undefined {
    return this.get(() => this.ports.get(`${device}\0${netdev}`));
  }

  trapOnPort(ifindex: number, name: string): TrapDetails | undefined {
    return this.get(() => {
      const device = this.portDevice.get(ifindex);
      return device === undefined ? undefined : this.traps.get(`${device}\0${name}`);
    });
  }
}
