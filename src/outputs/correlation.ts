/**
 * Per-interval lines that put counters beside the drops that explain them:
 *
 *   = Udp:RcvbufErrors +120, Udp:InErrors +120  <->  120 x SOCKET_RCVBUFF at __udp_enqueue_schedule_skb  [socket udp 10.1.0.2:47001: pid 812 (named) +120]
 *   = netns web-1 (docker 3f2a…): Udp:NoPorts +9  <->  9 x NO_SOCKET at __udp4_lib_rcv
 *   ! blind spot: link:rx_missed_errors +50 on eth0: these drops never reach kfree_skb, so no drop event can show them
 *   ! blind spot: TcpExt:ListenOverflows +38 in netns web-1: ...
 *   ~ usually benign: 3 drops (3 QUEUE_PURGE at tcp_disconnect)
 *
 * and the same as one JSON object per interval ("type":"counters"). A line
 * names the namespace where it is known and is not the initial one, as the
 * drop lines do.
 */
import type { DropPoint, IntervalReport } from '../core/interval.js';
import type { CounterDelta } from '../core/counter.js';
import type { IntervalOutput } from '../core/pipeline.js';
import type { Attribution } from '../core/attribution.js';
import { formatSymbol, type Symbolizer } from '../kernel/kallsyms.js';
import { netnsPlace } from './describe.js';
import { terminalSafe } from '../core/terminal-safe.js';

/** Counters listed per group or blind spot line before "…". */
const MAX_LISTED = 4;

function where(p: DropPoint, symbols: Symbolizer | undefined): string {
  if (p.trap) return p.trap.name;
  const s = formatSymbol(symbols?.lookup(p.location), p.location, false);
  const i = s.indexOf('+');
  return i > 0 ? s.slice(0, i) : s;
}

function counterText(d: CounterDelta): string {
  return `${d.name} +${d.delta}${d.scope && !d.scope.startsWith('udp') && !d.scope.startsWith('raw') && !d.scope.startsWith('icmp') ? ` on ${d.scope}` : ''}`;
}

/** What lines know of a namespace: names through the attribution, the initial one left out. */
class Places {
  constructor(private readonly attribution: Attribution | undefined) {}

  /** "netns web-1 (docker 3f2a…)"; "" for the initial namespace and when not known. */
  of(netns: number | undefined): string {
    if (netns === undefined || netns === this.attribution?.initInode) return '';
    const info = this.attribution?.netns(netns);
    return netnsPlace({ netns, ...(info?.name ? { netnsName: info.name } : {}), ...(info?.container ? { container: info.container } : {}), ...(info?.gone !== undefined ? { gone: info.gone } : {}) });
  }

  /** " in netns web-1" after a counter read in another namespace than `than`; "" otherwise. */
  counter(d: CounterDelta, than: number | undefined): string {
    if (d.hostWide || d.netns === undefined || d.netns === than) return '';
    const p = this.of(d.netns);
    return p ? ` in ${p}` : '';
  }

  /** JSON fields of a namespace: its inode and name, when known. */
  json(netns: number | undefined): { netns?: number; netns_name?: string } {
    if (netns === undefined) return {};
    const name = netns === this.attribution?.initInode ? 'init' : this.attribution?.netns(netns)?.name;
    return { netns, ...(name ? { netns_name: name } : {}) };
  }
}

export function formatCorrelationText(r: IntervalReport, symbols: Symbolizer | undefined, attribution?: Attribution): string[] {
  const lines: string[] = [];
  const c = r.correlation;
  const places = new Places(attribution);
  if (c) {
    for (const g of c.groups) {
      const listed = g.counters.filter((d) => d.name !== 'socket:drops');
      const counters = listed.slice(0, MAX_LISTED).map((d) => counterText(d) + places.counter(d, g.netns)).join(', ') + (listed.length > MAX_LISTED ? ', …' : '');
      const points = g.points
        .slice(0, 2)
        .map((p) => `${p.count} x ${p.reasonName} at ${where(p, symbols)}`)
        .join(', ');
      const sockets = g.counters
        .filter((d) => d.name === 'socket:drops')
        .slice(0, 2)
        .map((d) => `socket ${d.scope}${d.detail ? `: ${d.detail}` : ''} +${d.delta}`);
      const place = places.of(g.netns);
      lines.push(`= ${place ? `${place}: ` : ''}${counters || 'socket drops'}  <->  ${points}${g.points.length > 2 ? ', …' : ''}${sockets.length ? `  [${sockets.join('; ')}]` : ''}`);
    }
    for (const b of c.blindSpots.slice(0, 6)) lines.push(`! blind spot: ${counterText(b.counter)}${places.counter(b.counter, undefined)}: ${b.why}`);
    if (c.blindSpots.length > 6) lines.push(`! … ${c.blindSpots.length - 6} more counters moved with no drop event`);
  }
  const benign = r.benignPoints ?? [];
  if (benign.length) {
    const n = benign.reduce((s, p) => s + p.count, 0);
    const list = benign.slice(0, 3).map((p) => `${p.count} ${p.reasonName || 'drops'} at ${where(p, symbols)}`).join(', ');
    lines.push(`~ usually benign: ${n} drops (${list}${benign.length > 3 ? ', …' : ''})`);
  }
  return lines.map(terminalSafe);
}

export function correlationJson(r: IntervalReport, symbols: Symbolizer | undefined, source: string, attribution?: Attribution): Record<string, unknown> | undefined {
  if (!r.counters && !r.correlation && !r.benignPoints) return undefined;
  const places = new Places(attribution);
  const counter = (d: CounterDelta) => ({
    name: d.name,
    scope: d.scope,
    layer: d.layer,
    delta: d.delta,
    rate: Number(d.rate.toFixed(3)),
    ...(d.detail ? { detail: d.detail } : {}),
    ...places.json(d.hostWide ? undefined : d.netns),
  });
  return {
    type: 'counters',
    time: new Date(r.end).toISOString(),
    interval: r.seq,
    source,
    moved: (r.counters ?? []).filter((d) => !d.gauge).map(counter),
    correlated: (r.correlation?.groups ?? []).map((g) => ({
      ...places.json(g.netns),
      reasons: g.reasons,
      drops: g.drops,
      counters: g.counters.map(counter),
      points: g.points.map((p) => ({ reason: p.reasonName, function: where(p, symbols), count: p.count })),
    })),
    blind_spots: (r.correlation?.blindSpots ?? []).map((b) => ({ ...counter(b.counter), why: b.why })),
    benign: (r.benignPoints ?? []).map((p) => ({ reason: p.reasonName, function: where(p, symbols), count: p.count })),
  };
}

/** Text lines after each interval's drop lines. */
export class CorrelationTextOutput implements IntervalOutput {
  constructor(
    private readonly write: (text: string) => void,
    private readonly symbols: Symbolizer | undefined,
    private readonly attribution?: Attribution,
  ) {}

  interval(r: IntervalReport): void {
    const lines = formatCorrelationText(r, this.symbols, this.attribution);
    if (lines.length) this.write(lines.join('\n') + '\n');
  }
}

/** One "counters" JSON line per interval, after the interval's own lines. */
export class CorrelationJsonOutput implements IntervalOutput {
  constructor(
    private readonly write: (text: string) => void,
    private readonly symbols: Symbolizer | undefined,
    private readonly source: string,
    private readonly attribution?: Attribution,
  ) {}

  interval(r: IntervalReport): void {
    const o = correlationJson(r, this.symbols, this.source, this.attribution);
    if (o) this.write(JSON.stringify(o) + '\n');
  }
}
