/**
 * What the pipeline needs from the knowledge base: correlation, diagnosis,
 * the counter classes and the benign policy ask these questions and nothing
 * more. The knowledge base (src/knowledge/) answers them; core only names
 * the questions, so that it depends on no loader, file or index.
 */

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
}

export interface CounterKnowledge extends EntryKnowledge {
  /** An increment means a packet was dropped (not just an error or pressure). */
  readonly drop?: boolean;
  /** These drops never pass kfree_skb: no tracer sees them. */
  readonly blindSpot?: boolean;
  readonly gauge?: boolean;
}
