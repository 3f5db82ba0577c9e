/**
 * One snapshot of every counter family of one network namespace, and a
 * sampler that turns successive snapshots into per-interval deltas.
 *
 * The families come from two readers: /proc (snmp, netstat, softnet, conntrack,
 * neighbour tables, socket tables) and netlink (rtnetlink link and qdisc
 * statistics, ethtool, devlink traps). When both know an interface, the 64-bit
 * rtnetlink statistics win over the /proc/net/dev line (which folds several
 * fields together). Everything runs synchronously inside the namespace (see
 * src/kernel/setns.ts), so a snapshot is one consistent moment.
 */
import type { CounterDelta, CounterReading } from '../../core/counter.js';
import { diffAgainst, type CounterValues } from '../../core/counter.js';
import { withNetns, type NetnsTarget } from '../../kernel/setns.js';
import { readProcCounters } from './proc-reader.js';
import { readNetlinkCounters } from './netlink-reader.js';

export interface SnapshotOptions {
  /** The namespace to read; the calling thread's own when absent. */
  readonly netns?: NetnsTarget;
  /** Per-socket counters: of sockets with drops (default), of all, or none. */
  readonly sockets?: 'drops' | 'all' | 'none';
  /** ethtool netlink standard statistics (default on). */
  readonly ethtool?: boolean;
  /** Driver-specific `ethtool -S` counters, one ioctl round per interface (default on). */
  readonly ethtoolDriver?: boolean;
  /** devlink trap statistics (default on). */
  readonly devlink?: boolean;
}

export interface LinkInfo {
  readonly name: string;
  readonly kind?: string;
  readonly promiscuous: boolean;
}

export interface CounterSnapshot {
  /** Monotonic time of the snapshot, ms (performance.now()). */
  readonly monoMs: number;
  /** Wall-clock time, ms since the epoch. */
  readonly wallMs: number;
  /** How long taking it took, ms. */
  readonly tookMs: number;
  readonly readings: readonly CounterReading[];
  /** Interfaces by ifindex, as rtnetlink listed them. */
  readonly links: ReadonlyMap<number, LinkInfo>;
  /** Families that could not be read, one line each; the others are still there. */
  readonly errors: readonly string[];
}

export function takeSnapshot(opts: SnapshotOptions = {}): CounterSnapshot {
  const t0 = performance.now();
  return withNetns(opts.netns, () => {
    const nl = readNetlinkCounters({ ethtool: opts.ethtool ?? true, ethtoolDriver: opts.ethtoolDriver ?? true, devlink: opts.devlink ?? true });
    const proc = readProcCounters({ sockets: opts.sockets ?? 'drops' });
    const withStats64 = new Set<string>();
    for (const r of nl.readings) if (r.name.startsWith('link:')) withStats64.add(r.scope);
    const readings: CounterReading[] = nl.readings.slice();
    for (const r of proc.readings) if (!(r.name.startsWith('netdev:') && withStats64.has(r.scope))) readings.push(r);
    const t1 = performance.now();
    return {
      monoMs: t1,
      wallMs: Date.now(),
      tookMs: t1 - t0,
      readings,
      links: nl.links,
      errors: [...nl.errors, ...proc.errors],
    };
  });
}

/** The counters that moved in one interval. */
export interface CounterInterval {
  readonly deltas: readonly CounterDelta[];
  /** Seconds between the two snapshots. */
  readonly seconds: number;
  readonly snapshot: CounterSnapshot;
}

export interface SamplerOptions extends SnapshotOptions {
  /**
   * Read the device families (ethtool standard and `ethtool -S` statistics,
   * devlink traps) only every Nth sample (default 10). `ethtool -S` costs an
   * ioctl per interface (80 ms a second with 200 interfaces), and the generic
   * netlink families a socket and two family look-ups, while the link, qdisc
   * and /proc statistics read every time cost a few ms; the drops the devices
   * count also show in the link statistics.
   */
  readonly driverEvery?: number;
}

/** The device families (ethtool, devlink), read every few samples only. */
export const isDevice = (r: CounterReading) => r.name.startsWith('ethtool-S:') || r.name.startsWith('ethtool:') || r.name.startsWith('trap:') || r.name.startsWith('trap-policer:');

/**
 * Successive snapshots of one namespace. `sample()` returns what moved since
 * the previous call (nothing on the first: it only sets the baseline).
 */
export class CounterSampler {
  private previous: { values: CounterValues; monoMs: number } | undefined;
  /** The last device statistics read, and when: their deltas span their own interval. */
  private driver: { values: CounterValues; monoMs: number } | undefined;
  private samples = 0;
  private lastDevice: CounterReading[] = [];

  constructor(readonly options: SamplerOptions = {}) {}

  private readDriverNow(): boolean {
    if (this.options.ethtoolDriver === false && this.options.ethtool === false && this.options.devlink === false) return false;
    const every = Math.max(1, this.options.driverEvery ?? 10);
    return this.driver === undefined || this.samples % every === 0;
  }

  /** One snapshot, diffed against the previous one (no deltas on the first). */
  private step(): CounterInterval {
    const driverRead = this.readDriverNow();
    const o = this.options;
    const snap = takeSnapshot({
      ...o,
      ethtool: driverRead && o.ethtool !== false,
      ethtoolDriver: driverRead && o.ethtoolDriver !== false,
      devlink: driverRead && o.devlink !== false,
    });
    this.samples++;
    const general: CounterReading[] = [];
    const driver: CounterReading[] = [];
    for (const r of snap.readings) (isDevice(r) ? driver : general).push(r);
    if (driverRead) this.lastDevice = driver;
    // Between device reads the snapshot carries their last values, so that whoever shows the
    // latest readings (metrics, the API) always sees every family.
    const full: CounterSnapshot = driverRead ? snap : { ...snap, readings: [...general, ...this.lastDevice] };
    const before = this.previous;
    const seconds = before ? (snap.monoMs - before.monoMs) / 1000 : 0;
    const g = diffAgainst(before?.values, general, seconds);
    this.previous = { values: g.values, monoMs: snap.monoMs };
    const deltas = g.deltas;
    if (driverRead) {
      const d = diffAgainst(this.driver?.values, driver, this.driver ? (snap.monoMs - this.driver.monoMs) / 1000 : 0);
      deltas.push(...d.deltas);
      this.driver = { values: d.values, monoMs: snap.monoMs };
    }
    return { deltas, seconds, snapshot: full };
  }

  /** Take the baseline now (optional: the first sample() does it otherwise). */
  baseline(): CounterSnapshot {
    this.previous = undefined;
    this.driver = undefined;
    return this.step().snapshot;
  }

  sample(): CounterInterval {
    return this.step();
  }
}
