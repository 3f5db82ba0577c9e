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
