/**
 * A knowledge-base entry: what a drop reason, counter, devlink trap or
 * drop-site function means, why it happens, whether it is usually harmless,
 * and what to check and change (schema in kb/README.md). And how names are
 * matched: the way operators and tools spell them, case-insensitive, reason
 * names with or without SKB_DROP_REASON_, symbols with or without the
 * `+0x12/0x80 [module]` of a %pS location, counters with or without an
 * `@scope` (readingKey form).
 */
import type { CounterLayer } from '../core/counter.js';
import type { Benign } from '../core/knowledge-view.js';

export type EntryKind = 'reason' | 'counter' | 'trap' | 'symbol';
export const ENTRY_KINDS: readonly EntryKind[] = ['reason', 'counter', 'trap', 'symbol'];

/** The longest one-line summary an entry may have. */
export const SUMMARY_MAX = 100;

/** What the nftables ruleset must show for a refinement (meanings in refine.ts NFT_FLAGS). */
export type NftFlag =
  | 'present'
  | 'absent'
  | 'rule-moved'
  | 'ct-invalid-rule'
  | 'ct-invalid-rule-moved'
  | 'ct-invalid-rule-uncounted'
  | 'uncounted'
  | 'no-drop-rules';

/**
 * One alternative of a refinement's `when` (kb/refinements.yaml): every
 * condition given must hold. A number condition is a comparison ">0",
 * ">=10", "<5", "=0", "!=1"; a sysctl value is compared as a number when it
 * is a comparison, else as text.
 */
export interface RefineCondition {
  /** The drop location's function is one of these. */
  readonly function?: readonly string[];
  /** At least one of these counters moved. */
  readonly counters?: readonly string[];
  /** None of these counters moved. */
  readonly noCounters?: readonly string[];
  /** Each named sysctl (a `*` matches one name part, e.g. an interface) has, for some match, one of the values. */
  readonly sysctl?: Readonly<Record<string, readonly string[]>>;
  readonly nft?: readonly NftFlag[];
  /** A qdisc of one of these kinds dropped (its drops moved; on a single reading, it has drops). */
  readonly qdisc?: readonly string[];
  /** That qdisc's parameters (limit, loss, rate...) compare so. */
  readonly qdiscParam?: Readonly<Record<string, string>>;
  /** What its kind-specific counters did meanwhile (fq_codel dropOverlimit...). */
  readonly qdiscMoved?: Readonly<Record<string, string>>;
  /**
   * The tc filters read: each token `HOOK:WHAT` (HOOK ingress or egress; WHAT
   * bpf, police, drop, any, or none: no filter on that hook) must hold.
   */
  readonly tc?: readonly string[];
}

/** One knowledge-base entry, as validated from YAML (absent lists are empty). */
export interface KnowledgeEntry {
  readonly kind: EntryKind;
  /** Reason name without SKB_DROP_REASON_, counter key, trap name or function name. */
  readonly name: string;
  readonly aliases: readonly string[];
  /** Counters only: a regular expression (matched case-insensitively) for a family of names. */
  readonly pattern?: string;
  readonly layer: CounterLayer;
  readonly since?: string;
  readonly until?: string;
  readonly summary: string;
  readonly meaning?: string;
  readonly causes: readonly string[];
  readonly benign: Benign;
  readonly benignWhen?: string;
  /** Counters only: an increment means a packet was dropped. */
  readonly drop?: boolean;
  /** Counters only: a level, not a total. */
  readonly gauge?: boolean;
  /** Counters only: these drops never pass kfree_skb. */
  readonly blindSpot?: boolean;
  readonly check: readonly string[];
  readonly fix: readonly string[];
  readonly counters: readonly string[];
  readonly reasons: readonly string[];
  readonly symbols: readonly string[];
  /** Where the claims were checked in the kernel source. */
  readonly kernel?: string;
  /** A refined cause (kb/refinements.yaml): the reason it is one cause of. */
  readonly refines?: string;
  /** A refined cause: when it applies (any alternative; every condition of one). */
  readonly when?: readonly RefineCondition[];
  /** A refined cause: sysctls whose values a finding shows as evidence, when they were read. */
  readonly sysctls?: readonly string[];
  /** The kb file it came from, for messages. */
  readonly file: string;
  /**
   * false only for an entry made up at run time for a name the knowledge base
   * does not have (see unknown.ts); absent on every entry from kb/.
   */
  readonly known?: false;
}

/** Is this a real entry of the knowledge base (not one made up for an unknown name)? */
export function isKnown(e: { readonly known?: boolean }): boolean {
  return e.known !== false;
}

/** An entry as JSON for users (explain --json, the API): without its kb file, with `known`. */
export function entryJson(e: KnowledgeEntry): Record<string, unknown> {
  const { file: _file, ...rest } = e;
  return { ...rest, known: isKnown(e) };
}

/** Reason names as the kernel headers spell them, and as users paste them. */
export function normalizeReasonName(name: string): string {
  return name.trim().replace(/^SKB_DROP_REASON_/i, '').toUpperCase();
}

/** "udp_destruct_common+0x5c/0x90 [udp]" -> "udp_destruct_common" (the %pS form of a drop location). */
export function normalizeSymbolName(name: string): string {
  return name
    .trim()
    .replace(/\s*\[[^\]]*\]\s*$/, '')
    .replace(/\+0x[0-9a-f]+(\/0x[0-9a-f]+)?$/i, '')
    .trim();
}

/** "Udp:RcvbufErrors@udp 127.0.0.1:53" -> "Udp:RcvbufErrors" (the readingKey form of an instance). */
export function normalizeCounterName(name: string): string {
  const at = name.indexOf('@');
  return (at >= 0 ? name.slice(0, at) : name).trim();
}
