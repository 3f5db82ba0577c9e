/**
 * Packet capture files of dropped packets, in two formats:
 *
 * - pcapng (the default): each dropped packet as a frame (Ethernet, or raw IP
 *   for devices without a MAC header) with the kernel's original length,
 *   nanosecond timestamp, and a comment "drop at <location> [origin] <reason>
 *   dev <interface>". Every tool reads it; the location and the reason show in
 *   any tshark (`tshark -r F -V`, or `-T fields -e frame.comment`), which is
 *   what an operator needs first.
 * - netlink (`--pcap-format netlink`): dwdump's format, LINKTYPE_NETLINK (253),
 *   each record a cooked header and the whole NET_DM message, the first being
 *   the controller's NEWFAMILY so Wireshark maps the family id to its net_dm
 *   dissector. It keeps every attribute, but the Wireshark of Debian 12
 *   does not know the reason attribute yet (shown as "Unknown (23)").
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { DropSample } from '../core/drop.js';
import type { PacketOutput } from '../core/pipeline.js';
import { DropmonError, errnoCode } from '../core/errors.js';

const LINKTYPE_NETLINK = 253;
const SNAPLEN = 262144;
const COOKED = Uint8Array.of(0x00, 0x04, 0x03, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10);

export function pcapGlobalHeader(): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, SNAPLEN, true);
  v.setUint32(20, LINKTYPE_NETLINK, true);
  return b;
}

/** One record: timestamp in ns since the epoch, the netlink message. */
export function pcapRecord(timestampNs: bigint, message: Uint8Array): Uint8Array {
  const len = COOKED.length + message.length;
  const b = new Uint8Array(16 + len);
  const v = new DataView(b.buffer);
  v.setUint32(0, Number(timestampNs / 1_000_000_000n), true);
  v.setUint32(4, Number((timestampNs % 1_000_000_000n) / 1000n), true);
  v.setUint32(8, len, true);
  v.setUint32(12, len, true);
  b.set(COOKED, 16);
  b.set(message, 32);
  return b;
}

export type PcapFormat = 'pcapng' | 'netlink';

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;

function block(type: number, body: Uint8Array): Uint8Array {
  const len = 12 + ((body.length + 3) & ~3);
  const b = new Uint8Array(len);
  const v = new DataView(b.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, len, true);
  b.set(body, 8);
  v.setUint32(len - 4, len, true);
  return b;
}

function option(code: number, value: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + ((value.length + 3) & ~3));
  const v = new DataView(b.buffer);
  v.setUint16(0, code, true);
  v.setUint16(2, value.length, true);
  b.set(value, 4);
  return b;
}

const concat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const OPT_END = new Uint8Array(4);

/** Section header block, little-endian, version 1.0, unknown section length. */
export function pcapngSectionHeader(): Uint8Array {
  const body = new Uint8Array(16);
  const v = new DataView(body.buffer);
  v.setUint32(0, 0x1a2b3c4d, true);
  v.setUint16(4, 1, true);
  v.setUint16(6, 0, true);
  v.setBigInt64(8, -1n, true);
  return block(0x0a0d0d0a, body);
}

/** Interface description block with nanosecond timestamps (if_tsresol = 9). */
export function pcapngInterface(linktype: number, name: string): Uint8Array {
  const head = new Uint8Array(8);
  const v = new DataView(head.buffer);
  v.setUint16(0, linktype, true);
  v.setUint32(4, SNAPLEN, true);
  return block(1, concat([head, option(2, Buffer.from(name)), option(9, Uint8Array.of(9)), OPT_END]));
}

/** Enhanced packet block with a comment. */
export function pcapngPacket(iface: number, timestampNs: bigint, data: Uint8Array, origLen: number, comment: string): Uint8Array {
  const head = new Uint8Array(20);
  const v = new DataView(head.buffer);
  v.setUint32(0, iface, true);
  v.setUint32(4, Number(timestampNs >> 32n), true);
  v.setUint32(8, Number(timestampNs & 0xffffffffn), true);
  v.setUint32(12, data.length, true);
  v.setUint32(16, Math.max(origLen, data.length), true);
  const padded = new Uint8Array((data.length + 3) & ~3);
  padded.set(data);
  return block(6, concat([head, padded, option(1, Buffer.from(comment)), OPT_END]));
}

/** The comment of a dropped packet: location, origin, reason, device. */
export type DescribeDrop = (s: DropSample) => string;

export class PcapWriter implements PacketOutput {
  private fd: number;
  private readonly ownFd: boolean;
  /** Records not written (after a write error, e.g. a full disk). */
  skipped = 0;
  private failed: string | undefined;

  constructor(
    readonly path: string,
    readonly format: PcapFormat,
    private readonly describe: DescribeDrop,
    private readonly warn: (m: string) => void = () => {},
    /** The reader went away (EPIPE: a pipe to tshark that ended): no warning, the caller stops. */
    private readonly onReaderGone?: () => void,
  ) {
    this.ownFd = path !== '-';
    try {
      this.fd = this.ownFd ? openSync(path, 'w') : 1;
    } catch (err) {
      throw new DropmonError(`cannot open the pcap file ${path}: ${errnoCode(err) ?? String(err)}`);
    }
    if (format === 'netlink') this.put(pcapGlobalHeader());
    else this.put(concat([pcapngSectionHeader(), pcapngInterface(LINKTYPE_ETHERNET, 'dropped-ethernet'), pcapngInterface(LINKTYPE_RAW, 'dropped-l3')]));
  }

  /** netlink format: the NEWFAMILY message, first, so readers know the family id. */
  family(message: Uint8Array | undefined): void {
    if (message && this.format === 'netlink') this.put(pcapRecord(BigInt(Date.now()) * 1_000_000n, message));
  }

  packets(samples: readonly DropSample[]): void {
    for (const s of samples) {
      const p = s.packet;
      if (!p) continue;
      const ts = p.timestamp ?? BigInt(Date.now()) * 1_000_000n;
      if (this.format === 'netlink') {
        if (p.raw) this.put(pcapRecord(ts, p.raw));
        continue;
      }
      const data = p.payload ?? new Uint8Array(0);
      // NET_DM sends bytes from the MAC header; EtherTypes below 0x600 and
      // payloads starting like an IP header come from devices without one.
      const l3 = data.length > 0 && isBareIp(data, s.protocol);
      this.put(pcapngPacket(l3 ? 1 : 0, ts, data, p.origLen ?? data.length, this.describe(s)));
    }
  }

  private put(b: Uint8Array): void {
    if (this.failed) {
      this.skipped++;
      return;
    }
    try {
      let off = 0;
      while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
    } catch (err) {
      this.failed = errnoCode(err) ?? String(err);
      this.skipped++;
      if (this.failed === 'EPIPE' && this.onReaderGone) return this.onReaderGone();
      this.warn(`writing ${this.path} failed (${this.failed}); further packets are not written (monitoring goes on)`);
    }
  }

  close(): void {
    if (this.ownFd && this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** True when a payload starts with the IP header its EtherType announces (an L3 device). */
function isBareIp(b: Uint8Array, ethertype: number): boolean {
  if (ethertype === 0x0800) return b[0] >> 4 === 4 && (b[0] & 0x0f) >= 5 && !(b.length >= 14 && ((b[12] << 8) | b[13]) === 0x0800);
  if (ethertype === 0x86dd) return b[0] >> 4 === 6 && !(b.length >= 14 && ((b[12] << 8) | b[13]) === 0x86dd);
  return false;
}
