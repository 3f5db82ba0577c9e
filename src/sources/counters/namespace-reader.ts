/**
 * The counters of one network namespace other than dropmon's own, read
 * cheaply enough that hundreds of namespaces can be read every interval.
 *
 * Most namespaces of a host are idle most of the time, and a snapshot of
 * every family costs about 2 ms (a setns, a dozen /proc files, two netlink
 * dumps, parsing ~450 counters). So each read starts with a probe:
 * /proc/net/dev, opened inside the namespace once and held (a /proc/net file
 * keeps the namespace it was opened in), read again with pread, about 10 µs.
 * Any packet through any interface of the namespace changes it. Only when it
 * changed, on the first read, when asked (`force`: the namespace had drops,
 * or it went away and this is its final read), and every `fullEvery`th read
 * whatever the probe says (a counter that moves with no packet counted on an
 * interface: a qdisc dropping every packet sent, whose drops the drop
 * sources see anyway, or conntrack's gauges), is the namespace read in full: entered with setns() by its
 * held descriptor, its /proc files read (a file whose text did not change is
 * not parsed again: nothing in it moved), the socket tables when the SNMP
 * files changed, rtnetlink link and qdisc statistics, and the device families
 * (ethtool, devlink) every `driverEvery`th full read.
 *
 * Deltas span the time since the previous full read. Readings are tagged
 * with the namespace's inode; counters the kernel keeps per host (softnet,
 * the neighbour tables) are not read here: dropmon's own namespace reads them.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { diffAgainst, type CounterDelta, type CounterReading, type CounterValues } from '../../core/counter.js';
import { errnoCode } from '../../core/errors.js';
import { withNetns, type NetnsTarget } from '../../kernel/setns.js';
import { readNetlinkCounters } from './netlink-reader.js';
import { parseProcFile, PROC_NET_FILES, readConntrackGauges } from './proc-reader.js';
import { findSocketOwners, parseSocketTable, SOCKET_TABLES, socketReadings } from './sockets.js';
import { isDevice } from './snapshot.js';

const PROC_NET = '/proc/thread-self/net';
const PROBE = 'dev';
/** The files read in full reads: per namespace, and not the probe (the link statistics come from rtnetlink). */
const FILES = PROC_NET_FILES.filter((f) => !f.hostWide);
/** Files whose change means packets reached sockets: the socket tables are read then. */
const SOCKET_SIGNS = new Set(['snmp', 'snmp6']);

export interface NamespaceReaderOptions {
  /** A full read every Nth read even when the probe saw nothing (default 60; namespaces take turns). */
  readonly fullEvery?: number;
  /** ethtool and devlink every Nth full read (default 10); 0: never. */
  readonly driverEvery?: number;
}

export interface NamespaceRead {
  /** What moved since the previous full read, tagged with the namespace. */
  readonly deltas: CounterDelta[];
  /** What could not be read, each line naming the namespace. */
  readonly errors: string[];
  /** Whether it was read in full (false: the probe saw no change). */
  readonly full: boolean;
}

interface Group {
  values: CounterValues;
  readings: CounterReading[];
}

const buffer = Buffer.alloc(64 * 1024);

/** The whole of a held /proc file, read from its start (seq files regenerate at offset 0). */
function readHeld(fd: number): string {
  let text = '';
  let pos = 0;
  for (;;) {
    const n = readSync(fd, buffer, 0, buffer.length, pos);
    if (n <= 0) return text;
    text += buffer.toString('latin1', 0, n);
    pos += n;
  }
}

export class NamespaceReader {
  private probeFd: number | undefined;
  private probeText: string | undefined;
  /** The text of each /proc file at the last full read, and what it held. */
  private readonly texts = new Map<string, string>();
  private readonly groups = new Map<string, Group>();
  private reads = 0;
  private fullReads = 0;
  /** performance.now() of the last full read; undefined before the first (the baseline). */
  private lastFull: number | undefined;
  private readonly fullEvery: number;
  private readonly driverEvery: number;

  constructor(
    readonly inode: number,
    private readonly target: NetnsTarget,
    /** How the namespace is named in error lines: "netns blue". */
    private readonly label: string,
    o: NamespaceReaderOptions = {},
  ) {
    this.fullEvery = Math.max(1, o.fullEvery ?? 60);
    this.driverEvery = Math.max(0, o.driverEvery ?? 10);
  }

  /** The non-zero readings (and gauges) of the last full reads, tagged. */
  readings(): CounterReading[] {
    const out: CounterReading[] = [];
    for (const g of this.groups.values()) for (const r of g.readings) out.push(r);
    return out;
  }

  /** Read the namespace: a probe, and a full read when it is due (see the module comment). Throws when the namespace cannot be entered. */
  read(force = false): NamespaceRead {
    const errors: string[] = [];
    this.probeFd ??= withNetns(this.target, () => openSync(`${PROC_NET}/${PROBE}`, 'r'));
    const probe = readHeld(this.probeFd);
    // The periodic full reads of namespaces take turns (by inode), not all in one interval.
    const due = this.lastFull === undefined || force || probe !== this.probeText || (this.reads + this.inode) % this.fullEvery === 0;
    this.reads++;
    this.probeText = probe;
    if (!due) return { deltas: [], errors, full: false };
    const now = performance.now();
    const seconds = this.lastFull === undefined ? 0 : (now - this.lastFull) / 1000;
    const baseline = this.lastFull === undefined;
    const deltas: CounterDelta[] = [];
    const update = (key: string, readings: readonly CounterReading[]) => {
      const tagged: CounterReading[] = [];
      for (const r of readings) if (r.value !== 0 || r.gauge) tagged.push({ ...r, netns: this.inode });
      const before = this.groups.get(key)?.values;
      // A group seen for the first time after the baseline (a module loaded since) counts from zero.
      const d = diffAgainst(baseline ? undefined : (before ?? new Map()), tagged, seconds);
      for (const x of d.deltas) deltas.push(x);
      this.groups.set(key, { values: d.values, readings: tagged });
      return d.deltas;
    };
    const driverNow = this.driverEvery > 0 && this.fullReads % this.driverEvery === 0;
    this.fullReads++;
    withNetns(this.target, () => {
      let sockets = baseline;
      for (const f of FILES) {
        if (f.rel === PROBE) continue;
        let text: string;
        try {
          text = readFileSync(`${PROC_NET}/${f.rel}`, 'latin1');
        } catch (err) {
          const code = errnoCode(err);
          if (code !== 'ENOENT') errors.push(`/proc/net/${f.rel}: cannot read (${code ?? (err as Error).message})`);
          continue;
        }
        if (this.texts.get(f.rel) === text) continue; // nothing in it moved
        this.texts.set(f.rel, text);
        if (SOCKET_SIGNS.has(f.rel)) sockets = true;
        const rs = parseProcFile(text, `/proc/net/${f.rel}`, f.parse, errors);
        if (rs) update(f.rel, rs);
      }
      update('conntrack', readConntrackGauges('/proc/sys', errors));
      if (sockets) nameOwners(update('sockets', readSocketTables(errors)), deltas, errors);
      const nl = readNetlinkCounters({ ethtool: driverNow, ethtoolDriver: driverNow, devlink: driverNow });
      for (const e of nl.errors) errors.push(e);
      const general: CounterReading[] = [];
      const device: CounterReading[] = [];
      for (const r of nl.readings) (isDevice(r) ? device : general).push(r);
      // Without rtnetlink's link statistics, /proc/net/dev stands in for them.
      if (!general.some((r) => r.name.startsWith('link:'))) {
        const rs = parseProcFile(probe, `/proc/net/${PROBE}`, FILES.find((f) => f.rel === PROBE)!.parse, errors);
        if (rs) update(PROBE, rs);
      } else this.groups.delete(PROBE);
      update('netlink', general);
      // Device statistics span their own interval, from one device read to the next.
      if (driverNow) update('device', device);
    });
    this.lastFull = now;
    return { deltas, errors: errors.map((e) => `${this.label}: ${e}`), full: true };
  }

  /** Let go of the held probe (the namespace's own descriptor belongs to the registry). */
  close(): void {
    if (this.probeFd !== undefined) {
      try {
        closeSync(this.probeFd);
      } catch {
        /* closed */
      }
      this.probeFd = undefined;
    }
  }
}

/** Per-socket counters of the sockets that dropped, from the socket tables of the calling thread's namespace. */
function readSocketTables(errors: string[]): CounterReading[] {
  const readings: CounterReading[] = [];
  for (const table of SOCKET_TABLES) {
    const source = `/proc/net/${table}`;
    let text: string;
    try {
      text = readFileSync(`${PROC_NET}/${table}`, 'latin1');
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT') errors.push(`${source}: cannot read (${code ?? (err as Error).message})`);
      continue;
    }
    const sockets = parseProcFile(text, source, (t, s) => parseSocketTable(t, table, s), errors) ?? [];
    for (const s of sockets) if (s.drops > 0) for (const r of socketReadings(s, source)) readings.push(r);
  }
  return readings;
}

/**
 * Name the process owning each socket whose drops moved, in `deltas` (the
 * owner is looked up for these only: the search can cost a scan of every
 * process's descriptors).
 */
function nameOwners(socketDeltas: readonly CounterDelta[], deltas: CounterDelta[], errors: string[]): void {
  const inodeOf = (d: CounterDelta) => Number(/inode (\d+)$/.exec(d.scope)?.[1]);
  const moved = socketDeltas.filter((d) => d.name === 'socket:drops' && d.delta > 0);
  if (moved.length === 0) return;
  let owners: Map<number, string>;
  try {
    owners = findSocketOwners(moved.map(inodeOf));
  } catch (err) {
    errors.push(`socket owners: ${(err as Error).message}`);
    return;
  }
  for (const d of moved) {
    const owner = owners.get(inodeOf(d));
    const i = deltas.indexOf(d);
    if (owner && i >= 0) deltas[i] = { ...d, detail: owner };
  }
}
