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
 *
 * A finding is one cause in one network namespace: the same reason in two
 * containers is two findings, each saying where (namespace, container,
 * interfaces, sockets and their processes) as far as the sources know it.
 * Counters pair with drops of their own namespace only (core/netns.ts says
 * when one side is not known); a host-wide counter stays evidence beside a
 * drop seen anywhere and is never a cause of its own in a namespace. The
 * names come from the injected Attribution: the diagnoser does no I/O.
 */
import type { ConfigFacts } from './config-facts.js';
import type { DropPoint } from './interval.js';
import type { CounterDelta, CounterLayer } from './counter.js';
import type { CounterKnowledge, EntryKnowledge, KnowledgeView } from './knowledge-view.js';
import type { Attribution } from './attribution.js';
import { counterNetns, mayBeSameNetns, pointNetns, sameNetns } from './netns.js';

export type Benignness = 'no' | 'usually' | 'sometimes';

export interface FindingCounter {
  readonly name: string;
  readonly scope: string;
  readonly layer: CounterLayer;
  readonly delta: number;
  readonly detail?: string;
  /** Kept per host, not per namespace (see CounterReading.hostWide). */
  readonly hostWide?: boolean;
  /** The namespace it was read in (inode), when known. */
  readonly netns?: number;
  /** That namespace's name ("init" for the initial one), when known. */
  readonly netnsName?: string;
}

/** An interface the drops of a finding were on (BPF source), or whose counter moved. */
export interface FindingInterface {
  /** Its name, when it could be looked up (a gone namespace's interfaces have none). */
  readonly name?: string;
  /** Its index in the finding's namespace, when the source reported it. */
  readonly ifindex?: number;
  /** Drops on it (or the counter's increase). */
  readonly count: number;
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
  /** The network namespace (inode) of this cause; absent when the source cannot tell (tracefs) or the cause is host-wide. */
  readonly netns?: number;
  /** Its `ip netns` or Docker name; "init" for the initial namespace. */
  readonly netnsName?: string;
  /** "docker 3f2a1b0c9d8e", "k8s pod <uid> containerd <id>": the container living in it. */
  readonly container?: string;
  /** When the namespace went away (ms since the epoch). */
  readonly gone?: number;
  /** Interfaces, most drops first. */
  readonly interfaces: readonly FindingInterface[];
  /** Sockets whose counters moved, with their process: "udp 10.1.0.2:7001 pid 812 (python3)". */
  readonly sockets: readonly string[];
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
const MAX_INTERFACES_PER_FINDING = 5;
const MAX_SOCKETS_PER_FINDING = 5;
/** Counter layers whose scope starts with an interface name ("eth0", "veth0 tbf 1:0"). */
const INTERFACE_LAYERS: ReadonlySet<CounterLayer> = new Set(['nic', 'driver', 'qdisc']);

/** The function part of "sym+0x12/0x80" or "sym+0x12". */
function functionOf(location: string): string {
  const i = location.indexOf('+');
  return i > 0 ? location.slice(0, i) : location;
}

interface ReasonAcc {
  readonly key: string;
  readonly netns: number | undefined;
  count: number;
  points: Map<string, { reason: string; count: number }>;
  /** Drops by interface index. */
  interfaces: Map<number, number>;
}

type CounterAcc = { -readonly [K in keyof FindingCounter]: FindingCounter[K] };

/** A map key for a cause in a namespace (undefined: not known, or host-wide). */
const placed = (netns: number | undefined, key: string) => `${netns ?? ''}|${key}`;

export class Diagnoser {
  private readonly reasons = new Map<string, ReasonAcc>();
  private readonly counters = new Map<string, CounterAcc>();
  private seconds = 0;

  constructor(
    private readonly kb: KnowledgeView,
    /** Kernel address to "symbol+off" (or hex when unknown). */
    private readonly symbolize: (location: bigint) => string,
    /**
     * The diagnosis is of one namespace (diagnose --netns): a host-wide
     * counter (softnet_stat) that moved with no drop of this namespace to
     * pair with was moved by someone else, so it is no cause of its own; and
     * counters read without a namespace mark are that namespace's.
     */
    private readonly oneNamespace = false,
    /** Names of namespaces and interfaces (no names without it: findings keep the numbers). */
    private readonly attribution?: Attribution,
  ) {}

  /** Add one interval: its drop points and the counters that moved in it. */
  add(points: readonly DropPoint[], deltas: readonly CounterDelta[], seconds = 0): void {
    this.seconds += seconds;
    for (const p of points) {
      const netns = pointNetns(p);
      if (p.origin === 'hardware' && p.trap) {
        this.addPoint(netns, `trap:${p.trap.name}`, `${p.trap.group ? `${p.trap.group}/` : ''}${p.trap.name}`, p.count, p.ifindex);
        continue;
      }
      const loc = this.symbolize(p.location);
      // Without a reason (old kernels, NET_DM summaries) the location is the key.
      this.addPoint(netns, p.reasonName || `at ${functionOf(loc)}`, loc, p.count, p.ifindex, p.reasonName);
    }
    // One namespace: counters without a mark were read there, whatever dropmon's own is.
    const own = this.oneNamespace ? undefined : this.attribution?.ownInode;
    for (const d of deltas) {
      if (d.gauge || d.delta <= 0) continue;
      const netns = counterNetns(d, own);
      const key = placed(netns, `${d.name}@${d.scope}`);
      const c = this.counters.get(key);
      if (c) c.delta += d.delta;
      else
        this.counters.set(key, {
          name: d.name,
          scope: d.scope,
          layer: d.layer,
          delta: d.delta,
          ...(d.detail ? { detail: d.detail } : {}),
          ...(d.hostWide ? { hostWide: true } : {}),
          ...(netns !== undefined ? { netns } : {}),
        });
    }
  }

  private addPoint(netns: number | undefined, key: string, location: string, count: number, ifindex: number | undefined, reason = key): void {
    const k = placed(netns, key);
    let acc = this.reasons.get(k);
    if (!acc) this.reasons.set(k, (acc = { key, netns, count: 0, points: new Map(), interfaces: new Map() }));
    acc.count += count;
    const p = acc.points.get(location);
    if (p) p.count += count;
    else acc.points.set(location, { reason, count });
    if (ifindex) acc.interfaces.set(ifindex, (acc.interfaces.get(ifindex) ?? 0) + count);
  }

  /**
   * The ranked causes. `config` (the namespace's configuration at the end,
   * with what moved since the start) tells apart the causes a reason shares.
   */
  findings(config?: ConfigFacts | ((netns: number | undefined) => ConfigFacts | undefined)): Finding[] {
    const kb = this.kb;
    const configOf = typeof config === 'function' ? config : () => config;
    const withConfig = (c: ConfigFacts | undefined) => (c ? { config: c } : {});
    // The counters that moved in a cause's namespace refine it (host-wide ones count everywhere; a cause
    // whose namespace is unknown, from tracefs, may be any namespace's).
    const countersMoved = (netns: number | undefined) =>
      new Set([...this.counters.values()].filter((c) => c.hostWide || mayBeSameNetns(netns, c.netns)).map((c) => c.name));
    const drafts = new Map<string, Draft>();
    for (const [k, acc] of this.reasons) {
      const points = [...acc.points].map(([location, p]) => ({ location, reason: p.reason, count: p.count })).sort((a, b) => b.count - a.count);
      drafts.set(k, { key: acc.key, kind: 'drops', netns: acc.netns, packets: acc.count, points, counters: [], interfaces: acc.interfaces });
    }
    const dropDrafts = [...drafts.values()];
    // Counters join the reason they pair with; drop counters with no such reason seen are causes of their own.
    for (const c of this.counters.values()) {
      const k = kb.counter(c.name);
      if (!k) continue;
      const related = kb.reasonsForCounter(c.name);
      const paired = this.pairedDrafts(c, related, dropDrafts);
      if (paired.length) {
        for (const d of paired) d.counters.push(c);
        continue;
      }
      if (!k.drop) continue;
      // A host-wide counter is no cause in a namespace: of one namespace, someone else moved it.
      if (this.oneNamespace && c.hostWide) continue;
      // Counters of one blind reason (ListenOverflows and ListenDrops) make one cause per namespace.
      const key = related[0] ?? c.name;
      const place = placed(c.netns, key);
      const d = drafts.get(place);
      if (d) {
        d.counters.push(c);
        d.packets = Math.max(d.packets, c.delta);
      } else drafts.set(place, { key, kind: 'counter', netns: c.netns, packets: c.delta, points: [], counters: [c], interfaces: new Map() });
    }

    const adopted = new Set<FindingCounter>();
    const all = [...drafts.values()].map((d) => {
      const top = d.points[0];
      const symbol = top ? functionOf(top.location) : undefined;
      const reasonName = d.kind === 'drops' && !d.key.startsWith('at ') && !d.key.startsWith('trap:') ? d.key : undefined;
      // The cause behind a shared reason (kb/refinements.yaml), or a generic reason explained by a drop counter, decides how benign it is.
      const refinedCause = reasonName ? kb.refine?.(reasonName, { ...(symbol ? { function: symbol } : {}), countersMoved: countersMoved(d.netns), ...withConfig(configOf(d.netns)), packets: d.packets }) : undefined;
      const refined = refinedCause ?? (reasonName ? this.refinedBy(d, reasonName) : undefined);
      const benign: Benignness = refined ? (refined.benign ?? 'no') : reasonName ? kb.benign(reasonName, symbol) : 'no';
      // The counters that told this cause apart are its evidence too, even where the reason does not pair with them
      // (ndisc_cache:res_failed beside NOT_SPECIFIED drops at neigh_invalidate).
      for (const name of refinedCause?.confirmedBy ?? []) this.addConfirming(d, name, adopted);
      return { d, benign, symbol, reasonName, refinedCause, score: d.packets * BENIGN_WEIGHT[benign] };
    });
    // Usually-benign causes come after every other one, whatever their volume.
    const last = (x: { benign: Benignness }) => (x.benign === 'usually' ? 1 : 0);
    // On a tie, what the kernel reported as a drop (with its reason) explains the counters, not the reverse.
    const blind = (x: { d: { kind: string } }) => (x.d.kind === 'counter' ? 1 : 0);
    // A counter a refined cause took as its evidence is no cause of its own besides (its packets would count twice).
    const scored = all.filter(({ d }) => !(d.kind === 'counter' && d.counters.every((c) => adopted.has(c))));
    scored.sort(
      (a, b) =>
        last(a) - last(b) ||
        b.score - a.score ||
        blind(a) - blind(b) ||
        b.d.packets - a.d.packets ||
        a.d.key.localeCompare(b.d.key) ||
        (a.d.netns ?? 0) - (b.d.netns ?? 0),
    );

    return scored.map(({ d, benign, symbol, reasonName, refinedCause }, i) => {
      const entry = refinedCause ?? this.entryFor(d, reasonName, symbol);
      const counterEntries = d.counters.map((c) => kb.counter(c.name)).filter((e): e is NonNullable<typeof e> => e !== undefined);
      const counters = d.counters
        .sort((a, b) => b.delta - a.delta)
        .slice(0, MAX_COUNTERS_PER_FINDING)
        .map((c) => this.namedCounter(c));
      const evidence: string[] = [];
      for (const p of d.points.slice(0, MAX_POINTS_PER_FINDING)) evidence.push(`${p.count} drops at ${p.location}${p.reason && p.reason !== d.key ? ` (${p.reason})` : ''}`);
      if (d.points.length > MAX_POINTS_PER_FINDING) evidence.push(`… and ${d.points.length - MAX_POINTS_PER_FINDING} more locations`);
      for (const c of counters) evidence.push(`${c.name} +${c.delta}${c.scope ? ` on ${c.scope}` : ''}${c.detail ? ` (${c.detail})` : ''}${elsewhere(c, d.netns)}`);
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
        ...this.where(d),
      };
    });
  }

  /**
   * The drop causes a counter is evidence for: of its reasons, one seen in its
   * own namespace, else one seen where nobody knows the namespace (the
   * largest); a host-wide counter, beside every drop of its reasons.
   */
  private pairedDrafts(c: FindingCounter, related: readonly string[], drafts: readonly Draft[]): Draft[] {
    const ofReason = drafts.filter((d) => related.includes(d.key));
    if (ofReason.length === 0) return [];
    if (c.hostWide) return ofReason;
    for (const r of related) {
      const exact = ofReason.find((d) => d.key === r && sameNetns(d.netns, c.netns));
      if (exact) return [exact];
    }
    const possible = ofReason.filter((d) => mayBeSameNetns(d.netns, c.netns)).sort((a, b) => b.packets - a.packets);
    return possible.length ? [possible[0]] : [];
  }

  /** Counters of this name that moved where the cause happened (or host-wide) join its evidence, once. */
  private addConfirming(d: Draft, name: string, adopted: Set<FindingCounter>): void {
    const wanted = name.toLowerCase();
    for (const c of this.counters.values()) {
      if (c.name.toLowerCase() !== wanted) continue;
      if (!c.hostWide && !mayBeSameNetns(d.netns, c.netns)) continue;
      adopted.add(c);
      if (!d.counters.includes(c)) d.counters.push(c);
    }
  }

  /** A counter with its namespace's name. */
  private namedCounter(c: FindingCounter): FindingCounter {
    const name = c.netns !== undefined ? this.netnsName(c.netns) : undefined;
    return name ? { ...c, netnsName: name } : { ...c };
  }

  private netnsName(inode: number): string | undefined {
    if (inode === this.attribution?.initInode) return 'init';
    return this.attribution?.netns(inode)?.name;
  }

  /** Where a cause happened: its namespace and what lives there, its interfaces and sockets. */
  private where(d: Draft): Pick<Finding, 'netns' | 'netnsName' | 'container' | 'gone' | 'interfaces' | 'sockets'> {
    const ns = d.netns;
    const info = ns !== undefined ? this.attribution?.netns(ns) : undefined;
    const name = ns !== undefined ? this.netnsName(ns) : undefined;
    const interfaces: FindingInterface[] = [...d.interfaces]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, MAX_INTERFACES_PER_FINDING)
      .map(([ifindex, count]) => {
        const ifname = ns !== undefined ? this.attribution?.ifname(ns, ifindex) : undefined;
        return { ...(ifname ? { name: ifname } : {}), ifindex, count };
      });
    // A cause seen only in counters is on the interfaces those counters are kept for.
    if (d.kind === 'counter') {
      const byName = new Map<string, number>();
      for (const c of d.counters) {
        if (!INTERFACE_LAYERS.has(c.layer) || !c.scope) continue;
        const dev = c.scope.split(' ')[0];
        byName.set(dev, Math.max(byName.get(dev) ?? 0, c.delta));
      }
      for (const [dev, count] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, MAX_INTERFACES_PER_FINDING)) interfaces.push({ name: dev, count });
    }
    const sockets = unique(
      d.counters
        .filter((c) => c.layer === 'socket' && c.scope)
        .sort((a, b) => b.delta - a.delta)
        .map((c) => `${c.scope.replace(/ inode \d+$/, '')}${c.detail ? ` ${c.detail}` : ''}`),
    ).slice(0, MAX_SOCKETS_PER_FINDING);
    return {
      ...(ns !== undefined ? { netns: ns } : {}),
      ...(name ? { netnsName: name } : {}),
      ...(info?.container ? { container: info.container } : {}),
      ...(info?.gone !== undefined ? { gone: info.gone } : {}),
      interfaces,
      sockets,
    };
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

interface Draft {
  readonly key: string;
  readonly kind: 'drops' | 'counter';
  readonly netns: number | undefined;
  packets: number;
  readonly points: FindingPoint[];
  readonly counters: FindingCounter[];
  /** Drops by interface index. */
  readonly interfaces: ReadonlyMap<number, number>;
}

/** " in netns web-1" for a counter of another namespace than its finding's; " (host-wide)"; "" otherwise. */
function elsewhere(c: FindingCounter, netns: number | undefined): string {
  if (c.hostWide) return ' (host-wide)';
  if (c.netns === undefined || c.netns === netns) return '';
  return ` in netns ${c.netnsName ?? c.netns}`;
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
