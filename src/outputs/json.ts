/**
 * JSON lines: one object per drop point per interval ("type":"drop") and one
 * per interval ("type":"interval") with totals and losses. Field names are
 * documented in README.md; keep them stable.
 */
import type { IntervalReport } from '../core/interval.js';
import type { IntervalOutput } from '../core/pipeline.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';
import { describePoint, describeStack, trapInputName } from './describe.js';

export class JsonOutput implements IntervalOutput {
  constructor(
    private readonly write: (text: string) => void,
    private readonly symbols: Symbolizer | undefined,
    private readonly attribution: Attribution | undefined,
    private readonly source: string,
  ) {}

  interval(r: IntervalReport): void {
    this.write(formatIntervalJson(r, this.symbols, this.attribution, this.source).join('\n') + '\n');
  }
}

export function formatIntervalJson(r: IntervalReport, symbols: Symbolizer | undefined, attribution: Attribution | undefined, source: string): string[] {
  const time = new Date(r.end).toISOString();
  const out: string[] = [];
  for (const p of r.points) {
    // Per-packet samples carry no count (the source counts the drops apart).
    if (p.count === 0) continue;
    const d = describePoint(p, symbols, attribution);
    out.push(
      JSON.stringify({
        type: 'drop',
        time,
        interval: r.seq,
        count: p.count,
        location: d.address,
        symbol: d.symbol,
        function: d.function,
        offset: d.offset,
        module: d.module,
        reason: d.reason || null,
        reason_code: p.reason >= 0 ? p.reason : null,
        protocol: d.protocol || null,
        ethertype: p.protocol,
        origin: p.origin,
        source,
        ...(p.stack ? { stack: describeStack(p.stack, symbols) } : {}),
        ...(p.trap
          ? {
              trap: p.trap.name,
              trap_group: p.trap.group ?? null,
              trap_type: p.trap.type ?? null,
              trap_action: p.trap.action ?? null,
              devlink: p.trap.device ?? null,
            }
          : {}),
        ...(p.netns !== undefined || p.ifindex !== undefined || p.trap
          ? { ifindex: d.ifindex, ifname: p.trap ? trapInputName(p, d) : d.ifname, netns: d.netns, netns_name: d.netnsName, container: d.container }
          : {}),
      }),
    );
  }
  out.push(
    JSON.stringify({
      type: 'interval',
      time,
      interval: r.seq,
      start: new Date(r.start).toISOString(),
      duration_ms: r.end - r.start,
      drops: r.drops,
      points: r.points.filter((p) => p.count > 0).length,
      overflow_drops: r.overflow.drops,
      overflow_points: r.overflow.points,
      lost_events: r.lostTotal,
      lost_by_cause: Object.fromEntries(r.lost),
      source,
    }),
  );
  return out;
}
