/**
 * The knowledge base as its consumers ask it: the pipeline's KnowledgeView
 * (core/knowledge-view.ts) with its per-counter answers remembered, for the
 * service, and the counter classes of a report.
 */
import { counterMeaning, type CounterMeaning } from '../core/counter-meaning.js';
import type { CounterKnowledge, KnowledgeView } from '../core/knowledge-view.js';
import type { KnowledgeBase } from './base.js';

/** Names remembered at most (driver counter names are many but finite). */
const MAX_NAMES = 20_000;

function remember<V>(cache: Map<string, V>, key: string, compute: () => V): V {
  if (cache.has(key)) return cache.get(key) as V;
  const v = compute();
  if (cache.size >= MAX_NAMES) cache.clear();
  cache.set(key, v);
  return v;
}

/**
 * The knowledge base's answers about counters, remembered per name. Every
 * interval asks, for every counter that moved, whether it counts drops and
 * which reasons pair with it; the knowledge base answers by scanning its
 * entries (tens of microseconds each), which on a busy host with hundreds of
 * moving counters would cost milliseconds per interval, every interval, for
 * answers that never change while the service runs.
 */
export function cachedKnowledgeView(kb: KnowledgeBase): KnowledgeView {
  const counters = new Map<string, CounterKnowledge | undefined>();
  const reasonsFor = new Map<string, string[]>();
  const countersFor = new Map<string, string[]>();
  return {
    counter: (name) => remember(counters, name, () => kb.counter(name)),
    reasonsForCounter: (name) => remember(reasonsFor, name, () => kb.reasonsForCounter(name)),
    countersForReason: (name) => remember(countersFor, name, () => kb.countersForReason(name)),
    reason: (name) => kb.reason(name),
    explainReason: (name, symbol) => kb.explainReason(name, symbol),
    symbol: (name) => kb.symbol(name),
    trap: (name) => kb.trap(name),
    benign: (reason, symbol) => kb.benign(reason, symbol),
    refine: (reason, context) => kb.refine(reason, context),
  };
}

/** Whether a counter counts drops, and what it means, by name (a report's "counters that moved"). */
export function counterClassifier(kb: KnowledgeView): (name: string) => CounterMeaning {
  return (name) => counterMeaning({ name }, kb);
}
