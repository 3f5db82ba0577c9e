/**
 * Clarity: which counters are drops. The knowledge base says so for the
 * counters it knows; driver-specific `ethtool -S` names are a free-for-all, so
 * for names it does not know a conservative rule on the name decides.
 */
import type { CounterReading } from './counter.js';
import type { KnowledgeView } from './knowledge-view.js';

export type CounterClass =
  /** An increment is a dropped packet. */
  | 'drop'
  /** An error or a sign of pressure next to drops (Udp:InErrors, qdisc:overlimits). */
  | 'related'
  /** Traffic and levels, shown only with --all. */
  | 'info';

export interface CounterMeaning {
  readonly class: CounterClass;
  /** One line; "" when nothing is known about the counter. */
  readonly meaning: string;
}

const DROPPY = /drop|discard|miss|no_?buf|nobuf|overrun|over_err|fifo|overflow|full|prune|collapse|lost/i;
const ERRORY = /err|fail|invalid|bad|crc|frame|align|timeout|abort/i;

export function counterMeaning(r: Pick<CounterReading, 'name'>, kb: KnowledgeView): CounterMeaning {
  const k = kb.counter(r.name);
  if (k) {
    const related = kb.reasonsForCounter(r.name).length > 0;
    return { class: k.drop ? 'drop' : related || ERRORY.test(r.name) ? 'related' : 'info', meaning: k.summary };
  }
  const field = r.name.slice(r.name.indexOf(':') + 1);
  if (DROPPY.test(field)) return { class: 'drop', meaning: '' };
  if (ERRORY.test(field)) return { class: 'related', meaning: '' };
  return { class: 'info', meaning: '' };
}
