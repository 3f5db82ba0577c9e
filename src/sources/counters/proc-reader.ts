/**
 * Reads every /proc counter file of one network namespace into
 * `CounterReading`s (the parsers are in procfs.ts and sockets.ts).
 *
 * All reads are synchronous, on the calling thread, and of small files: a
 * caller that switched this thread's network namespace with setns() (see
 * src/kernel/setns.ts) reads that namespace, because the default root is
 * /proc/thread-self/net, which follows the thread (/proc/net is the main
 * thread's) and /proc/sys/net is resolved against the opener's namespace.
 *
 * A missing file (module not loaded, IPv6 disabled) is skipped silently; an
 * unreadable or malformed one adds one line to `errors` and the rest is still
 * read. This function never throws.
 */
import { readFileSync } from 'node:fs';
import type { CounterLayer, CounterReading } from '../../core/counter.js';
import { errnoCode, ParseError } from '../../core/errors.js';
import { parseNetDev, parseSingleGauge, parseSnmp, parseSnmp6, parseSoftnetStat, parseStatTable } from './procfs.js';
import { findSocketOwners, parseSocketTable, SOCKET_TABLES, socketReadings, type ProcSocket } from './sockets.js';

export interface ProcReadOptions {
  /** The /proc/net directory to read; default /proc/thread-self/net. */
  readonly procNet?: string;
  /** The /proc/sys directory; default /proc/sys. */
  readonly procSys?: string;
  /** Where to look for socket owners (/proc/PID/fd); default /proc. */
  readonly proc?: string;
  /** Per-socket counters of sockets that dropped (default), of every socket, or none. */
  readonly sockets?: 'drops' | 'all' | 'none';
}

export interface ProcReadResult {
  readonly readings: CounterReading[];
  /** One line per file that could not be read or parsed. */
  readonly errors: string[];
}

const DEFAULT_PROC_NET = '/proc/thread-self/net';

/** A /proc/net file of counters: its path under /proc/net, its parser, and whether the kernel keeps it per host. */
export interface ProcNetFile {
  readonly rel: string;
  readonly parse: (text: string, source: string) => CounterReading[];
  /** The same for every namespace (softnet, the neighbour tables' statistics; conntrack's are per namespace). */
  readonly hostWide?: boolean;
}

const statTable = (family: string, layer: CounterLayer) => (t: string, s: string) => parseStatTable(t, family, layer, s);

/** The files of namespace-wide counters, in the order they are read. */
export const PROC_NET_FILES: readonly ProcNetFile[] = [
  { rel: 'dev', parse: parseNetDev },
  { rel: 'snmp', parse: parseSnmp },
  { rel: 'netstat', parse: parseSnmp },
  { rel: 'snmp6', parse: parseSnmp6 },
  { rel: 'softnet_stat', parse: parseSoftnetStat, hostWide: true },
  { rel: 'stat/nf_conntrack', parse: statTable('conntrack', 'netfilter') },
  { rel: 'stat/arp_cache', parse: statTable('arp_cache', 'neighbour'), hostWide: true },
  { rel: 'stat/ndisc_cache', parse: statTable('ndisc_cache', 'neighbour'), hostWide: true },
];

/** The name a file is shown by: as users know it when the default root is used. */
export function procNetLabel(procNet: string, rel: string): string {
  return procNet === DEFAULT_PROC_NET ? `/proc/net/${rel}` : `${procNet}/${rel}`;
}

/** Parse `text` read from `shown`; a parse failure becomes one line in `errors`. */
export function parseProcFile<T>(text: string, shown: string, parse: (text: string, source: string) => T, errors: string[]): T | undefined {
  try {
    return parse(text, shown);
  } catch (err) {
    // ParseErrors carry the file and line; anything else would be a parser bug, reported the same way.
    errors.push(err instanceof ParseError ? err.message : `${shown}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** Read and parse one file; a missing file gives nothing, any other failure one line in `errors`. */
function readProcFile<T>(path: string, shown: string, parse: (text: string, source: string) => T, errors: string[]): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOENT') errors.push(`${shown}: cannot read (${code ?? (err as Error).message})`);
    return undefined;
  }
  return parseProcFile(text, shown, parse, errors);
}

/** conntrack:count and conntrack:max (per namespace, from /proc/sys/net/netfilter). */
export function readConntrackGauges(procSys: string, errors: string[]): CounterReading[] {
  const out: CounterReading[] = [];
  for (const which of ['count', 'max']) {
    const path = `${procSys}/net/netfilter/nf_conntrack_${which}`;
    const r = readProcFile(path, path, (t, s) => parseSingleGauge(t, `conntrack:${which}`, 'netfilter', s), errors);
    if (r) out.push(r);
  }
  return out;
}

/** Per-socket counters of the socket tables: of sockets that dropped, or of every socket. */
export function readSocketCounters(procNet: string, mode: 'drops' | 'all', errors: string[], proc?: string): CounterReading[] {
  const chosen: { socket: ProcSocket; source: string }[] = [];
  for (const table of SOCKET_TABLES) {
    const source = procNetLabel(procNet, table);
    const sockets = readProcFile(`${procNet}/${table}`, source, (t, s) => parseSocketTable(t, table, s), errors);
    if (!sockets) continue;
    for (const socket of sockets) if (mode === 'all' || socket.drops > 0) chosen.push({ socket, source });
  }
  const readings: CounterReading[] = [];
  if (chosen.length === 0) return readings;
  let owners = new Map<number, string>();
  try {
    owners = findSocketOwners(chosen.map((c) => c.socket.inode), proc);
  } catch (err) {
    errors.push(`socket owners: ${(err as Error).message}`);
  }
  for (const { socket, source } of chosen) for (const r of socketReadings(socket, source, owners.get(socket.inode))) readings.push(r);
  return readings;
}

export function readProcCounters(opts: ProcReadOptions = {}): ProcReadResult {
  const procNet = opts.procNet ?? DEFAULT_PROC_NET;
  const procSys = opts.procSys ?? '/proc/sys';
  const readings: CounterReading[] = [];
  const errors: string[] = [];
  for (const f of PROC_NET_FILES) {
    const rs = readProcFile(`${procNet}/${f.rel}`, procNetLabel(procNet, f.rel), f.parse, errors);
    if (rs) for (const r of rs) readings.push(f.hostWide && !r.hostWide ? { ...r, hostWide: true } : r);
  }
  for (const r of readConntrackGauges(procSys, errors)) readings.push(r);
  const mode = opts.sockets ?? 'drops';
  if (mode !== 'none') for (const r of readSocketCounters(procNet, mode, errors, opts.proc)) readings.push(r);
  return { readings, errors };
}
