/**
 * Every counter that lives behind netlink and the ethtool ioctl, in one call:
 * rtnetlink link and qdisc/class statistics, ethtool standard and driver
 * statistics, devlink traps (see rtnetlink.ts, ethtool.ts, devlink.ts).
 *
 * Sockets are opened here and closed before returning, all on the calling
 * thread and synchronously: they belong to the network namespace the thread
 * is in when they are created, so a caller that entered another namespace
 * with setns() (src/kernel/setns.ts withNetns) reads that namespace.
 *
 * Never throws for what a host may lack or refuse: a family that is absent
 * (no devlink, a kernel without ethtool netlink) yields nothing; a failed read
 * (permission, an unexpected errno, a malformed reply) is one line in `errors`
 * and the other families are still read.
 */
import type { CounterReading } from '../../core/counter.js';
import { DropmonError, ParseError } from '../../core/errors.js';
import { resolveFamily } from '../../kernel/netlink/genl.js';
import { NETLINK_GENERIC, NETLINK_ROUTE, NetlinkError, NetlinkSocket } from '../../kernel/netlink/socket.js';
import { readDevlinkTraps, DEVLINK_FAMILY } from './devlink.js';
import { ETHTOOL_FAMILY, readDriverStatNames, readDriverStats, readStandardStats } from './ethtool.js';
import { readLinks, readQdiscsAndClasses, type LinkInfo } from './rtnetlink.js';

export type { LinkInfo } from './rtnetlink.js';

export interface NetlinkReadOptions {
  /** ethtool netlink standard statistics (`ethtool:*`); default on. */
  readonly ethtool?: boolean;
  /** Driver `ethtool -S` statistics (`ethtool-S:*`), one ioctl per interface with statistics; default on. */
  readonly ethtoolDriver?: boolean;
  /** devlink trap statistics (`trap:*`); default on. */
  readonly devlink?: boolean;
}

export interface NetlinkReadResult {
  readonly readings: CounterReading[];
  /** Interfaces by ifindex, as the RTM_GETLINK dump listed them (empty when it failed). */
  readonly links: Map<number, LinkInfo>;
  /** One line per family or object that could not be read. */
  readonly errors: string[];
}

/** Errors we expect from the kernel or its data; anything else is a bug and propagates. */
function expected(err: unknown): err is Error {
  return err instanceof NetlinkError || err instanceof ParseError || err instanceof DropmonError;
}

/** Run one family's reader; an expected failure becomes an error line prefixed with `what`. */
function attempt(what: string, errors: string[], read: () => void): void {
  try {
    read();
  } catch (err) {
    if (!expected(err)) throw err;
    errors.push(`${what}: ${err.message}`);
  }
}

export function readNetlinkCounters(opts: NetlinkReadOptions = {}): NetlinkReadResult {
  const readings: CounterReading[] = [];
  const errors: string[] = [];
  let links = new Map<number, LinkInfo>();
  const push = (rs: readonly CounterReading[]) => {
    for (const r of rs) readings.push(r);
  };

  attempt('rtnetlink', errors, () => {
    const route = new NetlinkSocket(NETLINK_ROUTE);
    try {
      const l = readLinks(route, errors);
      links = l.links;
      push(l.readings);
      attempt('qdisc statistics', errors, () => push(readQdiscsAndClasses(route, links, errors)));
    } finally {
      route.close();
    }
  });

  const ethtool = opts.ethtool ?? true, driver = opts.ethtoolDriver ?? true, devlink = opts.devlink ?? true;
  let driverNames: Map<string, string[]> | undefined;
  if (ethtool || driver || devlink) {
    attempt('generic netlink', errors, () => {
      const genl = new NetlinkSocket(NETLINK_GENERIC);
      try {
        if (ethtool || driver) {
          attempt('ethtool', errors, () => {
            const family = resolveFamily(genl, ETHTOOL_FAMILY);
            if (!family) return;
            if (ethtool) attempt('ethtool standard statistics', errors, () => push(readStandardStats(genl, family, errors)));
            if (driver && links.size) driverNames = readDriverStatNames(genl, family, errors);
          });
        }
        if (devlink) {
          attempt('devlink traps', errors, () => {
            const family = resolveFamily(genl, DEVLINK_FAMILY);
            if (family) push(readDevlinkTraps(genl, family, errors));
          });
        }
      } finally {
        genl.close();
      }
    });
  }

  if (driver && links.size) {
    attempt('ethtool -S', errors, () => push(readDriverStats([...links.values()].map((l) => l.name), errors, driverNames)));
  }
  return { readings, links, errors };
}
