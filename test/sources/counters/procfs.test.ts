/**
 * The /proc counter parsers on captured and reconstructed fixtures (exact
 * values), fuzzed (only ParseError ever escapes a parser; the reader never
 * throws), and the reader on a real kernel: drops caused in a private network
 * namespace are seen, with the process that owns the dropping socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { CounterReading } from '../../../src/core/counter.js';
import { diffReadings } from '../../../src/core/counter.js';
import { ParseError } from '../../../src/core/errors.js';
import { parseNetDev, parseSingleGauge, parseSnmp, parseSnmp6, parseSoftnetStat, parseStatTable } from '../../../src/sources/counters/procfs.js';
import { decodeProcAddress, findSocketOwners, formatIpv6, parseSocketTable, socketScope } from '../../../src/sources/counters/sockets.js';
import { readProcCounters } from '../../../src/sources/counters/proc-reader.js';
import { resolveNetns, withNetns } from '../../../src/kernel/setns.js';
import { FIXTURES, fixtureText } from '../../helpers/fixtures.js';
import { PROJECT_ROOT } from '../../helpers/dropgen.js';
import { kernelTest } from '../../helpers/env.js';
import { TestNetns, sh } from '../../helpers/netns.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 1000);
const P = (rel: string) => fixtureText(`proc/${rel}`);
/** No owner scan of this machine's processes for the fixtures' socket inodes. */
const NO_PROC = '/nonexistent-proc';

after(() => TestNetns.cleanupAll());

/** name@scope → reading, asserting there are no duplicate keys. */
function byKey<R extends CounterReading>(rs: readonly R[]): Map<string, R> {
  const m = new Map<string, R>();
  for (const r of rs) {
    const k = r.scope ? `${r.name}@${r.scope}` : r.name;
    assert.ok(!m.has(k), `duplicate reading ${k}`);
    m.set(k, r);
  }
  return m;
}

function value(rs: readonly CounterReading[], key: string): number | undefined {
  return byKey(rs).get(key)?.value;
}

// ---------------------------------------------------------------------------
// fixtures

test('/proc/net/dev: header-driven columns per interface', () => {
  const ns = parseNetDev(P('6.18/net/dev'));
  assert.equal(ns.length, 16);
  assert.deepEqual(ns.map((r) => r.name), [
    'netdev:rx_bytes', 'netdev:rx_packets', 'netdev:rx_errs', 'netdev:rx_drop', 'netdev:rx_fifo', 'netdev:rx_frame', 'netdev:rx_compressed', 'netdev:rx_multicast',
    'netdev:tx_bytes', 'netdev:tx_packets', 'netdev:tx_errs', 'netdev:tx_drop', 'netdev:tx_fifo', 'netdev:tx_colls', 'netdev:tx_carrier', 'netdev:tx_compressed',
  ]);
  assert.equal(value(ns, 'netdev:rx_packets@lo'), 654);
  assert.equal(value(ns, 'netdev:tx_bytes@lo'), 67344);
  assert.ok(ns.every((r) => r.layer === 'nic' && r.source === '/proc/net/dev' && !r.gauge));

  const host = parseNetDev(P('6.18-host/net/dev'), 'host-dev');
  assert.equal(host.length, 4 * 16);
  assert.equal(value(host, 'netdev:rx_drop@lo'), 2398978216);
  assert.equal(value(host, 'netdev:rx_bytes@lo'), 110353200306);
  assert.equal(value(host, 'netdev:rx_bytes@eth0'), 889861977);
  assert.equal(value(host, 'netdev:tx_packets@eth0'), 20563);
  assert.equal(value(host, 'netdev:rx_drop@ifb1'), 0);
  // Old kernels glue long names to the first number.
  assert.equal(value(parseNetDev('verylongname0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n'), 'netdev:tx_compressed@verylongname0'), 16);
});

test('/proc/net/snmp and netstat: Block:Field, negative values kept, layers by block', () => {
  const snmp = parseSnmp(P('6.18/net/snmp'));
  assert.equal(value(snmp, 'Udp:NoPorts'), 20);
  assert.equal(value(snmp, 'Udp:RcvbufErrors'), 298);
  assert.equal(value(snmp, 'Udp:InErrors'), 298);
  assert.equal(value(snmp, 'Udp:OutDatagrams'), 320);
  assert.equal(value(snmp, 'Tcp:MaxConn'), -1);
  assert.equal(value(snmp, 'Ip:OutTransmits'), 340);
  assert.equal(value(snmp, 'IcmpMsg:OutType3'), 20);
  const layer = (k: string) => byKey(snmp).get(k)?.layer;
  assert.equal(layer('Ip:InReceives'), 'ip');
  assert.equal(layer('Icmp:InErrors'), 'ip');
  assert.equal(layer('IcmpMsg:InType3'), 'ip');
  assert.equal(layer('Tcp:InErrs'), 'tcp');
  assert.equal(layer('Udp:NoPorts'), 'udp');
  assert.equal(layer('UdpLite:InErrors'), 'udp');
  assert.ok(snmp.every((r) => r.scope === '' && !r.gauge));

  const netstat = parseSnmp(P('6.18/net/netstat'), '/proc/net/netstat');
  const blocks = new Set(netstat.map((r) => r.name.split(':')[0]));
  assert.deepEqual([...blocks].sort(), ['IpExt', 'MPTcpExt', 'TcpExt']);
  assert.equal(byKey(netstat).get('TcpExt:ListenOverflows')?.layer, 'tcp');
  assert.equal(byKey(netstat).get('MPTcpExt:MPCapableSYNRX')?.layer, 'tcp');
  assert.equal(byKey(netstat).get('IpExt:InNoRoutes')?.layer, 'ip');
  assert.equal(netstat.filter((r) => r.name.startsWith('TcpExt:')).length, 135);

  const host = parseSnmp(P('6.18-host/net/netstat'));
  assert.ok(value(host, 'IpExt:InOctets')! > 0);

  // A 4.x kernel: fewer fields, same parser.
  const old = parseSnmp(P('4.19/net/snmp'));
  assert.equal(value(old, 'Tcp:MaxConn'), -1);
  assert.equal(value(old, 'Udp:NoPorts'), 41);
  assert.equal(value(old, 'Udp:IgnoredMulti'), 9);
  assert.equal(value(old, 'Ip:OutNoRoutes'), 3);
  assert.equal(value(old, 'Udp:MemErrors'), undefined);
  assert.equal(value(old, 'Ip:OutTransmits'), undefined);
  assert.equal(value(old, 'IcmpMsg:OutType3'), 41);
});

test('/proc/net/snmp6: Ip6:, Icmp6:, Udp6:, UdpLite6: blocks', () => {
  const rs = parseSnmp6(P('6.18/net/snmp6'));
  assert.equal(rs.length, 88);
  assert.equal(value(rs, 'Udp6:NoPorts'), 7);
  assert.equal(value(rs, 'Udp6:RcvbufErrors'), 298);
  assert.equal(value(rs, 'Ip6:OutTransmits'), 314);
  assert.equal(value(rs, 'Icmp6:InType1'), 7);
  assert.equal(value(rs, 'Icmp6:OutDestUnreachs'), 7);
  assert.equal(value(rs, 'UdpLite6:MemErrors'), 0);
  const k = byKey(rs);
  assert.equal(k.get('Ip6:InReceives')?.layer, 'ip');
  assert.equal(k.get('Icmp6:InErrors')?.layer, 'ip');
  assert.equal(k.get('Udp6:InErrors')?.layer, 'udp');
  assert.equal(k.get('UdpLite6:InErrors')?.layer, 'udp');
});

test('/proc/net/softnet_stat: 15, 13, 11 and 10 columns', () => {
  const now = parseSoftnetStat(P('6.18/net/softnet_stat'));
  assert.equal(now.length, 2 * 9);
  assert.equal(value(now, 'softnet:processed@cpu0'), 0x5ff4e639);
  assert.equal(value(now, 'softnet:dropped@cpu1'), 400);
  assert.equal(value(now, 'softnet:time_squeeze@cpu0'), 1);
  assert.equal(value(now, 'softnet:input_qlen@cpu1'), 0);
  const k = byKey(now);
  for (const g of ['backlog_len', 'input_qlen', 'process_qlen']) assert.equal(k.get(`softnet:${g}@cpu0`)?.gauge, true);
  assert.equal(k.get('softnet:dropped@cpu0')?.gauge, undefined);
  assert.ok(now.every((r) => r.layer === 'softnet'));
  assert.equal(k.get('softnet:cpu@cpu0'), undefined, 'the CPU index is the scope, not a counter');

  // 5.10: the cpu column names the row's CPU (CPU 1 offline here).
  const v510 = parseSoftnetStat(P('5.10/net/softnet_stat'));
  assert.deepEqual([...new Set(v510.map((r) => r.scope))], ['cpu0', 'cpu2']);
  assert.equal(value(v510, 'softnet:dropped@cpu2'), 0x100);
  assert.equal(value(v510, 'softnet:flow_limit_count@cpu2'), 3);
  assert.equal(value(v510, 'softnet:backlog_len@cpu2'), 2);
  assert.equal(value(v510, 'softnet:input_qlen@cpu2'), undefined);

  // 4.19: no cpu column, rows are numbered.
  const v419 = parseSoftnetStat(P('4.19/net/softnet_stat'));
  assert.equal(v419.length, 2 * 6);
  assert.equal(value(v419, 'softnet:time_squeeze@cpu0'), 0x2a);
  assert.equal(value(v419, 'softnet:received_rps@cpu1'), 0x10);
  assert.equal(value(v419, 'softnet:flow_limit_count@cpu1'), 2);
  assert.equal(value(v419, 'softnet:backlog_len@cpu1'), undefined);

  const v310 = parseSoftnetStat(P('3.10/net/softnet_stat'));
  assert.equal(value(v310, 'softnet:cpu_collision@cpu1'), 4);
  assert.equal(value(v310, 'softnet:dropped@cpu1'), 1);
  assert.equal(value(v310, 'softnet:flow_limit_count@cpu1'), undefined);

  // A future kernel's extra column is kept, by position.
  const wide = parseSoftnetStat(`${'00000001 '.repeat(15)}0000000a\n`);
  assert.equal(value(wide, 'softnet:column16@cpu1'), 10);
});

test('/proc/net/stat tables: summed over CPUs, entries once as a gauge, any header', () => {
  const ct = parseStatTable(P('6.18/net/stat/nf_conntrack'), 'conntrack', 'netfilter', 'ct');
  assert.equal(value(ct, 'conntrack:entries'), 4);
  assert.equal(byKey(ct).get('conntrack:entries')?.gauge, true);
  assert.equal(value(ct, 'conntrack:clashres'), 0);
  assert.equal(value(ct, 'conntrack:chainlength'), 0);
  assert.equal(ct.length, 17);
  assert.ok(ct.every((r) => r.layer === 'netfilter' && r.scope === ''));

  const old = parseStatTable(P('4.19/net/stat/nf_conntrack'), 'conntrack', 'netfilter', 'ct');
  assert.equal(value(old, 'conntrack:entries'), 300);
  assert.equal(value(old, 'conntrack:searched'), 0);
  assert.equal(value(old, 'conntrack:found'), 0x21);
  assert.equal(value(old, 'conntrack:invalid'), 8);
  assert.equal(value(old, 'conntrack:insert'), 0x41);
  assert.equal(value(old, 'conntrack:insert_failed'), 1);
  assert.equal(value(old, 'conntrack:drop'), 3);
  assert.equal(value(old, 'conntrack:icmp_error'), 4);
  assert.equal(value(old, 'conntrack:search_restart'), 8);
  assert.equal(value(old, 'conntrack:delete_list'), 0);
  assert.equal(value(old, 'conntrack:chainlength'), undefined);

  const v510 = parseStatTable(P('5.10/net/stat/nf_conntrack'), 'conntrack', 'netfilter', 'ct');
  assert.equal(value(v510, 'conntrack:clashres'), 3);
  assert.equal(value(v510, 'conntrack:invalid'), 11);
  assert.equal(value(v510, 'conntrack:entries'), 2);

  const arp = parseStatTable(P('6.18-host/net/stat/arp_cache'), 'arp_cache', 'neighbour', 'arp');
  assert.equal(value(arp, 'arp_cache:entries'), 2);
  assert.equal(value(arp, 'arp_cache:allocs'), 0x32 + 0x2e);
  assert.equal(value(arp, 'arp_cache:hits'), 0x18);
  assert.equal(value(arp, 'arp_cache:unresolved_discards'), 0x63);
  assert.equal(value(arp, 'arp_cache:periodic_gc_runs'), 0x277);
  assert.ok(arp.every((r) => r.layer === 'neighbour'));
  const nd = parseStatTable(P('6.18-host/net/stat/ndisc_cache'), 'ndisc_cache', 'neighbour', 'nd');
  assert.equal(value(nd, 'ndisc_cache:entries'), 4);
  assert.equal(value(nd, 'ndisc_cache:allocs'), 0x22 + 0x1d);
  assert.equal(value(nd, 'ndisc_cache:res_failed'), 2);
  assert.equal(value(nd, 'ndisc_cache:table_fulls'), 0);

  assert.deepEqual(parseStatTable('', 'x', 'netfilter', 'empty'), []);
});

test('nf_conntrack_count / nf_conntrack_max: gauges', () => {
  assert.deepEqual(parseSingleGauge(P('6.18/sys/net/netfilter/nf_conntrack_count'), 'conntrack:count', 'netfilter', 'c'), {
    name: 'conntrack:count', scope: '', layer: 'netfilter', value: 4, source: 'c', gauge: true,
  });
  assert.equal(parseSingleGauge('262144\n', 'conntrack:max', 'netfilter', 'm').value, 262144);
  assert.throws(() => parseSingleGauge('', 'conntrack:max', 'netfilter', 'm'), ParseError);
  assert.throws(() => parseSingleGauge('12 13', 'conntrack:max', 'netfilter', 'm'), ParseError);
});

test('socket tables: addresses, queues, drops; scopes', () => {
  const udp = parseSocketTable(P('6.18/net/udp'), 'udp', 'udp', true);
  assert.deepEqual(udp, [{ table: 'udp', local: '127.0.0.1:9999', remote: '0.0.0.0:0', state: 7, txQueue: 0, rxQueue: 0x680, uid: 0, inode: 139845, drops: 298 }]);
  assert.equal(socketScope(udp[0]), 'udp 127.0.0.1:9999 inode 139845');
  const udp6 = parseSocketTable(P('6.18/net/udp6'), 'udp6', 'udp6', true);
  assert.equal(udp6.length, 1);
  assert.equal(udp6[0].local, '[::1]:5353');
  assert.equal(udp6[0].remote, '[::]:0');
  assert.equal(udp6[0].drops, 298);
  assert.equal(socketScope(udp6[0]), 'udp6 [::1]:5353 inode 139846');
  assert.deepEqual(parseSocketTable(P('6.18/net/udplite'), 'udplite', 'udplite', true), []);

  const raw = parseSocketTable(P('6.18/net/raw'), 'raw', 'raw', true);
  assert.deepEqual(raw.map((s) => [s.local, s.drops, s.rxQueue, s.inode]), [['0.0.0.0:253', 0, 0xa280, 140028], ['0.0.0.0:253', 47, 0x9c0, 140024]]);
  assert.equal(socketScope(raw[1]), 'raw 0.0.0.0 proto 253 inode 140024');
  const raw6 = parseSocketTable(P('6.18/net/raw6'), 'raw6', 'raw6', true);
  assert.equal(socketScope(raw6[0]), 'raw6 [::] proto 58 inode 140025');
  const icmp = parseSocketTable(P('6.18/net/icmp'), 'icmp', 'icmp', true);
  assert.equal(socketScope(icmp[0]), 'icmp 127.0.0.1:6899 inode 140026');
  assert.equal(icmp[0].rxQueue, 0x340);
  const icmp6 = parseSocketTable(P('6.18/net/icmp6'), 'icmp6', 'icmp6', true);
  assert.equal(socketScope(icmp6[0]), 'icmp6 [::1]:6900 inode 140027');
});

test('addresses: byte order, IPv6 text form', () => {
  assert.equal(decodeProcAddress('0100007F:0035', true), '127.0.0.1:53');
  assert.equal(decodeProcAddress('7F000001:0035', false), '127.0.0.1:53');
  assert.equal(decodeProcAddress('B80D0120000000000000000001000000:01BB', true), '[2001:db8::1]:443');
  assert.equal(decodeProcAddress('0000000000000000FFFF00000100007F:0035', true), '[::ffff:127.0.0.1]:53');
  assert.equal(decodeProcAddress('000080FE000000000000000001000000:0016', true), '[fe80::1]:22');
  assert.equal(decodeProcAddress('nonsense', true), undefined);
  assert.equal(formatIpv6([0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]), '1:0:1:1:1:1:1:1', 'one zero group is not compressed');
  assert.equal(formatIpv6([0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1]), '1::1:0:0:1:1', 'the first of equal runs');
  assert.equal(formatIpv6(new Array<number>(16).fill(0)), '::');
  assert.equal(formatIpv6([0xfe, 0x80, ...new Array<number>(13).fill(0), 1]), 'fe80::1');
});

test('reader on the 6.18 fixture tree: every family, socket modes', () => {
  const dir = join(FIXTURES, 'proc', '6.18');
  const { readings, errors } = readProcCounters({ procNet: join(dir, 'net'), procSys: join(dir, 'sys'), proc: NO_PROC });
  assert.deepEqual(errors, []);
  const k = byKey(readings);
  assert.equal(k.get('Udp:NoPorts')?.value, 20);
  assert.equal(k.get('Udp:NoPorts')?.source, join(dir, 'net', 'snmp'));
  assert.equal(k.get('TcpExt:ListenOverflows')?.value, 0);
  assert.equal(k.get('Udp6:RcvbufErrors')?.value, 298);
  assert.equal(k.get('softnet:dropped@cpu1')?.value, 400);
  assert.equal(k.get('conntrack:entries')?.value, 4);
  assert.equal(k.get('conntrack:count')?.value, 4);
  assert.equal(k.get('conntrack:max')?.value, 262144);
  assert.equal(k.get('netdev:rx_packets@lo')?.value, 654);
  // sockets with drops: udp, udp6, one raw
  const sockets = readings.filter((r) => r.layer === 'socket');
  assert.deepEqual(sockets.filter((r) => r.name === 'socket:drops').map((r) => [r.scope, r.value]), [
    ['udp 127.0.0.1:9999 inode 139845', 298],
    ['udp6 [::1]:5353 inode 139846', 298],
    ['raw 0.0.0.0 proto 253 inode 140024', 47],
  ]);
  assert.equal(k.get('socket:rx_queue@udp 127.0.0.1:9999 inode 139845')?.gauge, true);
  assert.ok(sockets.every((r) => r.detail === undefined), 'no owners: the process table was not scanned');

  const all = readProcCounters({ procNet: join(dir, 'net'), procSys: join(dir, 'sys'), proc: NO_PROC, sockets: 'all' });
  assert.equal(all.readings.filter((r) => r.name === 'socket:drops').length, 7);
  const none = readProcCounters({ procNet: join(dir, 'net'), procSys: join(dir, 'sys'), proc: NO_PROC, sockets: 'none' });
  assert.equal(none.readings.filter((r) => r.layer === 'socket').length, 0);
});

test('reader: missing files are skipped, unreadable and malformed ones reported, the rest still read', (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'dropmon-proc-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  assert.deepEqual(readProcCounters({ procNet: join(tmp, 'none'), procSys: join(tmp, 'none'), proc: NO_PROC }), { readings: [], errors: [] });

  cpSync(join(FIXTURES, 'proc', '6.18'), tmp, { recursive: true });
  writeFileSync(join(tmp, 'net', 'snmp'), 'Ip: Forwarding DefaultTTL\nIp: 1\n');
  rmSync(join(tmp, 'net', 'netstat'));
  mkdirSync(join(tmp, 'net', 'netstat')); // reading a directory fails with EISDIR
  writeFileSync(join(tmp, 'net', 'softnet_stat'), 'zz 00 00\n');
  writeFileSync(join(tmp, 'sys', 'net', 'netfilter', 'nf_conntrack_max'), 'lots\n');
  writeFileSync(join(tmp, 'net', 'udp6'), 'header\n   1: 00:00 broken\n');
  rmSync(join(tmp, 'net', 'snmp6'));
  const { readings, errors } = readProcCounters({ procNet: join(tmp, 'net'), procSys: join(tmp, 'sys'), proc: NO_PROC });
  assert.equal(errors.length, 5, errors.join('\n'));
  assert.match(errors[0], /net\/snmp: 1 values for 2 fields of Ip \(at line 2\)$/);
  assert.match(errors[1], /net\/netstat: cannot read \(EISDIR\)$/);
  assert.match(errors[2], /net\/softnet_stat: .*"zz" \(at line 1\)$/);
  assert.match(errors[3], /nf_conntrack_max: not a decimal number: "lots" \(at line 1\)$/);
  assert.match(errors[4], /net\/udp6: 3 columns, 13 expected \(at line 2\)$/);
  const k = byKey(readings);
  assert.equal(k.get('netdev:rx_packets@lo')?.value, 654);
  assert.equal(k.get('conntrack:count')?.value, 4);
  assert.equal(k.get('socket:drops@udp 127.0.0.1:9999 inode 139845')?.value, 298);
  assert.equal(k.get('Udp:NoPorts'), undefined);

  if (process.getuid?.() !== 0) {
    chmodSync(join(tmp, 'net', 'dev'), 0);
    assert.match(readProcCounters({ procNet: join(tmp, 'net'), procSys: join(tmp, 'sys'), proc: NO_PROC }).errors.join('\n'), /dev: cannot read \(EACCES\)/);
  }
});

test('reader on this machine: no errors, namespaces counters present', () => {
  const { readings, errors } = readProcCounters();
  assert.deepEqual(errors, []);
  const k = byKey(readings);
  assert.ok(k.has('Udp:NoPorts') && k.has('TcpExt:ListenOverflows') && k.has('netdev:rx_bytes@lo'));
  assert.ok(readings.some((r) => r.name === 'softnet:processed'));
  assert.equal(k.get('Udp:NoPorts')?.source, '/proc/net/snmp');
});

test('socket owners: found through /proc/PID/fd, remembered, unknown inodes absent', { skip: process.platform !== 'linux' && 'not Linux' }, async () => {
  const s = createSocket('udp4');
  await new Promise<void>((ok) => s.bind(0, '127.0.0.1', ok));
  try {
    const inodes = new Set<number>();
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        if (m) inodes.add(Number(m[1]));
      } catch {
        /* closed meanwhile */
      }
    }
    const port = s.address().port;
    const table = parseSocketTable(readFileSync('/proc/thread-self/net/udp', 'latin1'), 'udp');
    const mine = table.find((x) => x.local === `127.0.0.1:${port}` && inodes.has(x.inode));
    assert.ok(mine, 'our socket is in /proc/net/udp');
    const comm = readFileSync('/proc/self/comm', 'latin1').trim();
    const unknown = 4_000_000_000;
    const first = findSocketOwners([mine.inode, unknown]);
    assert.equal(first.get(mine.inode), `pid ${process.pid} (${comm})`);
    assert.equal(first.has(unknown), false);
    // The second lookup is served from memory: it does not scan processes again. A
    // fake /proc that would answer for the unknown inode proves no scan happened.
    const fakeProc = mkdtempSync(join(tmpdir(), 'dropmon-fakeproc-'));
    try {
      mkdirSync(join(fakeProc, '4242', 'fd'), { recursive: true });
      writeFileSync(join(fakeProc, '4242', 'comm'), 'impostor\n');
      symlinkSync(`socket:[${unknown}]`, join(fakeProc, '4242', 'fd', '7'));
      const again = findSocketOwners([mine.inode, unknown], fakeProc);
      assert.equal(again.get(mine.inode), `pid ${process.pid} (${comm})`, 'a known owner is checked with one readlink');
      assert.equal(again.has(unknown), false, 'an inode missed a moment ago is not looked for again (no scan)');
    } finally {
      rmSync(fakeProc, { recursive: true, force: true });
    }
  } finally {
    s.close();
  }
});

// ---------------------------------------------------------------------------
// errors and fuzzing

test('malformed input: ParseError naming the file and the line', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => parseSnmp('Udp: NoPorts InErrors\nUdp: 1\n'), /^\/proc\/net\/snmp: 1 values for 2 fields of Udp \(at line 2\)$/],
    [() => parseSnmp('Udp: NoPorts\nTcp: 1\n'), /values of Tcp follow the names of Udp \(at line 2\)/],
    [() => parseSnmp('Udp: NoPorts\n'), /names of Udp without a values line \(at line 1\)/],
    [() => parseSnmp('Udp: NoPorts\nUdp: 1x\n', '/proc/net/netstat'), /^\/proc\/net\/netstat: not a decimal number: "1x" \(at line 2\)$/],
    [() => parseSnmp6('Ip6InReceives 1 2\n'), /^\/proc\/net\/snmp6: .* \(at line 1\)$/],
    [() => parseSnmp6('InReceives 1\n'), /cannot split "InReceives"/],
    [() => parseNetDev(' face |bytes|bytes\n  lo: 1 2 3\n'), /^\/proc\/net\/dev: 3 values for 2 columns \(at line 2\)$/],
    [() => parseNetDev('garbage\n'), /no "interface:"/],
    [() => parseSoftnetStat('0001 0002\n'), /^\/proc\/net\/softnet_stat: 2 columns, at least 3 expected \(at line 1\)$/],
    [() => parseStatTable('entries drop\n0001\n', 'conntrack', 'netfilter', '/proc/net/stat/nf_conntrack'), /^\/proc\/net\/stat\/nf_conntrack: 1 values for 2 columns \(at line 2\)$/],
    [() => parseStatTable('entries entries\n', 'conntrack', 'netfilter', 'f'), /appears twice/],
    [() => parseSocketTable('  sl local\n 0: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 12 2 0000000000000000 -1\n', 'udp'), /^\/proc\/net\/udp: bad drops "-1" \(at line 2\)$/],
  ];
  for (const [fn, re] of cases) {
    assert.throws(fn, (e: unknown) => e instanceof ParseError && re.test(e.message), String(fn));
  }
});

type Parser = (text: string) => unknown;
const PARSERS: [string, Parser, string][] = [
  ['dev', (t) => parseNetDev(t), '6.18-host/net/dev'],
  ['snmp', (t) => parseSnmp(t), '6.18/net/snmp'],
  ['netstat', (t) => parseSnmp(t), '6.18/net/netstat'],
  ['snmp6', (t) => parseSnmp6(t), '6.18/net/snmp6'],
  ['softnet_stat', (t) => parseSoftnetStat(t), '6.18/net/softnet_stat'],
  ['stat table', (t) => parseStatTable(t, 'arp_cache', 'neighbour', 'f'), '6.18-host/net/stat/arp_cache'],
  ['gauge', (t) => parseSingleGauge(t, 'conntrack:max', 'netfilter', 'f'), '6.18/sys/net/netfilter/nf_conntrack_max'],
  ['udp', (t) => parseSocketTable(t, 'udp'), '6.18/net/udp'],
  ['udp6', (t) => parseSocketTable(t, 'udp6'), '6.18/net/udp6'],
  ['raw', (t) => parseSocketTable(t, 'raw'), '6.18/net/raw'],
];

function onlyParseErrors(fn: () => unknown): void {
  try {
    const out = fn();
    // What a parser returns is well-formed: finite numbers, names with a family.
    for (const r of Array.isArray(out) ? out : [out]) {
      if (r && typeof r === 'object' && 'value' in r) {
        assert.ok(Number.isFinite((r as CounterReading).value));
        assert.match((r as CounterReading).name, /^[\w-]+:\w/);
      }
    }
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
  }
}

/** Text made of what these files are made of, so that the fuzzer gets past the first line. */
const procishText = fc
  .array(
    fc.oneof(
      fc.constantFrom('Udp:', 'Ip6InReceives', 'entries', ' face |', '|', ':', '  lo:', 'sl', '00000000', '0100007F:270F', 'ffffffff', '-1', '18446744073709551615', '\t', ' ', '\n', '  ', '1', 'drop', 'Tcp: 1'),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 120 },
  )
  .map((parts) => parts.join(''));

for (const [label, parse, fixture] of PARSERS) {
  test(`fuzz ${label}: random text, proc-like text and mutated fixtures only ever throw ParseError`, () => {
    const real = P(fixture);
    fc.assert(fc.property(fc.string({ maxLength: 1500 }), (s) => onlyParseErrors(() => parse(s))), { numRuns: RUNS });
    fc.assert(fc.property(procishText, (s) => onlyParseErrors(() => parse(s))), { numRuns: RUNS });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(real.length), fc.nat(8), fc.string({ maxLength: 12 })), { minLength: 1, maxLength: 6 }), (edits) => {
        let text = real;
        for (const [at, del, ins] of edits) text = text.slice(0, at) + ins + text.slice(at + del);
        onlyParseErrors(() => parse(text));
      }),
      { numRuns: RUNS },
    );
  });
}

test('fuzz reader: whatever the files hold, it returns readings and error lines and never throws', (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'dropmon-proc-fuzz-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  cpSync(join(FIXTURES, 'proc', '6.18'), tmp, { recursive: true });
  const files = ['net/dev', 'net/snmp', 'net/netstat', 'net/snmp6', 'net/softnet_stat', 'net/stat/nf_conntrack', 'net/udp', 'net/raw6', 'sys/net/netfilter/nf_conntrack_count'];
  fc.assert(
    fc.property(fc.constantFrom(...files), fc.oneof(procishText, fc.string({ maxLength: 300 })), fc.constantFrom<'drops' | 'all' | 'none'>('drops', 'all', 'none'), (file, text, sockets) => {
      const path = join(tmp, file);
      const original = fixtureText(`proc/6.18/${file}`);
      writeFileSync(path, text);
      try {
        const r = readProcCounters({ procNet: join(tmp, 'net'), procSys: join(tmp, 'sys'), proc: NO_PROC, sockets });
        assert.ok(Array.isArray(r.readings) && Array.isArray(r.errors));
        assert.ok(r.errors.length <= 1);
      } finally {
        writeFileSync(path, original);
      }
    }),
    { numRuns: Math.max(50, RUNS / 5) },
  );
});

// ---------------------------------------------------------------------------
// the real kernel

const READER_URL = new URL('dist/src/sources/counters/proc-reader.js', `file://${PROJECT_ROOT}`).href;

/** A process in NS owning UDP 127.0.0.1:PORT with the smallest receive buffer, whose event loop is blocked: it never reads. */
function startSilentReceiver(ns: TestNetns, port: number): Promise<{ pid: number; stop: () => void }> {
  const code = `
    const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 1 });
    s.bind(${port}, '127.0.0.1', () => {
      process.stdout.write('ready ' + process.pid + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000);
      process.exit(0);
    });`;
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error('receiver did not start'));
    }, 10_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ pid: Number(m[1]), stop: () => child.kill('SIGKILL') });
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`receiver exited: ${out}`));
    });
  });
}

test('real kernel: Udp:NoPorts and a socket\'s drops move inside a namespace, with the owning process', kernelTest(), async () => {
  const ns = new TestNetns('procfs');
  const receiver = await startSilentReceiver(ns, 9999);
  try {
    // Snapshot, 20 datagrams to a closed port and 200 to the silent socket, snapshot: in one process inside the namespace.
    const check = `
      import { readProcCounters } from ${JSON.stringify(READER_URL)};
      import dgram from 'node:dgram';
      const before = readProcCounters();
      const s = dgram.createSocket('udp4');
      const send = (port) => new Promise((ok, ko) => s.send(Buffer.alloc(64), port, '127.0.0.1', (e) => (e ? ko(e) : ok())));
      for (let i = 0; i < 20; i++) await send(9);
      for (let i = 0; i < 200; i++) await send(9999);
      s.close();
      await new Promise((ok) => setTimeout(ok, 100));
      const after = readProcCounters();
      process.stdout.write(JSON.stringify({ before, after }));`;
    const out = ns.exec(process.execPath, ['--input-type=module', '-e', check]);
    const { before, after } = JSON.parse(out) as { before: { readings: CounterReading[]; errors: string[] }; after: { readings: CounterReading[]; errors: string[] } };
    assert.deepEqual(before.errors, []);
    assert.deepEqual(after.errors, []);
    const deltas = byKey(diffReadings(before.readings, after.readings, 1));
    assert.equal(deltas.get('Udp:NoPorts')?.delta, 20);
    const rcvbuf = deltas.get('Udp:RcvbufErrors')?.delta ?? 0;
    assert.ok(rcvbuf > 150, `Udp:RcvbufErrors moved by ${rcvbuf}`);
    const socket = after.readings.find((r) => r.name === 'socket:drops' && r.scope.startsWith('udp 127.0.0.1:9999 inode '));
    assert.ok(socket, 'the dropping socket is listed');
    assert.equal(socket.value, rcvbuf, 'the socket dropped what Udp:RcvbufErrors counted');
    assert.equal(socket.detail, `pid ${receiver.pid} (node)`);
    assert.equal(socket.layer, 'socket');
    const queue = after.readings.find((r) => r.name === 'socket:rx_queue' && r.scope === socket.scope);
    assert.ok(queue && queue.gauge && queue.value > 0, 'the unread datagrams wait in the receive queue');
    // Counters of the namespace, not of the host: only lo.
    assert.deepEqual([...new Set(after.readings.filter((r) => r.name.startsWith('netdev:')).map((r) => r.scope))], ['lo']);
  } finally {
    receiver.stop();
    ns.delete();
  }
});

test('real kernel: after setns() on this thread, the default root reads the other namespace', kernelTest(), () => {
  const ns = new TestNetns('procfs-setns');
  try {
    ns.ip('link', 'add', 'dmt-a', 'type', 'veth', 'peer', 'name', 'dmt-b');
    const ifs = (r: { readings: CounterReading[] }) => new Set(r.readings.filter((x) => x.name === 'netdev:rx_bytes').map((x) => x.scope));
    const home = ifs(readProcCounters({ sockets: 'none' }));
    const inside = withNetns(resolveNetns(ns.name), () => readProcCounters({ sockets: 'none' }));
    assert.deepEqual(inside.errors, []);
    assert.deepEqual([...ifs(inside)].sort(), ['dmt-a', 'dmt-b', 'lo']);
    assert.ok(!home.has('dmt-a'));
    assert.deepEqual(ifs(readProcCounters({ sockets: 'none' })), home, 'back home afterwards');
  } finally {
    ns.delete();
  }
});

test('real kernel: a snapshot of a namespace with 100 veth pairs is fast', kernelTest(), (t) => {
  const ns = new TestNetns('procfs-perf');
  try {
    const batch = Array.from({ length: 100 }, (_, i) => `link add dmp${i}a type veth peer name dmp${i}b`).join('\n');
    sh('ip', ['-n', ns.name, '-batch', '-'], `${batch}\n`);
    const target = resolveNetns(ns.name);
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      const r = withNetns(target, () => readProcCounters());
      times.push(performance.now() - t0);
      assert.deepEqual(r.errors, []);
      count = r.readings.length;
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    t.diagnostic(`readProcCounters, 201 interfaces, ${count} readings: median ${median.toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms (setns included)`);
    assert.equal(new Set(r0Scopes(withNetns(target, () => readProcCounters()).readings)).size, 201);
    assert.ok(median < 100, `median ${median.toFixed(1)} ms`);
  } finally {
    ns.delete();
  }
});

function r0Scopes(rs: readonly CounterReading[]): string[] {
  return rs.filter((r) => r.name === 'netdev:rx_bytes').map((r) => r.scope);
}
