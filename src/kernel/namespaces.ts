/**
 * Attribution of drops to where they happened: a network namespace's inode
 * number (what the BPF source reads from net->ns.inum) to its name (`ip netns`
 * and Docker bind mounts), the processes living in it and their container
 * (from their cgroup path); an interface index to its name inside that
 * namespace.
 *
 * Everything is cached and refreshed only when an unknown value appears (and
 * then at most once a second), so that the outputs, handed it as core's
 * Attribution by the command that wires them, can ask for every drop point of
 * every interval. Interface names come from an rtnetlink link dump made from
 * inside the namespace (setns on this thread, see setns.ts): /sys/class/net
 * would show dropmon's own namespace whatever the thread joined.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Attribution } from '../core/attribution.js';
import { DropmonError, UsageError } from '../core/errors.js';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_REQUEST, encodeMessage, parseAttrs, parseMessages, attrString } from './netlink/message.js';
import { NETLINK_ROUTE, NetlinkSocket } from './netlink/socket.js';
import { NETNS_BIND_DIRS, isNsfsFile, resolveNetns, withNetns, type NetnsTarget } from './setns.js';
import { openNetnsPath } from './netns-handle.js';

export { NETNS_BIND_DIRS };

/** Where `ip netns` (/run/netns, /var/run/netns) and Docker keep namespace bind mounts. */

export interface NetnsInfo {
  readonly inode: number;
  /** The `ip netns` (or Docker sandbox) name; "init" for the initial namespace. */
  readonly name?: string;
  /** A file that setns() accepts for this namespace. */
  readonly path?: string;
  /** Processes living in it (a few, lowest pids first). */
  readonly pids: readonly number[];
  /** "docker 3f2a1b0c9d8e", "containerd …", "k8s pod <uid>", from the first process's cgroup. */
  readonly container?: string;
}

const REFRESH_MS = 1000;
const PIDS_KEPT = 8;

/**
 * A container named by a cgroup path (/proc/PID/cgroup), or undefined.
 * Patterns: Docker (cgroupfs "/docker/<id>", systemd "docker-<id>.scope"),
 * containerd/CRI ("cri-containerd-<id>.scope"), CRI-O ("crio-<id>.scope"),
 * Podman ("libpod-<id>.scope"), Kubernetes pods ("kubepods…pod<uid>").
 */
export function containerFromCgroup(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    const pod = /kubepods[^\n]*?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(path);
    const id = /(?:docker|cri-containerd|crio|libpod)[-/]([0-9a-f]{12,64})(?:\.scope)?/.exec(path);
    const runtime = /(docker|cri-containerd|crio|libpod)[-/][0-9a-f]{12}/.exec(path)?.[1];
    const short = id ? id[1].slice(0, 12) : undefined;
    const rt = runtime === 'cri-containerd' ? 'containerd' : runtime === 'libpod' ? 'podman' : runtime;
    if (pod) return `k8s pod ${pod[1].replace(/_/g, '-')}${short ? ` ${rt} ${short}` : ''}`;
    if (short && rt) return `${rt} ${short}`;
  }
  return undefined;
}

/** The inode in a /proc/PID/ns/net link's text ("net:[4026531840]"). */
export function netnsInodeOfLink(link: string): number | undefined {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** Interface index → name, from an RTM_GETLINK dump of the calling thread's namespace. */
export function listInterfaces(): Map<number, string> {
  const RTM_NEWLINK = 16, RTM_GETLINK = 18, IFLA_IFNAME = 3, IFINFOMSG = 16;
  const sock = new NetlinkSocket(NETLINK_ROUTE);
  const out = new Map<number, string>();
  try {
    const seq = sock.nextSeq();
    sock.send(encodeMessage({ type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, pid: 0 }, new Uint8Array(IFINFOMSG)));
    const deadline = Date.now() + 5000;
    for (;;) {
      const dgram = sock.receive();
      if (!dgram) {
        // A partial list would be cached as the truth: a slow dump is an error instead.
        if (Date.now() > deadline) throw new DropmonError('the interface list (RTM_GETLINK dump) did not complete in 5 s');
        sock.waitReadable(50);
        continue;
      }
      for (const m of parseMessages(dgram.slice())) {
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) return out;
        if (m.type !== RTM_NEWLINK || m.payload.length < IFINFOMSG) continue;
        const index = new DataView(m.payload.buffer, m.payload.byteOffset, IFINFOMSG).getInt32(4, true);
        for (const a of parseAttrs(m.payload.subarray(IFINFOMSG), 'link attributes')) if (a.type === IFLA_IFNAME) out.set(index, attrString(a));
      }
    }
  } finally {
    sock.close();
  }
}

/** The namespace and interface names of this host, cached (core's Attribution). */
export class NamespaceAttribution implements Attribution {
  private byInode = new Map<number, NetnsInfo>();
  private lastScan = 0;
  private readonly links = new Map<number, { names: Map<number, string>; at: number }>();
  /** When a namespace's interface list last failed: retried after REFRESH_MS, not on every lookup. */
  private readonly linkFailures = new Map<number, number>();
  /** Read on first use: the commands create the attribution when they wire their outputs, whether or not a drop ever names a namespace. */
  private inodes: { init: number | undefined; own: number | undefined } | undefined;

  /**
   * `held`: a namespace held open elsewhere (the namespace registry), entered
   * by its descriptor rather than reopened by name or pid.
   */
  constructor(private readonly held?: (inode: number) => NetnsTarget | undefined) {}

  get initInode(): number | undefined {
    return (this.inodes ??= NamespaceAttribution.readInodes()).init;
  }

  get ownInode(): number | undefined {
    return (this.inodes ??= NamespaceAttribution.readInodes()).own;
  }

  private static readInodes(): { init: number | undefined; own: number | undefined } {
    const ino = (p: string) => {
      try {
        return statSync(p).ino;
      } catch {
        // stat may be refused (pid 1 in a sandbox) where the link still reads.
        try {
          return netnsInodeOfLink(readlinkSync(p));
        } catch {
          return undefined;
        }
      }
    };
    // pid 1 may be hidden from us (a sandbox); kthreadd (pid 2) always lives in the initial namespace.
    return { init: ino('/proc/1/ns/net') ?? ino('/proc/2/ns/net'), own: ino('/proc/self/ns/net') };
  }

  /** Rescan bind mounts and processes (when the last scan is older than a second). */
  private scan(force = false): void {
    const now = Date.now();
    if (!force && now - this.lastScan < REFRESH_MS) return;
    this.lastScan = now;
    const names = new Map<number, { name: string; path: string }>();
    for (const dir of NETNS_BIND_DIRS) {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        continue;
      }
      for (const e of entries) {
        // An empty file where the namespace is not mounted (see resolveNetns) names nothing.
        if (!isNsfsFile(`${dir}/${e}`)) continue;
        try {
          const ino = statSync(`${dir}/${e}`).ino;
          if (!names.has(ino)) names.set(ino, { name: e, path: `${dir}/${e}` });
        } catch {
          /* gone meanwhile */
        }
      }
    }
    const pids = new Map<number, number[]>();
    let procs: string[] = [];
    try {
      procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    } catch {
      /* no /proc */
    }
    for (const p of procs) {
      let ino: number | undefined;
      try {
        ino = netnsInodeOfLink(readlinkSync(`/proc/${p}/ns/net`));
      } catch {
        continue; // exited, or a kernel thread we may not read
      }
      if (ino === undefined) continue;
      const list = pids.get(ino) ?? [];
      if (list.length < PIDS_KEPT) list.push(Number(p));
      pids.set(ino, list);
    }
    const next = new Map<number, NetnsInfo>();
    for (const ino of new Set([...names.keys(), ...pids.keys()])) {
      const bind = names.get(ino);
      const ps = (pids.get(ino) ?? []).sort((a, b) => a - b);
      let container: string | undefined;
      for (const pid of ps) {
        try {
          container = containerFromCgroup(readFileSync(`/proc/${pid}/cgroup`, 'latin1'));
        } catch {
          continue;
        }
        if (container) break;
      }
      const name = bind?.name ?? (ino === this.initInode ? 'init' : undefined);
      const path = bind?.path ?? (ps.length ? `/proc/${ps[0]}/ns/net` : undefined);
      next.set(ino, { inode: ino, pids: ps, ...(name ? { name } : {}), ...(path ? { path } : {}), ...(container ? { container } : {}) });
    }
    this.byInode = next;
  }

  /** What is known of a namespace; undefined when no bind mount or process refers to it. */
  netns(inode: number): NetnsInfo | undefined {
    if (!this.byInode.has(inode)) this.scan();
    return this.byInode.get(inode);
  }

  /** The name of interface `ifindex` in namespace `inode`, or undefined. */
  ifname(inode: number, ifindex: number): string | undefined {
    if (ifindex <= 0) return undefined;
    let entry = this.links.get(inode);
    const now = Date.now();
    const stale = !entry || now - entry.at >= REFRESH_MS;
    const failedRecently = now - (this.linkFailures.get(inode) ?? -Infinity) < REFRESH_MS;
    if (!entry?.names.has(ifindex) && stale && !failedRecently) {
      const names = this.dumpLinks(inode);
      if (names) {
        this.links.set(inode, (entry = { names, at: Date.now() }));
        this.linkFailures.delete(inode);
      } else this.linkFailures.set(inode, Date.now());
    }
    return entry?.names.get(ifindex);
  }

  private dumpLinks(inode: number): Map<number, string> | undefined {
    try {
      if (inode === this.ownInode) return listInterfaces();
      const target = this.held?.(inode);
      if (target) return withNetns(target, listInterfaces);
      const info = this.netns(inode);
      if (!info?.path) return undefined;
      return withNetns({ spec: info.name ?? String(inode), path: info.path, inode }, listInterfaces);
    } catch {
      return undefined; // the namespace vanished or we may not enter it: no name
    }
  }
}

let shared: NamespaceAttribution | undefined;

/**
 * The process-wide cache: the commands hand it to their outputs, and the BPF
 * source and --netns resolution use it, so that a namespace is scanned once.
 */
export function attribution(): NamespaceAttribution {
  return (shared ??= new NamespaceAttribution());
}

/** Inode numbers of namespaces sit far above any pid (pid_max is at most 2^22). */
const MIN_INODE = 1 << 22;

/**
 * Resolve `--netns NAME|INODE|PID|/proc/PID/ns/net` to a namespace, held open
 * (setns.ts resolveNetns): an `ip netns` or Docker name, an inode number, a
 * process id, or its namespace link. Other paths are refused.
 */
export function resolveNetnsSpec(spec: string): NetnsTarget {
  const s = spec.trim();
  // An inode number (as JSON output and ls -iL show it): whatever bind mount or process refers to it.
  if (/^\d+$/.test(s) && Number(s) >= MIN_INODE) {
    const inode = Number(s);
    const info = attribution().netns(inode);
    if (!info?.path) throw new UsageError(`--netns ${s}: no namespace with inode ${s} (no bind mount or process refers to it)`);
    const h = openNetnsPath(info.path, `--netns ${s}`, inode);
    return { spec: s, path: h.path, inode, fd: h.fd };
  }
  return resolveNetns(s);
}

/** The index of interface `name` inside `target` (dropmon's own namespace when undefined). */
export function interfaceIndex(name: string, target?: NetnsTarget): number {
  const links = withNetns(target, listInterfaces);
  for (const [index, n] of links) if (n === name) return index;
  throw new UsageError(`--interface ${name}: no such interface${target ? ` in namespace ${target.spec}` : ''} (ip link shows the names)`);
}
