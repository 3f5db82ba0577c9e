/**
 * Compile a DropFilter into a tracefs event filter expression, so drops the
 * user does not want are discarded in the kernel before they reach the ring
 * buffer. Expressions look like:
 *   (reason == 3 || reason == 6) && (protocol == 2048) && (location >= 0x... && location < 0x...)
 */
import type { DropFilter } from '../../core/filter.js';
import type { EventFormat } from './format.js';

export interface CompiledFilter {
  /** The expression to write into events/skb/kfree_skb/filter; "" for none. */
  readonly expression: string;
  /** Parts the kernel cannot evaluate here (left to the user-space check). */
  readonly notInKernel: readonly string[];
}

/** More alternatives than this are left to user space: the kernel limits filter size. */
const MAX_TERMS = 64;

export function compileTracefsFilter(filter: DropFilter, format: EventFormat): CompiledFilter {
  const groups: string[] = [];
  const notInKernel: string[] = [];
  const group = (field: string, terms: string[]) => {
    if (!format.fields.has(field)) notInKernel.push(field);
    else if (terms.length > MAX_TERMS) notInKernel.push(field);
    else if (terms.length) groups.push(terms.length === 1 ? terms[0] : `(${terms.join(' || ')})`);
  };
  if (filter.reasons?.length) group('reason', filter.reasons.map((r) => `reason == ${r >>> 0}`));
  if (filter.protocols?.length) group('protocol', filter.protocols.map((p) => `protocol == ${p}`));
  if (filter.locations?.length) {
    group(
      'location',
      filter.locations.map(([a, b]) =>
        b - a === 1n ? `location == 0x${a.toString(16)}` : `(location >= 0x${a.toString(16)} && location < 0x${b.toString(16)})`,
      ),
    );
  }
  return { expression: groups.join(' && '), notInKernel };
}
