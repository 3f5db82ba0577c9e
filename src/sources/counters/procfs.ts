/**
 * Parsers of the /proc counter files: text in, `CounterReading`s out. No I/O
 * here (proc-reader.ts reads the files), so every parser runs on fixtures of
 * any kernel version and under the fuzzer.
 *
 * Column names come from the files' own headers wherever the kernel prints
 * one (/proc/net/dev, snmp, netstat, the /proc/net/stat tables): kernels add
 * and rename columns, and a header-driven parser keeps up without a table of
 * versions. softnet_stat has no header: its column names are the one table
 * kept here, checked against net/core/net-procfs.c of several versions.
 *
 * Malformed input throws a ParseError naming the file and the line; nothing
 * else is ever thrown.
 */
import type { CounterLayer, CounterReading } from '../../core/counter.js';
import { ParseError } from '../../core/errors.js';

const DECIMAL = /^-?\d{1,20}$/;
const HEX = /^[0-9a-fA-F]{1,16}$/;

function lineError(source: string, index: number, detail: string): ParseError {
  return new ParseError(source, `line ${index + 1}`, detail);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
}

function decimal(token: string, source: string, index: number): number {
  if (!DECIMAL.test(token)) throw lineError(source, index, `not a decimal number: ${quote(token)}`);
  return Number(token);
}

function hex(token: string, source: string, index: number): number {
  if (!HEX.test(token)) throw lineError(source, index, `not a hex number: ${quote(token)}`);
  return parseInt(token, 16);
}

function words(line: string): string[] {
  const t = line.trim();
  return t ? t.split(/\s+/) : [];
}

// ---------------------------------------------------------------------------
// /proc/net/dev

/** The columns of /proc/net/dev since Linux 2.6, used when the header is missing. */
const NETDEV_RX = ['bytes', 'packets', 'errs', 'drop', 'fifo', 'frame', 'compressed', 'multicast'];
const NETDEV_TX = ['bytes', 'packets', 'errs', 'drop', 'fifo', 'colls', 'carrier', 'compressed'];

/**
 * /proc/net/dev: `netdev:rx_<column>` / `netdev:tx_<column>` per interface.
 * The second header line names the columns: " face |bytes packets ...|bytes packets ...".
 */
export function parseNetDev(text: string, source = '/proc/net/dev'): CounterReading[] {
  let names = [...NETDEV_RX.map((n) => `rx_${n}`), ...NETDEV_TX.map((n) => `tx_${n}`)];
  const out: CounterReading[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    const parts = line.split('|');
    if (parts.length === 3) {
      // A header line: "Inter-|   Receive   |  Transmit" (no names) or " face |bytes ...|bytes ...".
      const rx = words(parts[1]);
      const tx = words(parts[2]);
      if (parts[0].trim() === 'face') {
        if (rx.length === 0 || tx.length === 0) throw lineError(source, i, 'header without column names');
        names = [...rx.map((n) => `rx_${n}`), ...tx.map((n) => `tx_${n}`)];
      }
      continue;
    }
    // "  eth0: 123 456 ..." (old kernels print "eth0:123" for long names; names never contain ':').
    const colon = line.indexOf(':');
    if (colon < 0) throw lineError(source, i, `no "interface:" in ${quote(line)}`);
    const ifname = line.slice(0, colon).trim();
    if (!ifname || /\s/.test(ifname)) throw lineError(source, i, `bad interface name ${quote(ifname)}`);
    const values = words(line.slice(colon + 1));
    if (values.length !== names.length) throw lineError(source, i, `${values.length} values for ${names.length} columns`);
    for (let c = 0; c < names.length; c++) {
      out.push({ name: `netdev:${names[c]}`, scope: ifname, layer: 'nic', value: decimal(values[c], source, i), source });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// /proc/net/snmp, /proc/net/netstat, /proc/net/snmp6

/** Which layer a MIB block belongs to: Tcp/TcpExt/MPTcpExt → tcp, Udp/UdpLite(6) → udp, the rest (Ip, IpExt, Icmp, IcmpMsg, Ip6, Icmp6) → ip. */
export function snmpBlockLayer(block: string): CounterLayer {
  if (/^(Tcp|MPTcp)/.test(block)) return 'tcp';
  if (/^Udp/.test(block)) return 'udp';
  return 'ip';
}

/**
 * /proc/net/snmp and /proc/net/netstat: pairs of lines "Block: Name1 Name2 ..."
 * then "Block: v1 v2 ..." → `Block:Name` (scope ""). Any blocks, any fields,
 * any order; values may be negative (Tcp:MaxConn is -1).
 */
export function parseSnmp(text: string, source = '/proc/net/snmp'): CounterReading[] {
  const out: CounterReading[] = [];
  const lines = text.split('\n');
  let pending: { block: string; names: string[]; index: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    const m = /^([A-Za-z][A-Za-z0-9]*):(.*)$/.exec(line);
    if (!m) throw lineError(source, i, `expected "Block: ...", got ${quote(line)}`);
    const block = m[1];
    const tokens = words(m[2]);
    if (!pending) {
      if (tokens.length === 0) throw lineError(source, i, `block ${block} names no fields`);
      for (const t of tokens) if (!/^[A-Za-z_][\w-]*$/.test(t)) throw lineError(source, i, `bad field name ${quote(t)} in block ${block}`);
      pending = { block, names: tokens, index: i };
      continue;
    }
    if (block !== pending.block) throw lineError(source, i, `values of ${block} follow the names of ${pending.block}`);
    if (tokens.length !== pending.names.length) throw lineError(source, i, `${tokens.length} values for ${pending.names.length} fields of ${block}`);
    const layer = snmpBlockLayer(block);
    for (let c = 0; c < tokens.length; c++) {
      out.push({ name: `${block}:${pending.names[c]}`, scope: '', layer, value: decimal(tokens[c], source, i), source });
    }
    pending = undefined;
  }
  if (pending) throw lineError(source, pending.index, `names of ${pending.block} without a values line`);
  return out;
}

/**
 * /proc/net/snmp6 (and /proc/net/dev_snmp6/IF): "Ip6InReceives   123" lines →
 * `Ip6:InReceives`, `Icmp6:InType1`, `Udp6:RcvbufErrors`, `UdpLite6:InErrors`.
 * The block is the name up to and including its first "6".
 */
export function parseSnmp6(text: string, source = '/proc/net/snmp6'): CounterReading[] {
  const out: CounterReading[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = words(lines[i]);
    if (t.length === 0) continue;
    if (t.length !== 2) throw lineError(source, i, `expected "Name value", got ${quote(lines[i])}`);
    const m = /^([A-Za-z]+?6)([A-Za-z]\w*)$/.exec(t[0]);
    if (!m) throw lineError(source, i, `cannot split ${quote(t[0])} into block and field`);
    out.push({ name: `${m[1]}:${m[2]}`, scope: '', layer: snmpBlockLayer(m[1]), value: decimal(t[1], source, i), source });
  }
  return out;
}

// ---------------------------------------------------------------------------
// /proc/net/softnet_stat

/**
 * The columns of /proc/net/softnet_stat by position (softnet_seq_show in
 * net/core/net-procfs.c). `null` columns are the historic always-zero ones
 * (4-8: "was fastroute"). The file has grown at the end only:
 *   2.6.35+  10 columns: ... cpu_collision (9), received_rps (10)
 *   3.11+    11: + flow_limit_count
 *   5.10+    13: + backlog_len (input_pkt_queue + process_queue), cpu (index of the row's CPU)
 *   6.4+     15: + input_qlen, process_qlen (the two queues of backlog_len)
 * cpu_collision has been printed as 0 for years ("was cpu_collision").
 */
export const SOFTNET_COLUMNS: readonly (string | null)[] = [
  'processed', 'dropped', 'time_squeeze', null, null, null, null, null,
  'cpu_collision', 'received_rps', 'flow_limit_count', 'backlog_len', 'cpu', 'input_qlen', 'process_qlen',
];
const SOFTNET_CPU_COLUMN = 12;
const SOFTNET_GAUGES = new Set(['backlog_len', 'input_qlen', 'process_qlen']);

/**
 * /proc/net/softnet_stat: one row of hex values per online CPU → `softnet:<column>`
 * with scope `cpuN`. N is the row's cpu column (5.10+); older kernels have no
 * such column and skip offline CPUs, so there N is only the row number.
 * Columns beyond the known ones are kept as `softnet:column<K>` (1-based).
 */
export function parseSoftnetStat(text: string, source = '/proc/net/softnet_stat'): CounterReading[] {
  const out: CounterReading[] = [];
  const lines = text.split('\n');
  let row = 0;
  for (let i = 0; i < lines.length; i++) {
    const t = words(lines[i]);
    if (t.length === 0) continue;
    if (t.length < 3) throw lineError(source, i, `${t.length} columns, at least 3 expected`);
    const values = t.map((v) => hex(v, source, i));
    const scope = `cpu${values.length > SOFTNET_CPU_COLUMN ? values[SOFTNET_CPU_COLUMN] : row}`;
    for (let c = 0; c < values.length; c++) {
      const name = c < SOFTNET_COLUMNS.length ? SOFTNET_COLUMNS[c] : `column${c + 1}`;
      if (name === null || c === SOFTNET_CPU_COLUMN) continue;
      // softnet_data is per CPU, shared by every namespace.
      const r: CounterReading = { name: `softnet:${name}`, scope, layer: 'softnet', value: values[c], source, hostWide: true };
      out.push(SOFTNET_GAUGES.has(name) ? { ...r, gauge: true } : r);
    }
    row++;
  }
  return out;
}

// ---------------------------------------------------------------------------
// /proc/net/stat/nf_conntrack, arp_cache, ndisc_cache

/**
 * The per-CPU tables of /proc/net/stat: a header line of column names, then
 * one row of hex values per possible CPU. Each column is summed over the CPUs
 * into `<family>:<column>` (scope ""), except `entries`, which is the table's
 * global size printed on every row: it is taken once, as a gauge.
 *
 * The nf_conntrack header differs between kernels: "searched ... delete_list"
 * before 5.10, "clashres" (clash_resolve) in place of searched from 5.10,
 * "chainlength" (chaintoolong) in place of delete_list from about 5.15; very
 * old kernels lack search_restart. Columns the kernel no longer counts are
 * printed as 0.
 */
export function parseStatTable(text: string, family: string, layer: CounterLayer, source: string): CounterReading[] {
  const lines = text.split('\n');
  let names: string[] | undefined;
  let sums: number[] = [];
  let rows = 0;
  for (let i = 0; i < lines.length; i++) {
    const t = words(lines[i]);
    if (t.length === 0) continue;
    if (!names) {
      for (const n of t) if (!/^[A-Za-z_]\w*$/.test(n)) throw lineError(source, i, `bad column name ${quote(n)}`);
      if (new Set(t).size !== t.length) throw lineError(source, i, 'a column name appears twice');
      names = t;
      sums = new Array<number>(t.length).fill(0);
      continue;
    }
    if (t.length !== names.length) throw lineError(source, i, `${t.length} values for ${names.length} columns`);
    for (let c = 0; c < t.length; c++) {
      const v = hex(t[c], source, i);
      if (names[c] === 'entries') {
        if (rows === 0) sums[c] = v;
      } else {
        sums[c] += v;
      }
    }
    rows++;
  }
  if (!names) return [];
  return names.map((n, c) => {
    const r: CounterReading = { name: `${family}:${n}`, scope: '', layer, value: sums[c], source };
    return n === 'entries' ? { ...r, gauge: true } : r;
  });
}

// ---------------------------------------------------------------------------
// single-value files (sysctls)

/** A file holding one decimal number (nf_conntrack_count, nf_conntrack_max) → one gauge. */
export function parseSingleGauge(text: string, name: string, layer: CounterLayer, source: string): CounterReading {
  const t = words(text);
  if (t.length !== 1) throw new ParseError(source, 'line 1', `expected one number, got ${quote(text.trim())}`);
  return { name, scope: '', layer, value: decimal(t[0], source, 0), source, gauge: true };
}
