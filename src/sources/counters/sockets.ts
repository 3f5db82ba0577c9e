/**
 * Per-socket drop counters: the datagram socket tables of /proc/net (udp,
 * udp6, udplite, udplite6, raw, raw6, icmp, icmp6 — the last two are ping
 * sockets) and the processes that own the sockets.
 *
 * Every line of those tables has the same columns (udp4_format_sock,
 * raw_sock_seq_show, ping_v4_format_sock and their IPv6 twins):
 *
 *   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
 *
 * `drops` is sk_drops: datagrams the kernel dropped for that socket (receive
 * buffer full, socket filter, memory). Addresses are printed as raw memory:
 * an IPv4 address is the network-order u32 printed with %08X, so on a
 * little-endian host "0100007F" is 127.0.0.1; IPv6 is four such words. Ports
 * are printed in host order. For raw sockets the "port" is the protocol.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';
import type { CounterReading } from '../../core/counter.js';
import { ParseError } from '../../core/errors.js';

/** The socket tables that have a drops column, by file name under /proc/net. */
export const SOCKET_TABLES = ['udp', 'udp6', 'udplite', 'udplite6', 'raw', 'raw6', 'icmp', 'icmp6'] as const;

export interface ProcSocket {
  /** The table it came from: "udp", "raw6", ... */
  readonly table: string;
  /** "127.0.0.1:9999", "[::1]:53"; for raw sockets the port is the protocol number. */
  readonly local: string;
  readonly remote: string;
  /** TCP-style state number (7 = unconnected/close, 1 = connected). */
  readonly state: number;
  readonly txQueue: number;
  /** Bytes waiting in the receive queue (sk_rmem_alloc). */
  readonly rxQueue: number;
  readonly uid: number;
  readonly inode: number;
  readonly drops: number;
}

const HOST_IS_LE = endianness() === 'LE';

/** The four bytes of a u32 that the kernel printed from memory with %08X. */
function wordBytes(word: string, littleEndian: boolean): number[] {
  const v = parseInt(word, 16);
  const be = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  return littleEndian ? be.reverse() : be;
}

/** IPv6 text in the RFC 5952 form: lower case, longest run of zero groups as "::", IPv4-mapped as ::ffff:a.b.c.d. */
export function formatIpv6(bytes: readonly number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${bytes.slice(12).join('.')}`;
  let bestAt = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hexes.join(':');
  return `${hexes.slice(0, bestAt).join(':')}::${hexes.slice(bestAt + bestLen).join(':')}`;
}

/**
 * Decode an address column, "0100007F:270F" or the 32-digit IPv6 form, into
 * "127.0.0.1:9999" / "[::1]:53". Returns undefined when it is neither.
 */
export function decodeProcAddress(field: string, littleEndian = HOST_IS_LE): string | undefined {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(field);
  if (!m) return undefined;
  const port = parseInt(m[2], 16);
  if (m[1].length === 8) return `${wordBytes(m[1], littleEndian).join('.')}:${port}`;
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) bytes.push(...wordBytes(m[1].slice(w * 8, w * 8 + 8), littleEndian));
  return `[${formatIpv6(bytes)}]:${port}`;
}

/** Parse one socket table (text of /proc/net/udp etc.); its first line is the header. */
export function parseSocketTable(text: string, table: string, source = `/proc/net/${table}`, littleEndian = HOST_IS_LE): ProcSocket[] {
  const out: ProcSocket[] = [];
  const lines = text.split('\n');
  // Line 1 is the header ("sl local_address ..."), whose spacing differs per table.
  for (let i = 1; i < lines.length; i++) {
    const t = lines[i].trim().split(/\s+/);
    if (t.length === 1 && t[0] === '') continue;
    const err = (detail: string) => new ParseError(source, `line ${i + 1}`, detail);
    if (t.length < 13) throw err(`${t.length} columns, 13 expected`);
    if (!/^\d+:$/.test(t[0])) throw err(`bad slot ${JSON.stringify(t[0].slice(0, 20))}`);
    const local = decodeProcAddress(t[1], littleEndian);
    const remote = decodeProcAddress(t[2], littleEndian);
    if (!local || !remote) throw err('bad address column');
    const queues = /^([0-9A-Fa-f]{1,16}):([0-9A-Fa-f]{1,16})$/.exec(t[4]);
    if (!queues) throw err(`bad tx_queue:rx_queue ${JSON.stringify(t[4].slice(0, 40))}`);
    const num = (s: string, what: string) => {
      if (!/^\d{1,20}$/.test(s)) throw err(`bad ${what} ${JSON.stringify(s.slice(0, 24))}`);
      return Number(s);
    };
    if (!/^[0-9A-Fa-f]{1,2}$/.test(t[3])) throw err(`bad state ${JSON.stringify(t[3].slice(0, 8))}`);
    out.push({
      table,
      local,
      remote,
      state: parseInt(t[3], 16),
      txQueue: parseInt(queues[1], 16),
      rxQueue: parseInt(queues[2], 16),
      uid: num(t[7], 'uid'),
      inode: num(t[9], 'inode'),
      drops: num(t[12], 'drops'),
    });
  }
  return out;
}

/** The scope of a socket's counters: "udp 127.0.0.1:9999 inode 1234", "raw 0.0.0.0 proto 1 inode 77". */
export function socketScope(s: ProcSocket): string {
  if (s.table.startsWith('raw')) {
    const colon = s.local.lastIndexOf(':');
    return `${s.table} ${s.local.slice(0, colon)} proto ${s.local.slice(colon + 1)} inode ${s.inode}`;
  }
  return `${s.table} ${s.local} inode ${s.inode}`;
}

/** `socket:drops` and `socket:rx_queue` (a gauge) of one socket. */
export function socketReadings(s: ProcSocket, source: string, owners?: string): CounterReading[] {
  const base = { scope: socketScope(s), layer: 'socket' as const, source, ...(owners ? { detail: owners } : {}) };
  return [
    { ...base, name: 'socket:drops', value: s.drops },
    { ...base, name: 'socket:rx_queue', value: s.rxQueue, gauge: true },
  ];
}

// ---------------------------------------------------------------------------
// socket inode -> owning processes

interface KnownOwner {
  /** /proc/PID/fd/N that linked to the socket last time. */
  readonly fdPath: string;
  readonly owner: string;
}

/**
 * Where each socket inode was found last time: re-checking one readlink is
 * far cheaper than scanning every descriptor of every process again, and a
 * socket that keeps dropping is asked for at every snapshot.
 */
const knownOwners = new Map<number, KnownOwner>();

/**
 * Inodes a full scan did not find, and when: their owner lives in another PID
 * namespace (a container) or has closed the descriptor. They are not worth a
 * new scan of every process at every snapshot; one a minute is enough.
 */
const missedAt = new Map<number, number>();
const RESCAN_MISSED_MS = 60_000;
/** Sockets remembered, at most (the oldest remembered go first). */
const OWNERS_KEPT = 4096;

function trim(m: Map<number, unknown>): void {
  for (const inode of m.keys()) {
    if (m.size <= OWNERS_KEPT) return;
    m.delete(inode);
  }
}

function comm(proc: string, pid: string): string {
  try {
    return readFileSync(`${proc}/${pid}/comm`, 'latin1').trim();
  } catch {
    return '?';
  }
}

/**
 * The process owning each socket inode, as "pid 123 (named)". Scans
 * /proc/PID/fd/* and stops as soon as every wanted inode is found (a socket
 * shared by several processes is attributed to the first one found).
 * Processes that vanish mid-scan or cannot be inspected (EACCES) are skipped;
 * inodes whose owner is not found (another PID namespace, fd already closed)
 * are simply absent from the result. Owners found are remembered and checked
 * with one readlink next time; inodes not found are looked for again only
 * after a minute, so a steady state costs no scan at all.
 */
export function findSocketOwners(inodes: Iterable<number>, proc = '/proc'): Map<number, string> {
  const found = new Map<number, string>();
  const wanted = new Set(inodes);
  // Bounded by number, not by this call's wants: the samplers of several namespaces share them.
  trim(knownOwners);
  trim(missedAt);
  for (const inode of wanted) {
    const known = knownOwners.get(inode);
    if (!known) continue;
    try {
      if (readlinkSync(known.fdPath) === `socket:[${inode}]`) {
        found.set(inode, known.owner);
        wanted.delete(inode);
        continue;
      }
    } catch {
      /* the process or the descriptor is gone */
    }
    knownOwners.delete(inode);
  }
  const now = Date.now();
  if ([...wanted].every((inode) => now - (missedAt.get(inode) ?? -Infinity) < RESCAN_MISSED_MS)) return found;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((n) => /^\d+$/.test(n));
  } catch {
    return found;
  }
  scanProcesses(proc, pids, wanted, found);
  for (const inode of wanted) missedAt.set(inode, now);
  return found;
}

/** Look through every descriptor of PIDS for the WANTED inodes; found ones move from WANTED to FOUND. */
function scanProcesses(proc: string, pids: readonly string[], wanted: Set<number>, found: Map<number, string>): void {
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // exited, or not ours to look at
    }
    let owner: string | undefined;
    for (const fd of fds) {
      const fdPath = `${proc}/${pid}/fd/${fd}`;
      let link: string;
      try {
        link = readlinkSync(fdPath);
      } catch {
        continue;
      }
      if (!link.startsWith('socket:[')) continue;
      const inode = Number(link.slice(8, -1));
      if (!wanted.has(inode)) continue;
      owner ??= `pid ${pid} (${comm(proc, pid)})`;
      found.set(inode, owner);
      knownOwners.set(inode, { fdPath, owner });
      missedAt.delete(inode);
      wanted.delete(inode);
      if (wanted.size === 0) return;
    }
  }
}
