/**
 * A drop scenario: a small network of namespaces, one kind of drop made for
 * real in it, and what `dropmon diagnose` must conclude: the cause ranked
 * first (a drop reason, a refined cause, or for drops no tracer sees a
 * counter), the namespace it happened in, the counter that confirms it and
 * a word of the fix.
 */
import type { Net, NetOptions } from './net.js';

export type Where = 'a' | 'b' | 'c';

export interface Scenario {
  readonly name: string;
  /** The network it needs (default: the pair, IPv4 only). */
  readonly net?: NetOptions;
  /** Why the scenario cannot run here, if it cannot. */
  skip?(): string | undefined;
  /** Set-up before dropmon starts (qdiscs, rules, listeners). */
  setup?(net: Net): void;
  /** Make the drops happen; dropmon is running. */
  cause(net: Net): void | Promise<void>;
  /** The namespace where the drops (or the counter-only cause) happen: the top finding's namespace. */
  readonly where: Where;
  /** The key of the top finding: a refined cause, a drop reason, or a counter-only cause. */
  readonly cause_key: string | readonly string[];
  readonly kind: 'drops' | 'counter';
  /** Counters that must have moved (name, minimum increase) in the top finding's evidence. */
  readonly counterDeltas?: ReadonlyArray<{ name: string; min: number }>;
  /**
   * A line of the top finding's evidence (regular expression) that confirms the
   * cause where no kernel counter does: an nftables rule's own counter.
   * Every scenario names counters, such a line, or both.
   */
  readonly evidence?: string;
  /** A word (regular expression, case-insensitive) one of the top finding's fixes must contain. */
  readonly fix: string;
  /** The process that must be named as the owner of the socket that dropped. */
  readonly socketOwner?: string;
  /** Words the explanation chosen must contain (case-insensitive). */
  readonly causeMentions?: readonly string[];
}
