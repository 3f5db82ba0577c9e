/**
 * The local pipeline's intervals as `top` shows them: symbols, namespaces,
 * containers and interfaces resolved on this host, benign drops marked by
 * the knowledge base, and the drop-related counters that moved with their
 * correlation (the same selection as the service's event stream).
 */
import type { IntervalReport } from '../../core/interval.js';
import type { KnowledgeView } from '../../core/knowledge-view.js';
import type { LiveCounter, LiveInterval, LivePoint } from '../../core/live.js';
import type { IntervalOutput } from '../../core/pipeline.js';
import type { Symbolizer } from '../../kernel/kallsyms.js';
import type { Attribution } from '../../core/attribution.js';
import { describePoint, describeStack } from '../describe.js';
import { selectDeltas } from '../counters.js';

/** Counters listed per interval at most (the largest moves and every blind spot). */
const MAX_COUNTERS = 100;

export function liveInterval(r: IntervalReport, symbols: Symbolizer | undefined, attribution: Attribution | undefined, kb: KnowledgeView): LiveInterval {
  const points: LivePoint[] = [];
  for (const p of r.points) {
    if (p.count <= 0) continue;
    const d = describePoint(p, symbols, attribution);
    const fn = p.trap ? p.trap.name : (d.function ?? d.address);
    points.push({
      reason: d.reason,
      function: fn,
      symbol: p.trap ? `${p.trap.group ? `${p.trap.group}/` : ''}${p.trap.name}` : d.where,
      location: p.trap ? '' : d.address,
      protocol: d.protocol,
      origin: p.origin,
      netns: d.netns === null ? '' : d.initNetns ? 'init' : (d.netnsName ?? String(d.netns)),
      container: d.container ?? '',
      ifname: d.ifindex === null ? '' : (d.ifname ?? `ifindex ${d.ifindex}`),
      count: p.count,
      benign: d.reason && !p.trap ? kb.benign(d.reason, d.function ?? undefined) : 'no',
      ...(p.stack ? { stack: describeStack(p.stack, symbols) } : {}),
    });
  }
  let counters: LiveCounter[] | undefined;
  if (r.counters) {
    const blind = new Map<string, string>();
    for (const b of r.correlation?.blindSpots ?? []) blind.set(`${b.counter.name}@${b.counter.scope}`, b.why);
    counters = selectDeltas(r.counters, kb, false)
      .filter((c) => c.delta > 0)
      .sort((a, b) => Number(blind.has(`${b.name}@${b.scope}`)) - Number(blind.has(`${a.name}@${a.scope}`)) || b.delta - a.delta)
      .slice(0, MAX_COUNTERS)
      .map((c) => {
        const why = blind.get(`${c.name}@${c.scope}`);
        return { name: c.name, scope: c.scope, delta: c.delta, rate: c.rate, class: c.class, meaning: c.meaning, ...(why ? { blindSpot: why } : {}) };
      });
  }
  return {
    seq: r.seq,
    start: r.start,
    end: r.end,
    drops: r.drops,
    lost: r.lostTotal,
    lostByCause: Object.fromEntries(r.lost),
    points,
    overflow: { drops: r.overflow.drops, points: r.overflow.points },
    ...(counters ? { counters } : {}),
    ...(r.correlation
      ? { correlated: r.correlation.groups.map((g) => ({ reasons: g.reasons, counters: g.counters.map((d) => (d.scope ? `${d.name}@${d.scope}` : d.name)), drops: g.drops })) }
      : {}),
  };
}

/** The pipeline's output for `top`: each closed interval handed to the view. */
export class TopOutput implements IntervalOutput {
  constructor(
    private readonly sink: (r: LiveInterval) => void,
    private readonly symbols: Symbolizer | undefined,
    private readonly attribution: Attribution | undefined,
    private readonly kb: KnowledgeView,
  ) {}

  interval(r: IntervalReport): void {
    this.sink(liveInterval(r, this.symbols, this.attribution, this.kb));
  }
}
