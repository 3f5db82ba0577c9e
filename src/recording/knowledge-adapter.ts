/**
 * What the knowledge base adds to a report of a recording: which counters
 * count drops (so "counters that moved" leads with them, not with byte
 * counters), and the diagnosis (core/diagnosis.ts) over the recorded drop
 * points and counter totals. Kept apart from report.ts, whose hook stays
 * usable with any engine.
 */
import type { DropPoint } from '../core/interval.js';
import type { KnowledgeView } from '../core/correlate.js';
import { counterMeaning } from '../core/counter-meaning.js';
import type { CounterDelta, CounterLayer } from '../core/counter.js';
import { Diagnoser, type Finding } from '../core/diagnosis.js';
import { NO_REASON } from '../core/drop.js';
import type { CounterClassifier, DiagnoseFn, DiagnosisInput } from './report.js';

export function counterClassifier(kb: KnowledgeView): CounterClassifier {
  return (name) => counterMeaning({ name }, kb);
}

/** The recorded symbol without its size: "fn+0x4bc [mod]", as the live diagnosis names points. */
const shortSymbol = (symbol: string) => symbol.replace(/\/0x[0-9a-f]+/, '');

export function recordingDiagnosis(kb: KnowledgeView): DiagnoseFn {
  return (input) => diagnoseRecorded(kb, input);
}

/** The diagnosis of recorded drop points and counter totals (the report's, and the service's over a time range). */
export function diagnoseRecorded(kb: KnowledgeView, { points, counters, seconds }: DiagnosisInput): Finding[] {
  const symbolOf = new Map<bigint, string>();
  const dropPoints: DropPoint[] = [];
  for (const p of points) {
    // The recording writes 0x-hex; a file from elsewhere may not: such a point is left out of the diagnosis.
    if (typeof p.location !== 'string' || !/^0x[0-9a-f]{1,16}$/i.test(p.location)) continue;
    const location = BigInt(p.location);
    symbolOf.set(location, shortSymbol(String(p.symbol)));
    dropPoints.push({
      location,
      reason: p.reasonCode ?? NO_REASON,
      reasonName: p.reason,
      protocol: p.ethertype,
      origin: p.origin === 'hardware' ? 'hardware' : 'software',
      count: p.count,
      ...(p.trap ? { trap: { name: p.trap, ...(p.trapGroup ? { group: p.trapGroup } : {}) } } : {}),
    });
  }
  const deltas: CounterDelta[] = counters.map((c) => ({
    name: c.name,
    scope: c.scope,
    layer: c.layer as CounterLayer,
    value: c.lastValue,
    source: 'recording',
    delta: c.delta,
    rate: c.maxRate,
    // The recording keeps no gauge flag: the knowledge base knows which counters are levels.
    ...(kb.counter(c.name)?.gauge ? { gauge: true } : {}),
  }));
  const d = new Diagnoser(kb, (a) => symbolOf.get(a) ?? `0x${a.toString(16)}`);
  d.add(dropPoints, deltas, seconds);
  return d.findings();
}
