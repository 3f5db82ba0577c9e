/**
 * The counter model: kernel statistics that count drops (and the errors and
 * pressure around them), read from /proc, rtnetlink, ethtool and devlink.
 *
 * Counter names are the knowledge base's keys (kb/counters.yaml), one
 * convention for every family so that `explain`, `diagnose` and the
 * correlation in `watch` can find them:
 *
 *   Udp:RcvbufErrors, TcpExt:ListenOverflows, Udp6:InErrors  /proc/net/snmp, netstat, snmp6 ("Block:Field")
 *   link:rx_dropped, link:rx_missed_errors                    rtnetlink IFLA_STATS64 (struct rtnl_link_stats64 field names)
 *   netdev:rx_drop, netdev:rx_fifo                            /proc/net/dev columns (fallback when rtnetlink fails)
 *   softnet:dropped, softnet:time_squeeze                     /proc/net/softnet_stat columns
 *   conntrack:drop, conntrack:count, conntrack:max            /proc/net/stat/nf_conntrack header names, nf_conntrack_count/max
 *   arp_cache:unresolved_discards, ndisc_cache:table_fulls    /proc/net/stat/arp_cache, ndisc_cache header names
 *   qdisc:drops, qdisc:overlimits, qdisc:requeues, qdisc:backlog, class:drops   rtnetlink TCA_STATS2
 *   ethtool:<name>                                            ethtool netlink standard statistics (e.g. ethtool:FrameCheckSequenceErrors)
 *   ethtool-S:<name>                                          driver-specific `ethtool -S` strings
 *   socket:drops, socket:rx_queue                             /proc/net/udp, udp6, raw, raw6, icmp, icmp6 per socket
 *   trap:<trap name>                                          devlink trap statistics (rx_dropped of that trap)
 */

/** Where in the stack a counter sits; `dropmon counters` groups by it, in this order. */
export const COUNTER_LAYERS = ['nic', 'driver', 'softnet', 'qdisc', 'ip', 'tcp', 'udp', 'socket', 'netfilter', 'neighbour'] as const;
export type CounterLayer = (typeof COUNTER_LAYERS)[number];

/** One reading of one counter instance. */
export interface CounterReading {
  /** Knowledge-base key, see above. */
  readonly name: string;
  /**
   * The instance: an interface ("veth0"), a CPU ("cpu1"), a qdisc ("veth0 tbf 1:0"),
   * a socket ("udp 127.0.0.1:9999 inode 1234"), a trap's device ("netdevsim/netdevsim10");
   * "" for counters of the whole namespace.
   */
  readonly scope: string;
  readonly layer: CounterLayer;
  /** The value; counters above 2^53 lose precision, which no rate computation notices. */
  readonly value: number;
  /** Where it was read from, for JSON and for the next engineer: "/proc/net/snmp", "rtnetlink". */
  readonly source: string;
  /** Gauges (queue lengths, conntrack:count) are levels, not totals: no deltas or rates. */
  readonly gauge?: boolean;
  /** Extra context for a scope, e.g. the process owning a socket ("pid 123 (named)"). */
  readonly detail?: string;
  /**
   * The kernel keeps this counter for the whole host, not per network
   * namespace (softnet_stat, the neighbour tables' statistics): every
   * namespace reads the same value, so a move says nothing about one of them.
   */
  readonly hostWide?: boolean;
  /**
   * The inode of the network namespace the reading was taken in; absent for
   * dropmon's own namespace. Host-wide counters are read once, in dropmon's
   * own namespace, and carry none.
   */
  readonly netns?: number;
}

/**
 * A unique key of a counter instance, for joining two snapshots: equal
 * counters of two namespaces never merge.
 */
export function readingKey(r: Pick<CounterReading, 'name' | 'scope' | 'netns'>): string {
  const key = r.scope ? `${r.name}@${r.scope}` : r.name;
  return r.netns !== undefined ? `${r.netns}/${key}` : key;
}

/** How a counter moved between two snapshots. */
export interface CounterDelta extends CounterReading {
  /** value(now) - value(before); for gauges, the level now minus the level before. */
  readonly delta: number;
  /** delta per second. */
  readonly rate: number;
  /** The counter went backwards (interface re-created, module reloaded): delta counts from zero. */
  readonly reset?: boolean;
}

/**
 * What moved from `before` to `now`, `seconds` apart. Totals that went down
 * were reset, so their whole value counts. Instances present only in `now`
 * (a new interface, a new socket) count from zero; vanished ones are ignored.
 * Gauges appear when their level changed.
 */
export function diffReadings(before: readonly CounterReading[], now: readonly CounterReading[], seconds: number): CounterDelta[] {
  return diffAgainst(before.length ? diffAgainst(undefined, before, 0).values : undefined, now, seconds).deltas;
}

/**
 * The values of a snapshot by instance key, for diffing the next one against
 * it without rebuilding keys. Zero totals are left out: a counter at zero
 * cannot have moved, and one that leaves zero later counts from zero, which
 * is what an absent entry means. On a host with hundreds of interfaces most
 * counters are zero, so this keeps a per-second sampler cheap.
 */
export type CounterValues = Map<string, number>;

export function diffAgainst(
  before: CounterValues | undefined,
  now: readonly CounterReading[],
  seconds: number,
): { deltas: CounterDelta[]; values: CounterValues } {
  const values: CounterValues = new Map();
  const deltas: CounterDelta[] = [];
  const per = seconds > 0 ? 1 / seconds : 0;
  for (const r of now) {
    if (r.value === 0 && !r.gauge) continue;
    const key = readingKey(r);
    values.set(key, r.value);
    if (!before) continue;
    const p = before.get(key);
    if (r.gauge) {
      if (p !== undefined && p !== r.value) deltas.push({ ...r, delta: r.value - p, rate: (r.value - p) * per });
    } else if (p === undefined) {
      deltas.push({ ...r, delta: r.value, rate: r.value * per });
    } else if (r.value < p) {
      deltas.push({ ...r, delta: r.value, rate: r.value * per, reset: true });
    } else if (r.value > p) {
      deltas.push({ ...r, delta: r.value - p, rate: (r.value - p) * per });
    }
  }
  return { deltas, values };
}
