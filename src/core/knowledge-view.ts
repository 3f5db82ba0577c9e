/**
 * What the pipeline needs from the knowledge base: correlation, diagnosis,
 * the counter classes and the benign policy ask these questions and nothing
 * more. The knowledge base (src/knowledge/) answers them; core only names
 * the questions, so that it depends on no loader, file or index.
 */

import type { ConfigFacts } from './config-facts.js';

/** Whether a drop is usually harmless: never, usually, or only in some cases. */
export type Benign = 'no' | 'usually' | 'sometimes';

export interface KnowledgeView {
  counter(name: string): CounterKnowledge | undefined;
  reason(name: string): EntryKnowledge | undefined;
  /**
   * A reason's entry, or, for a reason the knowledge base does not have (a
   * newer kernel's), the honest generic one saying so (`known: false`), with
   * what the drop location's function (`symbol`) tells. Never undefined.
   */
  explainReason(name: string, symbol?: string): EntryKnowledge;
  symbol(name: string): EntryKnowledge | undefined;
  trap(name: string): EntryKnowledge | undefined;
  reasonsForCounter(counter: string): string[];
  countersForReason(reason: string): string[];
  benign(reasonName: string, symbol?: string): Benign;
  /**
   * The cause behind a reason that several causes share (IP_INHDR at
   * ip_forward is a TTL that ran out, NETFILTER_DROP with conntrack:drop a
   * full conntrack table), told apart by where the drops happened, the
   * counters that moved with them and the configuration read at the time;
   * undefined when no rule of the knowledge base applies. Its `name` is the
   * refined cause's ("IP_INHDR/ttl-expired").
   */
  refine?(reason: string, context: RefineContext): EntryKnowledge | undefined;
}

/** What is known about some drops of one reason, to tell their causes apart. */
export interface RefineContext {
  /** The function of the drop location ("ip_forward"), in any %pS form. */
  readonly function?: string;
  /** Counters that moved while the drops happened, by name ("Udp:NoPorts"); `name@scope` forms are accepted. */
  readonly countersMoved?: ReadonlySet<string>;
  /** The configuration read at the time (of the namespace where the drops happened). */
  readonly config?: ConfigFacts;
  /** How many drops these are: a rule counter that explains fewer leaves the rest to rules without one. */
  readonly packets?: number;
}

export interface EntryKnowledge {
  readonly name: string;
  readonly summary: string;
  readonly check?: readonly string[];
  readonly fix?: readonly string[];
  readonly benignWhen?: string;
  readonly benign?: Benign;
  readonly layer?: string;
  /** false for the generic entry of a reason the knowledge base does not have. */
  readonly known?: boolean;
  /** For a refined cause: the reason it is one cause of. */
  readonly refines?: string;
  /** For a refined cause: what the configuration showed (the nft rule whose counter moved, the qdisc, sysctl values). */
  readonly evidence?: readonly string[];
  /** For a refined cause: the counters whose move made it hold; they join its evidence wherever they were paired. */
  readonly confirmedBy?: readonly string[];
}

export interface CounterKnowledge extends EntryKnowledge {
  /** An increment means a packet was dropped (not just an error or pressure). */
  readonly drop?: boolean;
  /** These drops never pass kfree_skb: no tracer sees them. */
  readonly blindSpot?: boolean;
  readonly gauge?: boolean;
}
