/**
 * dropwatch-compatible console lines, one per drop point per interval:
 *   12 drops at __udp4_lib_rcv+0x4bc (0xffffffff81abc4bc) [software] NO_SOCKET ipv4
 * Everything up to "[software]" is what dropwatch has printed for 15 years
 * (operators' scripts parse it); the reason and protocol follow.
 */
import type { IntervalReport } from '../core/interval.js';
import type { IntervalOutput } from '../core/pipeline.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';
import { attributionText, describePoint, describeStack, trapText } from './describe.js';
import { terminalSafe } from '../core/terminal-safe.js';

export class TextOutput implements IntervalOutput {
  constructor(
    private readonly write: (text: string) => void,
    private readonly symbols: Symbolizer | undefined,
    private readonly attribution: Attribution | undefined,
    /** Print a timestamp line before each non-empty interval. */
    private readonly timestamps = false,
    /** Packets are printed one by one elsewhere: print only overflow and loss lines. */
    private readonly lossesOnly = false,
  ) {}

  interval(r: IntervalReport): void {
    const lines = formatIntervalText(this.lossesOnly ? { ...r, points: [], overflow: { drops: 0, points: 0, pointsCapped: false } } : r, this.symbols, this.attribution);
    if (lines.length === 0) return;
    if (this.timestamps) lines.unshift(`# ${new Date(r.end).toISOString()} interval ${r.seq}: ${r.drops} drops`);
    this.write(lines.join('\n') + '\n');
  }
}

export function formatIntervalText(r: IntervalReport, symbols: Symbolizer | undefined, attribution: Attribution | undefined): string[] {
  const lines: string[] = [];
  for (const p of r.points) {
    // Per-packet samples carry no count (the source counts the drops apart).
    if (p.count === 0) continue;
    if (p.trap) {
      // dropwatch's form for hardware drops, "<count> drops at <trap> [hardware]",
      // then what the source knows: group, type, action, input port, device
      lines.push(`${p.count} drops at ${p.trap.name} [${p.origin}]${trapText(p, describePoint(p, symbols, attribution))}`);
      continue;
    }
    const d = describePoint(p, symbols, attribution);
    const tail = [d.reason, d.protocol].filter(Boolean).join(' ');
    lines.push(`${p.count} drops at ${d.where} (${d.address}) [${p.origin}]${tail ? ' ' + tail : ''}${attributionText(d)}`);
    if (p.stack) for (const f of describeStack(p.stack, symbols)) lines.push(`    ${f}`);
  }
  if (r.overflow.drops > 0) {
    const m = `${r.overflow.pointsCapped ? 'at least ' : ''}${r.overflow.points}`;
    lines.push(`${r.overflow.drops} drops at ${m} other locations (over --max-points)`);
  }
  if (r.lostTotal > 0) {
    const causes = [...r.lost].map(([c, n]) => `${c}: ${n}`).join(', ');
    lines.push(`${r.lostTotal} events lost (${causes})`);
  }
  return lines.map(terminalSafe);
}
