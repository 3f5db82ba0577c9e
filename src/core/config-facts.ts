/**
 * The configuration a diagnosis reads beside the drops: sysctls, the
 * nftables rules that can drop, the qdiscs. One reason often has several
 * causes (NETFILTER_DROP is a rule, a conntrack state match or a full
 * conntrack table; QDISC_DROP is a shaper, an emulated loss or a queue
 * limit), and the configuration at the time tells them apart. These are
 * plain values: the host reads them (src/sources/config/), the knowledge
 * base's refinement rules (kb/refinements.yaml) match them, and two readings
 * of one namespace say which rule and qdisc counters moved in between.
 */

/** A rule whose verdict can drop (drop or reject), as `nft -j list ruleset` shows it. */
export interface NftRuleFact {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly handle: number;
  /** The rule in nft's words, rebuilt from its JSON (close to `nft list ruleset`, not always identical). */
  readonly text: string;
  readonly verdict: 'drop' | 'reject';
  /** The conntrack states it matches (`ct state invalid`), when it matches on them. */
  readonly ctStates?: readonly string[];
  /** The value of its `counter` statement; absent for a rule without one. */
  readonly packets?: number;
  /** Packets its counter counted since the previous reading; absent on a first reading. */
  readonly moved?: number;
}

/** A base chain whose policy drops what no rule accepted. */
export interface NftPolicyFact {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly hook?: string;
}

export interface NftFacts {
  /** Rules with a drop or reject verdict (at most a bound; `truncated` says when more were left out). */
  readonly dropRules: readonly NftRuleFact[];
  /** Base chains with `policy drop`. */
  readonly dropPolicies: readonly NftPolicyFact[];
  /** Rules in the whole ruleset. */
  readonly rules: number;
  readonly truncated?: boolean;
}

/** One qdisc of one interface, with the parameters that decide its drops. */
export interface QdiscFact {
  readonly iface: string;
  readonly kind: string;
  /** "1:0", "8001:0". */
  readonly handle: string;
  /** "root", "1:1", "ffff:fff1". */
  readonly parent: string;
  /** Its drops counter (cumulative). */
  readonly drops?: number;
  /** Drops since the previous reading; absent on a first reading. */
  readonly moved?: number;
  /** Kind-specific parameters: limit (packets or bytes), loss (percent), rate (bytes/s), dropOverlimit... */
  readonly params?: Readonly<Record<string, number>>;
  /** Kind-specific counters of the previous reading's interval (fq_codel's dropOverlimit...). */
  readonly movedParams?: Readonly<Record<string, number>>;
}

/** A tc filter on the ingress or egress hook of an interface (of an ingress or clsact qdisc). */
export interface TcFilterFact {
  readonly iface: string;
  readonly direction: 'ingress' | 'egress';
  /** The classifier: "bpf", "u32", "flower", "matchall"... */
  readonly kind: string;
  /** Its preference (priority), as `tc filter show` prints it. */
  readonly pref: number;
  /** The kinds of its actions, in order ("gact", "police", "mirred"...). */
  readonly actions: readonly string[];
  /** One of its actions is a gact drop (action drop). */
  readonly dropAction?: boolean;
  /** For a BPF classifier: the program's name, and whether its return value is the verdict (da). */
  readonly program?: string;
  readonly directAction?: boolean;
}

export interface ConfigFacts {
  /** sysctl values by dotted name ("net.ipv4.ip_forward" -> "1"), those that could be read. */
  readonly sysctls: Readonly<Record<string, string>>;
  /** Absent when the ruleset could not be read (no nft, no permission, a timeout). */
  readonly nft?: NftFacts;
  /** Absent when the qdiscs could not be read. */
  readonly qdiscs?: readonly QdiscFact[];
  /** The tc filters of the interfaces with an ingress or clsact qdisc; absent when they could not be read. */
  readonly tcFilters?: readonly TcFilterFact[];
  /** What could not be read, one line each; the rest is still there. */
  readonly errors?: readonly string[];
}

/** Qdisc parameters that are counters (they grow), diffed like the drops. */
const COUNTING_PARAMS = new Set(['dropOverlimit', 'dropOvermemory', 'flowsPlimit', 'horizonDrops']);

export function isCountingParam(name: string): boolean {
  return COUNTING_PARAMS.has(name);
}

const ruleKey = (r: NftRuleFact) => `${r.family}\0${r.table}\0${r.chain}\0${r.handle}`;
const qdiscKey = (q: QdiscFact) => `${q.iface}\0${q.handle}\0${q.parent}\0${q.kind}`;

/**
 * `after` with what moved since `before`: the packets of each counted drop
 * rule and the drops of each qdisc. A rule or qdisc new since `before` moved
 * by its whole count (it was created in between); a counter that went down
 * (the rule was replaced, the qdisc reset) moved by its new value.
 */
export function configMoved(before: ConfigFacts | undefined, after: ConfigFacts): ConfigFacts {
  if (!before) return after;
  const out: { -readonly [K in keyof ConfigFacts]: ConfigFacts[K] } = { ...after };
  if (after.nft) {
    const prev = new Map((before.nft?.dropRules ?? []).map((r) => [ruleKey(r), r]));
    out.nft = {
      ...after.nft,
      dropRules: after.nft.dropRules.map((r) => {
        if (r.packets === undefined) return r;
        const p = prev.get(ruleKey(r))?.packets;
        return { ...r, moved: p === undefined || p > r.packets ? r.packets : r.packets - p };
      }),
    };
  }
  if (after.qdiscs) {
    const prev = new Map((before.qdiscs ?? []).map((q) => [qdiscKey(q), q]));
    out.qdiscs = after.qdiscs.map((q) => {
      const b = prev.get(qdiscKey(q));
      const grew = (now: number | undefined, then: number | undefined) => (now === undefined ? undefined : then === undefined || then > now ? now : now - then);
      const moved = grew(q.drops, b?.drops);
      const movedParams: Record<string, number> = {};
      for (const [k, v] of Object.entries(q.params ?? {})) if (COUNTING_PARAMS.has(k)) movedParams[k] = grew(v, b?.params?.[k]) ?? 0;
      return { ...q, ...(moved !== undefined ? { moved } : {}), ...(Object.keys(movedParams).length ? { movedParams } : {}) };
    });
  }
  return out;
}
