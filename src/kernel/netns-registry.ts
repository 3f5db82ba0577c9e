/**
 * Every network namespace of the host, each held by a file descriptor from
 * the moment it is first seen: `ip netns` and Docker bind mounts, and the
 * namespace of every process (its container named from its cgroup, see
 * namespaces.ts). Held, a namespace stays readable when it is deleted while
 * dropmon runs (a container that exits), so the counters it had can still be
 * read once more and what was found in it keeps its name.
 *
 * Discovery is cheap where it can be and bounded where it cannot: the
 * bind-mount directories on every refresh (a stat each, their names looked
 * at when they changed); the processes (a readlink per process) every `pidScanMs`, at
 * most `maxPids` of them, or at once when asked about an inode nobody knows
 * (a drop in a namespace not seen yet) or when every process known in a
 * namespace has gone. Namespaces are opened as netns-handle.ts says: by name
 * or by pid, never by an arbitrary path.
 *
 * Gone: a namespace that no name and no process refers to any more is marked
 * gone (the time is kept: `netns(inode).gone`). Release policy: its
 * descriptor is kept for one more sample, so that the counters it ended with
 * are read (sampled()), then released; at most `maxHeld` namespaces are held
 * (default 1024): past that, the namespaces that went away longest ago are
 * released first, and live namespaces beyond the limit are not held (counted
 * in `notHeld`). What a released namespace was called is remembered (a
 * bounded number) so that findings in it can still name it.
 *
 * It is also the Attribution the outputs are handed when counters are read
 * host-wide: names, containers and the time a namespace went away, and
 * interface names read through the held descriptor.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import type { Attribution, NetnsNames } from '../core/attribution.js';
import { NETNS_BIND_DIRS, closeNetns, nsfsDev, openNetnsByName, openNetnsOfPid, type NetnsHandle } from './netns-handle.js';
import { containerFromCgroup, NamespaceAttribution, netnsInodeOfLink } from './namespaces.js';
import { unpinned, type NetnsTarget } from './setns.js';

/** A namespace the registry holds. */
export interface HeldNetns {
  readonly inode: number;
  /** What withNetns() takes: the held descriptor. */
  readonly target: NetnsTarget;
  /** The `ip netns` (or Docker sandbox) name, when it has one. */
  readonly name?: string;
  /** "docker 3f2a1b0c9d8e", ... from its processes' cgroup. */
  readonly container?: string;
  /** A few processes living in it, lowest first. */
  readonly pids: readonly number[];
  /** When it was first seen, ms since the epoch. */
  readonly firstSeen: number;
  /** When it was seen to go away (no name, no process refers to it), ms since the epoch. */
  readonly gone?: number;
}

export interface NetnsRegistryOptions {
  /** Where bind mounts are looked for; default the `ip netns` and Docker directories. */
  readonly bindDirs?: readonly string[];
  /** The proc file system; default /proc. */
  readonly proc?: string;
  /** Namespaces held at most (default 1024). */
  readonly maxHeld?: number;
  /** How often every process is looked at, ms (default 5000). */
  readonly pidScanMs?: number;
  /** Processes looked at per scan, at most (default 65536). */
  readonly maxPids?: number;
  /** The clock, ms since the epoch (tests). */
  readonly now?: () => number;
}

const PIDS_KEPT = 8;
/** Released namespaces whose names are remembered. */
const DEPARTED_KEPT = 4096;
/** An unknown inode asked for rescans the processes at most this often, ms. */
const WANTED_SCAN_MS = 1000;

interface Entry {
  inode: number;
  handle: NetnsHandle;
  target: NetnsTarget;
  name?: string;
  container?: string;
  pids: number[];
  firstSeen: number;
  gone?: number;
}

export class NetnsRegistry implements Attribution {
  private readonly held = new Map<number, Entry>();
  private readonly departed = new Map<number, NetnsNames>();
  private readonly bindDirs: readonly string[];
  private readonly proc: string;
  /** Namespaces held at most. */
  readonly maxHeld: number;
  private readonly pidScanMs: number;
  private readonly maxPids: number;
  private readonly now: () => number;
  private lastPidScan = -Infinity;
  /** Each bind-mount directory's names, and the directory's stamp when they were listed. */
  private readonly dirs = new Map<string, { stamp: string; names: ReadonlyMap<string, number> }>();
  /** Names and interfaces; interfaces of held namespaces are listed through their descriptor. */
  private readonly names: NamespaceAttribution;
  /** Live namespaces seen at the last refresh but not held (over maxHeld). */
  notHeld = 0;
  /** Processes left unscanned at the last process scan (over maxPids). */
  pidsUnscanned = 0;

  constructor(o: NetnsRegistryOptions = {}) {
    this.bindDirs = distinctDirs(o.bindDirs ?? NETNS_BIND_DIRS);
    this.proc = o.proc ?? '/proc';
    this.maxHeld = o.maxHeld ?? 1024;
    this.pidScanMs = o.pidScanMs ?? 5000;
    this.maxPids = o.maxPids ?? 65536;
    this.now = o.now ?? Date.now;
    this.names = new NamespaceAttribution((inode) => this.held.get(inode)?.target);
  }

  get initInode(): number | undefined {
    return this.names.initInode;
  }

  /** The inode of dropmon's own network namespace. */
  get ownInode(): number | undefined {
    return this.names.ownInode;
  }

  /** Held namespaces, first seen first (gone ones until their final sample). */
  list(): HeldNetns[] {
    return [...this.held.values()].map((e) => this.view(e));
  }

  get(inode: number): HeldNetns | undefined {
    const e = this.held.get(inode);
    return e ? this.view(e) : undefined;
  }

  private view(e: Entry): HeldNetns {
    return {
      inode: e.inode,
      target: e.target,
      pids: e.pids,
      firstSeen: e.firstSeen,
      ...(e.name !== undefined ? { name: e.name } : {}),
      ...(e.container !== undefined ? { container: e.container } : {}),
      ...(e.gone !== undefined ? { gone: e.gone } : {}),
    };
  }

  /**
   * Look for namespaces that appeared or went away. `want`: inodes someone
   * saw (drop points): unknown ones make the processes be scanned now.
   * `force`: scan the processes whatever the time.
   */
  refresh(o: { readonly force?: boolean; readonly want?: Iterable<number> } = {}): void {
    const now = this.now();
    const seen = new Set<number>();
    let scan = o.force === true || now - this.lastPidScan >= this.pidScanMs;
    if (!scan && o.want && now - this.lastPidScan >= WANTED_SCAN_MS) {
      for (const ino of o.want) if (!this.held.has(ino)) scan = true;
    }
    for (const dir of this.bindDirs) {
      for (const [name, ino] of this.namesIn(dir, scan)) {
        if (seen.has(ino)) continue;
        seen.add(ino);
        const e = this.held.get(ino) ?? this.hold(ino, now, () => unpinned(openNetnsByName(name, name, [dir])));
        if (e) e.name = name;
      }
    }
    if (!scan) {
      // Between scans, a namespace known by its processes lives while one of them is still in it;
      // one that lost its name or its known processes may have others: all are looked at before
      // it is called gone.
      for (const e of this.held.values()) {
        if (seen.has(e.inode) || e.gone !== undefined) continue;
        const alive = e.pids.filter((p) => this.netnsOfPid(p) === e.inode);
        if (alive.length) {
          e.pids = alive;
          seen.add(e.inode);
        } else scan = true;
      }
    }
    if (scan) this.scanPids(now, seen);
    let notHeld = 0;
    for (const e of this.held.values()) {
      if (seen.has(e.inode)) e.gone = undefined; // a name mounted again
      else e.gone ??= now;
    }
    for (const ino of seen) if (!this.held.has(ino)) notHeld++;
    this.notHeld = notHeld;
  }

  /**
   * The mounted namespaces of bind-mount directory `dir`, name to inode. The
   * names are looked at (an lstat each) when the directory changed (`ip netns
   * add` and `del` create and remove a file) and at every process scan (a
   * name unmounted and left in place changes no directory); otherwise the
   * last list stands, which makes a refresh of a host with hundreds of names
   * one stat per directory.
   */
  private namesIn(dir: string, all: boolean): ReadonlyMap<string, number> {
    let stamp: string;
    try {
      const st = statSync(dir);
      stamp = `${st.ino}/${st.mtimeMs}/${st.ctimeMs}`;
    } catch {
      this.dirs.delete(dir);
      return new Map();
    }
    const last = this.dirs.get(dir);
    if (last && !all && last.stamp === stamp) return last.names;
    const names = new Map<string, number>();
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      /* removed meanwhile */
    }
    const dev = nsfsDev();
    for (const name of entries) {
      const st = lstatSync(`${dir}/${name}`, { throwIfNoEntry: false });
      // Only mounted namespaces: not the empty file of an unmounted name, a FIFO or a link.
      if (st?.isFile() && st.dev === dev) names.set(name, st.ino);
    }
    // The stamp from before the listing: a change during it makes the next refresh list again.
    this.dirs.set(dir, { stamp, names });
    return names;
  }

  private netnsOfPid(pid: number): number | undefined {
    try {
      return netnsInodeOfLink(readlinkSync(`${this.proc}/${pid}/ns/net`));
    } catch {
      return undefined; // exited, or a kernel thread we may not read
    }
  }

  private scanPids(now: number, seen: Set<number>): void {
    this.lastPidScan = now;
    let procs: string[] = [];
    try {
      procs = readdirSync(this.proc).filter((p) => /^\d+$/.test(p));
    } catch {
      /* no /proc */
    }
    this.pidsUnscanned = Math.max(0, procs.length - this.maxPids);
    const pids = new Map<number, number[]>();
    for (const p of procs.slice(0, this.maxPids)) {
      const ino = this.netnsOfPid(Number(p));
      if (ino === undefined) continue;
      const list = pids.get(ino);
      if (!list) pids.set(ino, [Number(p)]);
      else if (list.length < PIDS_KEPT) list.push(Number(p));
    }
    for (const e of this.held.values()) if (!pids.has(e.inode)) e.pids = [];
    for (const [ino, list] of pids) {
      seen.add(ino);
      list.sort((a, b) => a - b);
      let e = this.held.get(ino);
      if (!e) {
        for (const pid of list) {
          e = this.hold(ino, now, () => openNetnsOfPid(pid, `pid ${pid}`, this.proc));
          if (e || this.held.size >= this.maxHeld) break;
        }
      }
      if (!e) continue;
      const changed = e.pids[0] !== list[0];
      e.pids = list;
      if (changed && e.container === undefined) e.container = this.containerOf(list);
    }
  }

  private containerOf(pids: readonly number[]): string | undefined {
    for (const pid of pids.slice(0, 3)) {
      try {
        const c = containerFromCgroup(readFileSync(`${this.proc}/${pid}/cgroup`, 'latin1'));
        if (c) return c;
      } catch {
        /* exited */
      }
    }
    return undefined;
  }

  /** Open and hold namespace `ino`; undefined when it cannot be opened, is another one by now, or the limit is reached. */
  private hold(ino: number, now: number, open: () => NetnsHandle): Entry | undefined {
    if (this.held.size >= this.maxHeld && !this.releaseOldestGone()) return undefined;
    let h: NetnsHandle;
    try {
      h = open();
    } catch {
      return undefined; // gone meanwhile, or not a namespace: nothing to hold
    }
    if (h.inode !== ino) {
      closeNetns(h); // the name or pid refers to another namespace since we looked
      return undefined;
    }
    const e: Entry = { inode: ino, handle: h, target: { spec: String(ino), path: h.path, inode: ino, fd: h.fd }, pids: [], firstSeen: now };
    this.held.set(ino, e);
    this.departed.delete(ino);
    return e;
  }

  private releaseOldestGone(): boolean {
    let oldest: Entry | undefined;
    for (const e of this.held.values()) if (e.gone !== undefined && (!oldest || e.gone < oldest.gone!)) oldest = e;
    if (!oldest) return false;
    this.release(oldest);
    return true;
  }

  private release(e: Entry): void {
    closeNetns(e.handle);
    this.held.delete(e.inode);
    this.departed.set(e.inode, this.namesOf(e));
    if (this.departed.size > DEPARTED_KEPT) this.departed.delete(this.departed.keys().next().value!);
  }

  /**
   * Namespace `inode` was just read. One that went away has had its final
   * read: its descriptor is released now.
   */
  sampled(inode: number): void {
    const e = this.held.get(inode);
    if (e?.gone !== undefined) this.release(e);
  }

  private namesOf(e: Entry): NetnsNames {
    const name = e.name ?? (e.inode === this.initInode ? 'init' : undefined);
    return { ...(name !== undefined ? { name } : {}), ...(e.container !== undefined ? { container: e.container } : {}), ...(e.gone !== undefined ? { gone: e.gone } : {}) };
  }

  /** What is known of namespace `inode`: held, released after it went away, or named by the process-wide scan. */
  netns(inode: number): NetnsNames | undefined {
    const e = this.held.get(inode);
    if (e) return this.namesOf(e);
    const d = this.departed.get(inode);
    if (d) return d;
    const info = this.names.netns(inode);
    return info ? { ...(info.name !== undefined ? { name: info.name } : {}), ...(info.container !== undefined ? { container: info.container } : {}) } : undefined;
  }

  ifname(netns: number, ifindex: number): string | undefined {
    return this.names.ifname(netns, ifindex);
  }

  /** Release every namespace (the end of a run; a later refresh holds them again). */
  close(): void {
    this.lastPidScan = -Infinity;
    this.dirs.clear();
    for (const e of [...this.held.values()]) {
      closeNetns(e.handle);
      this.held.delete(e.inode);
    }
  }
}

/** The directories that exist, each once (/var/run is usually a link to /run): a name is looked at once per refresh. */
function distinctDirs(dirs: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const d of dirs) {
    let real = d;
    try {
      real = realpathSync(d);
    } catch {
      /* absent now: kept, it may appear */
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(d);
  }
  return out;
}
