/**
 * Diagnosis: from everything seen over a while (drop points and counter
 * deltas), a ranked list of causes, each with its evidence and its fix.
 *
 * A cause is a drop reason (what the kernel said) or, where no drop event was
 * seen, a drop counter (a blind spot: the NIC's missed packets, an accept
 * queue overflow freed with consume_skb). Counters that pair with a reason in
 * the knowledge base are evidence for that reason, not a second cause. Causes
 * are ranked by the number of packets they cost; benign ones (a socket closed
 * with data queued, packets for another host on a promiscuous port) sink to
 * the bottom and are marked, so the real problem comes first.
 */
import type { ConfigFacts } from './config-facts.js';
import type { DropPoint } from './interval.js';
import type { CounterDelta, CounterLayer } from './counter.js';
import type { CounterKnowledge, EntryKnowledge, KnowledgeView } from './knowledge-view.js';

export type Benignness = 'no' | 'usually' | 'sometimes';

export interface FindingCounter {
  readonly name: string;
  readonly scope: string;
  readonly layer: CounterLayer;
  readonly delta: number;
  readonly detail?: string;
  /** Kept per host, not per namespace (see CounterReading.hostWide). */
  readonly hostWide?: boolean;
}

export interface FindingPoint {
  /** Symbolic location ("__udp4_lib_rcv+0x4bc") or the hex address. */
  readonly location: string;
  readonly reason: string;
  readonly count: number;
}

export interface Finding {
  /** 1 for the most likely cause. */
  readonly rank: number;
  /** The drop reason, or the counter name for a cause seen only in counters. */
  readonly key: string;
  readonly kind: 'drops' | 'counter';
  /** The cause in plain words. */
  readonly cause: string;
  /** Packets this cause cost (drop events, or the counter's increase). */
  readonly packets: number;
  readonly benign: Benignness;
  readonly benignWhen?: string;
  /** false when the cause is a drop reason the knowledge base does not have (explained generically). */
  readonly known: boolean;
  /** Seen only in counters: the tracer cannot see these drops. */
  readonly blindSpot: boolean;
  readonly evidence: readonly string[];
  readonly check: readonly string[];
  readonly fix: readonly string[];
  readonly points: readonly FindingPoint[];
  readonly counters: readonly FindingCounter[];
}

/** Weight of possibly benign causes in the ranking (usually-benign ones always come last). */
const BENIGN_WEIGHT: Record<Benignness, number> = { no: 1, sometimes: 0.5, usually: 1 };
const MAX_POINTS_PER_FINDING = 5;
/**
 * Reasons that say only where, not why: a drop counter that moved with them
 * names the real cause (NETFILTER_DROP with conntrack:drop is a full conntrack
 * table, not a firewall rule).
 */
const GENERIC_REASONS = new Set(['NETFILTER_DROP', 'NOT_SPECIFIED']);
const MAX_COUNTERS_PER_FINDING = 8;

/** The function part of "sym+0x12/0x80" or "sym+0x12". */
function functionOf(location: string): string {
  const i = location.indexOf('+');
  return i > 0 ? location.slice(0, i) : location;
}

interface ReasonAcc {
  count: number;
  points: Map<string, { reason: string; count: number }>;
}

export class Diagnoser {
  private readonly reasons = new Map<string, ReasonAcc>();
  private readonly counters = new Map<string, FindingCounter & { delta: number }>();
  private seconds = 0;

  constructor(
    private readonly kb: KnowledgeView,
    /** Kernel address to "symbol+off" (or hex when unknown). */
    private readonly symbolize: (location: bigint) => string,
    /**
     * The diagnosis is of one namespace (diagnose --netns): a host-wide
     * counter (softnet_stat) that moved with no drop of this namespace to
     * pair with was moved by someone else, so it is no cause of its own.
     */
    private readonly oneNamespace = false,
  ) {}

  /** Add one interval: its drop points and the counters that moved in it. */
  add(points: readonly DropPoint[], deltas: readonly CounterDelta[], seconds = 0): void {
    this.seconds += seconds;
    for (const p of points) {
      if (p.origin === 'hardware' && p.trap) {
        this.addPoint(`trap:${p.trap.name}`, `${p.trap.group ? `${p.trap.group}/` : ''}${p.trap.name}`, p.count);
        continue;
      }
      const loc = this.symbolize(p.location);
      // Without a reason (old kernels, NET_DM summaries) the location is the key.
      this.addPoint(p.reasonName || `at ${functionOf(loc)}`, loc, p.count, p.reasonName);
    }
    for (const d of deltas) {
      if (d.gauge || d.delta <= 0) continue;
      const key = `${d.name}@${d.scope}`;
      const c = this.counters.get(key);
      if (c) c.delta += d.delta;
      else this.counters.set(key, { name: d.name, scope: d.scope, layer: d.layer, delta: d.delta, ...(d.detail ? { detail: d.detail } : {}), ...(d.hostWide ? { hostWide: true } : {}) });
    }
  }

  private addPoint(key: string, location: string, count: number, reason = key): void {
    let acc = this.reasons.get(key);
    if (!acc) this.reasons.set(key, (acc = { count: 0, points: new Map() }));
    acc.count += count;
    const p = acc.points.get(location);
    if (p) p.count += count;
    else acc.points.set(location, { reason, count });
  }

  /**
   * The ranked causes. `config` (the namespace's configuration at the end,
   * with what moved since the start) tells apart the causes a reason shares.
   */
  findings(config?: ConfigFacts): Finding[] {
    const kb = this.kb;
    const countersMoved = new Set([...this.counters.values()].map((c) => c.name));
    interface Draft {
      key: string;
      kind: 'drops' | 'counter';
      packets: number;
      points: FindingPoint[];
      counters: FindingCounter[];
    }
    const drafts = new Map<string, Draft>();
    for (const [key, acc] of this.reasons) {
      const points = [...acc.points].map(([location, p]) => ({ location, reason: p.reason, count: p.count })).sort((a, b) => b.count - a.count);
      drafts.set(key, { key, kind: 'drops', packets: acc.count, points, counters: [] });
    }
    // Counters join the reason they pair with; drop counters with no such reason seen are causes of their own.
    for (const c of this.counters.values()) {
      const k = kb.counter(c.name);
      if (!k) continue;
      const related = kb.reasonsForCounter(c.name);
      const seen = related.find((r) => drafts.get(r)?.kind === 'drops');
      if (seen) {
        drafts.get(seen)!.counters.push(c);
        continue;
      }
      if (!k.drop) continue;
      if (this.oneNamespace && c.hostWide) continue;
      // Counters of one blind reason (ListenOverflows and ListenDrops) make one cause.
      const key = related[0] ?? c.name;
      const d = drafts.get(key);
      if (d) {
        d.counters.push(c);
        d.packets = Math.max(d.packets, c.delta);
      } else drafts.set(key, { key, kind: 'counter', packets: c.delta, points: [], counters: [c] });
    }

    const scored = [...drafts.values()].map((d) => {
      const top = d.points[0];
      const symbol = top ? functionOf(top.location) : undefined;
      const reasonName = d.kind === 'drops' && !d.key.startsWith('at ') && !d.key.startsWith('trap:') ? d.key : undefined;
      // The cause behind a shared reason (kb/refinements.yaml), or a generic reason explained by a drop counter, decides how benign it is.
      const refinedCause = reasonName ? kb.refine?.(reasonName, { ...(symbol ? { function: symbol } : {}), countersMoved, ...(config ? { config } : {}), packets: d.packets }) : undefined;
      const refined = refinedCause ?? (reasonName ? this.refinedBy(d, reasonName) : undefined);
      const benign: Benignness = refined ? (refined.benign ?? 'no') : reasonName ? kb.benign(reasonName, symbol) : 'no';
      return { d, benign, symbol, reasonName, refinedCause, score: d.packets * BENIGN_WEIGHT[benign] };
    });
    // Usually-benign causes come after every other one, whatever their volume.
    const last = (x: { benign: Benignness }) => (x.benign === 'usually' ? 1 : 0);
    // On a tie, what the kernel reported as a drop (with its reason) explains the counters, not the reverse.
    const blind = (x: { d: { kind: string } }) => (x.d.kind === 'counter' ? 1 : 0);
    scored.sort((a, b) => last(a) - last(b) || b.score - a.score || blind(a) - blind(b) || b.d.packets - a.d.packets || a.d.key.localeCompare(b.d.key));

    return scored.map(({ d, benign, symbol, reasonName, refinedCause }, i) => {
      const entry = refinedCause ?? this.entryFor(d, reasonName, symbol);
      const counterEntries = d.counters.map((c) => kb.counter(c.name)).filter((e): e is NonNullable<typeof e> => e !== undefined);
      const counters = d.counters.sort((a, b) => b.delta - a.delta).slice(0, MAX_COUNTERS_PER_FINDING);
      const evidence: string[] = [];
      for (const p of d.points.slice(0, MAX_POINTS_PER_FINDING)) evidence.push(`${p.count} drops at ${p.location}${p.reason && p.reason !== d.key ? ` (${p.reason})` : ''}`);
      if (d.points.length > MAX_POINTS_PER_FINDING) evidence.push(`… and ${d.points.length - MAX_POINTS_PER_FINDING} more locations`);
      for (const c of counters) evidence.push(`${c.name} +${c.delta}${c.scope ? ` on ${c.scope}` : ''}${c.detail ? ` (${c.detail})` : ''}`);
      for (const line of refinedCause?.evidence ?? []) evidence.push(line);
      if (d.kind === 'counter') evidence.push('no drop event matched these counters: the tracer cannot see these drops');
      const check = unique([...(entry?.check ?? []), ...counterEntries.flatMap((e) => e.check ?? [])]).slice(0, 6);
      const fix = unique([...(entry?.fix ?? []), ...counterEntries.flatMap((e) => e.fix ?? [])]).slice(0, 6);
      const cause = entry?.summary ?? counterEntries[0]?.summary ?? (d.kind === 'counter' ? `${d.key} increased` : `drops with reason ${d.key}`);
      const benignWhen = benign !== 'no' ? entry?.benignWhen : undefined;
      return {
        rank: i + 1,
        key: refinedCause ? refinedCause.name : d.key,
        kind: d.kind,
        cause,
        packets: d.packets,
        benign,
        ...(benignWhen ? { benignWhen } : {}),
        known: entry?.known !== false,
        blindSpot: d.kind === 'counter',
        evidence,
        check,
        fix,
        points: d.points.slice(0, MAX_POINTS_PER_FINDING),
        counters,
      };
    });
  }

  /** The drop counter that names the real cause behind a generic reason, if one moved with most of its drops. */
  private refinedBy(d: { packets: number; counters: readonly FindingCounter[] }, reasonName: string): CounterKnowledge | undefined {
    if (!GENERIC_REASONS.has(reasonName)) return undefined;
    const c = d.counters.filter((x) => x.delta * 2 >= d.packets && this.kb.counter(x.name)?.drop).sort((a, b) => b.delta - a.delta)[0];
    return c ? this.kb.counter(c.name) : undefined;
  }

  /** The most specific knowledge: a symbol's entry for an unspecific reason, else the reason's or counter's. */
  private entryFor(d: { key: string; kind: string; packets: number; counters: readonly FindingCounter[] }, reasonName: string | undefined, symbol: string | undefined): EntryKnowledge | undefined {
    const kb = this.kb;
    const sym = symbol ? kb.symbol(symbol) : undefined;
    const refined = reasonName ? this.refinedBy(d, reasonName) : undefined;
    if (refined) return refined;
    if (reasonName) {
      // A reason newer than the knowledge base gets the generic entry that says so, with what the location tells.
      const r = kb.explainReason(reasonName, symbol);
      if (r.known === false) return r;
      if (sym && reasonName === 'NOT_SPECIFIED') return sym;
      return r;
    }
    if (d.key.startsWith('at ')) return sym;
    if (d.key.startsWith('trap:')) return kb.trap(d.key.slice(5)) ?? kb.counter(d.key);
    return kb.reason(d.key) ?? kb.counter(d.key);
  }
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
