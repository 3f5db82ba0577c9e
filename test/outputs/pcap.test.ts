/**
 * Capture files of dropped packets (outputs/pcap.ts): the blocks and records
 * byte for byte, then whole files written by PcapWriter and read back by
 * tshark, in both formats; and what a write error does.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropSample, DroppedPacket } from '../../src/core/drop.js';
import { DropmonError } from '../../src/core/errors.js';
import { PcapWriter, pcapGlobalHeader, pcapRecord, pcapngInterface, pcapngPacket, pcapngSectionHeader } from '../../src/outputs/pcap.js';
import { UDP_RCV, ipv4Udp, ipv6TcpL3 } from './inputs.js';

const dir = mkdtempSync(join(tmpdir(), 'dropmon-pcap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** 2023-11-14T22:13:20.123456789Z */
const TIMESTAMP = 1_700_000_000_123_456_789n;

function sample(packet: DroppedPacket | undefined, more: Partial<DropSample> = {}): DropSample {
  return { location: UDP_RCV, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software', count: 1, ...(packet ? { packet } : {}), ...more };
}

/** A netlink message: header (length, type) and a generic netlink header (command, version 2). */
function genlMessage(type: number, cmd: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, true);
  v.setUint16(4, type, true);
  b[16] = cmd;
  b[17] = 2;
  return b;
}

const tsharkMissing = spawnSync('tshark', ['-v'], { stdio: 'ignore' }).error ? 'tshark is not installed (scripts/setup.sh installs it)' : false;

/** tshark's fields of every frame of `file`, one array per frame. */
function tsharkFields(file: string, fields: string[]): string[][] {
  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trimEnd().split('\n').map((l) => l.split('|'));
}

test('pcap (netlink format): global header and records byte for byte, microsecond timestamps', () => {
  assert.equal(hex(pcapGlobalHeader()), 'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + '00000400' + 'fd000000');
  // 1700000000 s = 0x6553f100, 123456 us = 0x1e240; length 16 (cooked header) + 4
  assert.equal(
    hex(pcapRecord(TIMESTAMP, Uint8Array.of(1, 2, 3, 4))),
    '00f15365' + '40e20100' + '14000000' + '14000000' + '0004033800000000000000000000' + '0010' + '01020304',
  );
});

test('pcapng: section header, interface and packet blocks byte for byte, padded to 32 bits', () => {
  assert.equal(hex(pcapngSectionHeader()), '0a0d0d0a' + '1c000000' + '4d3c2b1a' + '0100' + '0000' + 'ffffffffffffffff' + '1c000000');
  // linktype 1, snaplen 262144; if_name "eth" (padded), if_tsresol 9 (padded), end of options
  assert.equal(
    hex(pcapngInterface(1, 'eth')),
    '01000000' + '28000000' + '0100' + '0000' + '00000400' + '0200' + '0300' + '65746800' + '0900' + '0100' + '09000000' + '00000000' + '28000000',
  );
  // interface 1, timestamp as two 32-bit halves, captured 3 of 60 bytes (padded to 4), comment "ab" (padded)
  const ts = TIMESTAMP;
  const half = (n: bigint) => hex(Uint8Array.from(Buffer.from(new Uint32Array([Number(n)]).buffer)));
  assert.equal(
    hex(pcapngPacket(1, ts, Uint8Array.of(0xaa, 0xbb, 0xcc), 60, 'ab')),
    '06000000' + '30000000' + '01000000' + half(ts >> 32n) + half(ts & 0xffffffffn) + '03000000' + '3c000000' + 'aabbcc00' + '0100' + '0200' + '61620000' + '00000000' + '30000000',
  );
  assert.equal(new DataView(pcapngPacket(0, 0n, new Uint8Array(8), 4, '').buffer).getUint32(24, true), 8, 'the original length is never below the captured one');
});

test('PcapWriter pcapng: tshark reads every packet with its interface, nanosecond time, lengths, comment and headers', { skip: tsharkMissing }, () => {
  const file = join(dir, 'drops.pcapng');
  const w = new PcapWriter(file, 'pcapng', (s) => `drop ${s.reasonName} [${s.origin}]`);
  w.packets([
    sample({ timestamp: TIMESTAMP, origLen: 74, payload: ipv4Udp() }),
    sample(undefined), // a drop without a packet (summary mode): no frame
    // A device without a MAC header (a tunnel): the payload starts with the IP header.
    sample({ timestamp: TIMESTAMP + 1_000_000_000n, payload: ipv6TcpL3() }, { protocol: 0x86dd, reasonName: 'TCP_INVALID_SEQUENCE' }),
  ]);
  w.close();
  assert.equal(w.skipped, 0);
  const fields = ['frame.interface_id', 'frame.time_epoch', 'frame.len', 'frame.cap_len', 'frame.comment', 'frame.protocols', 'ip.src', 'ipv6.dst', 'udp.dstport', 'tcp.srcport'];
  assert.deepEqual(tsharkFields(file, fields), [
    ['0', '1700000000.123456789', '74', '42', 'drop NO_SOCKET [software]', 'eth:ethertype:ip:udp', '10.0.0.1', '', '9', ''],
    ['1', '1700000001.123456789', '60', '60', 'drop TCP_INVALID_SEQUENCE [software]', 'raw:ipv6:tcp', '', '2001:db8::2', '', '443'],
  ]);
});

test('PcapWriter netlink: the family message first, then each packet\'s whole NET_DM message, as tshark dissects them', { skip: tsharkMissing }, () => {
  const file = join(dir, 'drops.pcap');
  const w = new PcapWriter(file, 'netlink', () => 'unused');
  w.family(genlMessage(0x10, 1)); // CTRL_CMD_NEWFAMILY from the controller
  w.packets([sample({ timestamp: TIMESTAMP, raw: genlMessage(0x1c, 2) }), sample({ timestamp: TIMESTAMP, payload: ipv4Udp() })]);
  w.close();
  const frames = tsharkFields(file, ['frame.len', 'netlink.hatype', 'netlink.family', 'netlink.hdr_len', 'genl.family_id', 'genl.version', 'frame.protocols']);
  assert.deepEqual(frames, [
    ['36', '824', '0x0010', '20', '0x10', '2', 'netlink:genl:genl'],
    ['36', '824', '0x0010', '20', '0x1c', '2', 'netlink:genl:data'],
  ], 'a packet without its raw message has no record in this format');
  assert.equal(tsharkFields(file, ['frame.time_epoch'])[1][0], '1700000000.123456000');
});

test('PcapWriter: a file it cannot open is a DropmonError; a write error warns once, counts what it skipped, never throws', () => {
  assert.throws(() => new PcapWriter(join(dir, 'no-such-dir', 'x.pcapng'), 'pcapng', () => ''), (e: unknown) => e instanceof DropmonError && /cannot open the pcap file .*no-such-dir.*: ENOENT/.test(e.message));
  const warnings: string[] = [];
  const w = new PcapWriter('/dev/full', 'pcapng', () => '', (m) => warnings.push(m));
  w.packets([sample({ payload: ipv4Udp() }), sample({ payload: ipv4Udp() })]);
  w.close();
  assert.deepEqual(warnings, ['writing /dev/full failed (ENOSPC); further packets are not written (monitoring goes on)']);
  assert.equal(w.skipped, 3, 'the headers and both packets');
});
