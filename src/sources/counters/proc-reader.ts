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

/**
 * The per-CPU tables of /proc/net/stat: file, counter family, layer, and
 * whether the kernel keeps them per host (the neighbour tables' statistics
 * are global; conntrack's are per namespace).
 */
const STAT_TABLES: readonly (readonly [string, string, CounterLayer, boolean])[] = [
  ['nf_conntrack', 'conntrack', 'netfilter', false],
  ['arp_cache', 'arp_cache', 'neighbour', true],
  ['ndisc_cache', 'ndisc_cache', 'neighbour', true],
];

export function readProcCounters(opts: ProcReadOptions = {}): ProcReadResult {
  const procNet = opts.procNet ?? DEFAULT_PROC_NET;
  const procSys = opts.procSys ?? '/proc/sys';
  const readings: CounterReading[] = [];
  const errors: string[] = [];
  // Readings name the file as users know it when the default root is used.
  const label = (rel: string) => (procNet === DEFAULT_PROC_NET ? `/proc/net/${rel}` : `${procNet}/${rel}`);

  /** Read and parse one file; a missing file gives nothing, any other failure one line in errors. */
  function each<T>(path: string, shown: string, parse: (text: string, source: string) => T): T | undefined {
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT') errors.push(`${shown}: cannot read (${code ?? (err as Error).message})`);
      return undefined;
    }
    try {
      return parse(text, shown);
    } catch (err) {
      // ParseErrors carry the file and line; anything else would be a parser bug, reported the same way.
      errors.push(err instanceof ParseError ? err.message : `${shown}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  const add = (rs: CounterReading[] | undefined) => {
    if (rs) for (const r of rs) readings.push(r);
  };

  add(each(`${procNet}/dev`, label('dev'), parseNetDev));
  add(each(`${procNet}/snmp`, label('snmp'), parseSnmp));
  add(each(`${procNet}/netstat`, label('netstat'), parseSnmp));
  add(each(`${procNet}/snmp6`, label('snmp6'), parseSnmp6));
  add(each(`${procNet}/softnet_stat`, label('softnet_stat'), parseSoftnetStat));
  for (const [file, family, layer, hostWide] of STAT_TABLES) {
    const parse = (t: string, s: string) => parseStatTable(t, family, layer, s).map((r) => (hostWide ? { ...r, hostWide } : r));
    add(each(`${procNet}/stat/${file}`, label(`stat/${file}`), parse));
  }
  for (const which of ['count', 'max']) {
    const path = `${procSys}/net/netfilter/nf_conntrack_${which}`;
    const r = each(path, path, (t, s) => parseSingleGauge(t, `conntrack:${which}`, 'netfilter', s));
    if (r) readings.push(r);
  }

  const mode = opts.sockets ?? 'drops';
  if (mode !== 'none') {
    const chosen: { socket: ProcSocket; source: string }[] = [];
    for (const table of SOCKET_TABLES) {
      const source = label(table);
      const sockets = each(`${procNet}/${table}`, source, (t, s) => parseSocketTable(t, table, s));
      if (!sockets) continue;
      for (const socket of sockets) if (mode === 'all' || socket.drops > 0) chosen.push({ socket, source });
    }
    if (chosen.length > 0) {
      let owners = new Map<number, string>();
      try {
        owners = findSocketOwners(chosen.map((c) => c.socket.inode), opts.proc);
      } catch (err) {
        errors.push(`socket owners: ${(err as Error).message}`);
      }
      for (const { socket, source } of chosen) add(socketReadings(socket, source, owners.get(socket.inode)));
    }
  }
  return { readings, errors };
}
