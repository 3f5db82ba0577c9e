/**
 * The diagnosis (core/diagnosis.ts) of a recording: its drop points and
 * counter totals, as the report and the service's time-range queries ask for
 * it. Kept apart from report.ts, whose hook stays usable with any engine.
 */
import type { DropPoint } from '../core/interval.js';
import type { KnowledgeView } from '../core/knowledge-view.js';
import type { CounterDelta, CounterLayer } from '../core/counter.js';
import { Diagnoser, type Finding } from '../core/diagnosis.js';
import { NO_REASON } from '../core/drop.js';
import type { Attribution } from '../core/attribution.js';
import type { DiagnoseFn, DiagnosisInput } from './report.js';

/** The recorded symbol without its size: "fn+0x4bc [mod]", as the live diagnosis names points. */
const shortSymbol = (symbol: string) => symbol.replace(/\/0x[0-9a-f]+/, '');

export function recordingDiagnosis(kb: KnowledgeView): DiagnoseFn {
  return (input) => diagnoseRecorded(kb, input);
}

/**
 * The diagnosis of recorded drop points and counter totals (the report's, and
 * the service's over a time range). Findings are per namespace as the points
 * were recorded; `attribution` names them, for a recording of this host made
 * recently (the service's): a report of an older file keeps the inodes, which
 * the kernel may have given to other namespaces since.
 */
export function diagnoseRecorded(kb: KnowledgeView, { points, counters, seconds }: DiagnosisInput, attribution?: Attribution): Finding[] {
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
      ...(p.ifindex !== null ? { ifindex: p.ifindex } : {}),
      ...(p.netns !== null ? { netns: p.netns } : {}),
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
  // The recording keeps no namespace of its counters: they are not placed in dropmon's own
  // (the names are looked up without it), and pair with drops of any namespace.
  const names: Attribution | undefined = attribution && {
    netns: (inode) => attribution.netns(inode),
    ifname: (netns, ifindex) => attribution.ifname(netns, ifindex),
    initInode: attribution.initInode,
  };
  const d = new Diagnoser(kb, (a) => symbolOf.get(a) ?? `0x${a.toString(16)}`, false, names);
  d.add(dropPoints, deltas, seconds);
  return d.findings();
}
