/** The entry made up at run time for a drop reason the knowledge base does not have. */
import { COUNTER_LAYERS, type CounterLayer } from '../core/counter.js';
import { SUMMARY_MAX, normalizeReasonName, type KnowledgeEntry } from './entry.js';

/** What an entry of the drop location's function offers an unknown reason. */
export interface LocationHint {
  readonly name: string;
  readonly summary: string;
  readonly layer?: string;
  readonly causes?: readonly string[];
  readonly check?: readonly string[];
  readonly fix?: readonly string[];
}

/**
 * What dropmon says of a drop reason it has no entry for: kernels add reasons
 * every release (and subsystems bring their own), so a newer kernel than this
 * knowledge base reports names it cannot explain. The answer is honest and
 * still useful: the name, that it is not known to this version, where the
 * kernel documents it, and whatever the drop location's entry (`at`) says.
 */
export function unknownReasonEntry(reasonName: string, at?: LocationHint): KnowledgeEntry {
  const name = normalizeReasonName(reasonName) || 'UNKNOWN';
  const slash = name.indexOf('/');
  // "OPENVSWITCH/OVS_DROP_LAST_ACTION": a subsystem's reason, documented in that subsystem's header.
  const where =
    slash > 0
      ? `the ${name.slice(0, slash).toLowerCase()} subsystem's drop-reason enum (include/net/dropreason.h lists the subsystems; each has its own drop.h)`
      : `include/net/dropreason-core.h, in the kernel-doc comment of SKB_DROP_REASON_${name}`;
  const hint = at ? ` The drop location, ${at.name}(), is known: ${at.summary}` : '';
  return {
    kind: 'reason',
    name,
    aliases: [],
    layer: at?.layer && (COUNTER_LAYERS as readonly string[]).includes(at.layer) ? (at.layer as CounterLayer) : 'softnet',
    summary: `${name}: a drop reason not in this version's knowledge base`.slice(0, SUMMARY_MAX),
    meaning: `The running kernel reports drop reason ${name}, which this version of dropmon does not describe (the kernel is newer than its knowledge base, or the reason belongs to a subsystem it does not cover). The kernel documents it in ${where}.${hint}`,
    causes: at?.causes ?? [],
    // Never call an unknown reason benign: it might be the problem.
    benign: 'no',
    check: [`dropmon watch -r ${name} --stack   (the kernel functions that drop with it)`, ...(at?.check ?? [])],
    fix: [...(at?.fix ?? []), `read the kernel-doc of ${name} in ${slash > 0 ? 'its subsystem header' : 'include/net/dropreason-core.h'} of the running kernel's source; a newer dropmon may describe it`],
    counters: [],
    reasons: [],
    symbols: at ? [at.name] : [],
    kernel: slash > 0 ? 'include/net/dropreason.h' : `include/net/dropreason-core.h SKB_DROP_REASON_${name}`,
    file: '(not in the knowledge base)',
    known: false,
  };
}
