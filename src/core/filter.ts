/**
 * What the user asked to see (`--reason`, `--protocol`, `--location`), in a
 * form independent of any source. Sources push what they can into the kernel
 * (the tracefs source, as its event filter); the pipeline applies `matches` to every
 * sample as well, so the result is the same whatever the source could do.
 */
import type { DropSample } from './drop.js';

export interface DropFilter {
  /** Keep only these numeric reasons (of the running kernel). */
  readonly reasons?: readonly number[];
  /** The same reasons by name, for sources that report names only (NET_DM). */
  readonly reasonNames?: readonly string[];
  /** Keep only these EtherTypes. */
  readonly protocols?: readonly number[];
  /** Keep only locations inside one of these [start, end) ranges. */
  readonly locations?: ReadonlyArray<readonly [bigint, bigint]>;
}

export function isEmptyFilter(f: DropFilter): boolean {
  return !f.reasons?.length && !f.reasonNames?.length && !f.protocols?.length && !f.locations?.length;
}

export function matches(f: DropFilter, s: DropSample): boolean {
  if (f.reasons?.length || f.reasonNames?.length) {
    const byNumber = s.reason >= 0 && (f.reasons?.includes(s.reason) ?? false);
    const byName = s.reasonName !== '' && (f.reasonNames?.includes(s.reasonName) ?? false);
    if (!byNumber && !byName) return false;
  }
  if (f.protocols?.length && !f.protocols.includes(s.protocol)) return false;
  if (f.locations?.length && !f.locations.some(([a, b]) => s.location >= a && s.location < b)) return false;
  return true;
}

/**
 * Resolve reason names given by a user against the running kernel's table.
 * Accepts "NO_SOCKET", "no_socket", "SKB_DROP_REASON_NO_SOCKET" or a number;
 * a subsystem's reason as "OPENVSWITCH/OVS_DROP_LAST_ACTION" or without its
 * subsystem when that names one reason.
 * Returns the numbers, or throws with the unknown name and near matches.
 */
export function resolveReasons(inputs: readonly string[], table: ReadonlyMap<number, string>): number[] {
  const byName = new Map<string, number>();
  for (const [n, name] of table) byName.set(name.toUpperCase(), n);
  const out: number[] = [];
  for (const raw of inputs) {
    const t = raw.trim().toUpperCase().replace(/^SKB_DROP_REASON_/, '');
    if (/^\d+$/.test(t)) {
      out.push(Number(t));
      continue;
    }
    // A subsystem's reason may be named without its SUBSYS/ (as NET_DM spells it).
    const n = byName.get(t) ?? bySubsystemReason(byName, t);
    if (n === undefined) {
      const near = [...byName.keys()].filter((k) => k.includes(t) || t.includes(k)).slice(0, 6);
      throw new Error(
        `unknown drop reason ${JSON.stringify(raw)}` +
          (near.length ? `; did you mean ${near.join(', ')}?` : '; see the reasons of this kernel with: dropmon watch --list-reasons'),
      );
    }
    out.push(n);
  }
  return [...new Set(out)];
}

/** The value of the one table entry named SUBSYS/`reason`, or undefined (none, or several subsystems). */
function bySubsystemReason(byName: ReadonlyMap<string, number>, reason: string): number | undefined {
  if (reason.includes('/')) return undefined;
  const hits = [...byName].filter(([name]) => name.endsWith(`/${reason}`));
  return hits.length === 1 ? hits[0][1] : undefined;
}
