/**
 * Per-packet outputs for NET_DM packet mode: one text line or one JSON
 * object per dropped packet, with its decoded headers.
 */
import { hexAddress, protocolName, type DropSample } from '../core/drop.js';
import { decodeHeaders, type PacketHeaders } from '../core/packet.js';
import type { PacketOutput } from '../core/pipeline.js';
import { formatSymbol, type Symbolizer } from '../kernel/kallsyms.js';
import { terminalSafe } from '../core/terminal-safe.js';

function headers(s: DropSample): PacketHeaders | undefined {
  const p = s.packet?.payload;
  return p && p.length ? decodeHeaders(p, s.protocol) : undefined;
}

function flowText(h: PacketHeaders | undefined): string {
  if (!h?.src) return '';
  const port = (a: string, p?: number) => (p === undefined ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  const icmp = h.icmpType !== undefined ? ` type ${h.icmpType}` : '';
  return ` ${h.l4 ?? ''} ${port(h.src, h.sport)} > ${port(h.dst ?? '?', h.dport)}${icmp}`;
}

function where(s: DropSample, symbols: Symbolizer | undefined): string {
  if (s.trap) return `${s.trap.name}${s.trap.group ? ` (${s.trap.group})` : ''}`;
  const sym = symbols?.lookup(s.location);
  const name = sym ? formatSymbol(sym, s.location, false) : (s.packet?.kernelSymbol ?? hexAddress(s.location));
  return `${name} (${hexAddress(s.location)})`;
}

/** "drop at __udp4_lib_rcv+0x9a2 (0x...) [software] NO_SOCKET dev ifindex 2": what a pcap comment says. */
export function describeDrop(s: DropSample, symbols: Symbolizer | undefined): string {
  const p = s.packet;
  const dev = p?.ifname ?? (p?.ifindex !== undefined ? `ifindex ${p.ifindex}` : '');
  return `drop at ${where(s, symbols)} [${s.origin}]${s.reasonName ? ` ${s.reasonName}` : ''}${dev ? ` dev ${dev}` : ''}`;
}

/** "drop at __udp4_lib_rcv+0x9a2 (0x...) [software] NO_SOCKET dev ifindex 2 len 74 ipv4 udp 10.0.0.1:5 > 10.0.0.2:9" */
export class PacketTextOutput implements PacketOutput {
  constructor(
    private readonly write: (t: string) => void,
    private readonly symbols: Symbolizer | undefined,
  ) {}

  packets(samples: readonly DropSample[]): void {
    const lines = samples.map((s) => {
      const p = s.packet!;
      return (
        describeDrop(s, this.symbols) +
        `${p.origLen !== undefined ? ` len ${p.origLen}` : ''}` +
        `${s.protocol ? ` ${protocolName(s.protocol)}` : ''}${flowText(headers(s))}`
      );
    });
    this.write(terminalSafe(lines.join('\n') + '\n'));
  }
}

export class PacketJsonOutput implements PacketOutput {
  constructor(
    private readonly write: (t: string) => void,
    private readonly symbols: Symbolizer | undefined,
    private readonly source: string,
  ) {}

  packets(samples: readonly DropSample[]): void {
    const out = samples.map((s) => {
      const p = s.packet!;
      const sym = this.symbols?.lookup(s.location);
      return JSON.stringify({
        type: 'packet',
        time: p.timestamp !== undefined ? new Date(Number(p.timestamp / 1_000_000n)).toISOString() : null,
        timestamp_ns: p.timestamp !== undefined ? p.timestamp.toString() : null,
        origin: s.origin,
        location: s.trap ? null : hexAddress(s.location),
        symbol: s.trap ? null : sym ? formatSymbol(sym, s.location) : (p.kernelSymbol ?? null),
        reason: s.reasonName || null,
        trap: s.trap?.name ?? null,
        trap_group: s.trap?.group ?? null,
        ifindex: p.ifindex ?? null,
        ifname: p.ifname ?? null,
        orig_len: p.origLen ?? null,
        captured_len: p.payload?.length ?? 0,
        protocol: s.protocol ? protocolName(s.protocol) : null,
        headers: headers(s) ?? null,
        source: this.source,
      });
    });
    this.write(out.join('\n') + '\n');
  }
}
