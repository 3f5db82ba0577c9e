/**
 * Which network namespace a drop point or a counter belongs to, as the
 * correlation and the diagnosis see it, and whether a counter can have
 * counted the packets of a drop point.
 *
 * A drop point's namespace is the inode its source reported (the BPF source);
 * 0 or absent means the source cannot tell (tracefs). A counter's namespace
 * is the inode it was read in; absent means dropmon's own namespace, whose
 * inode the caller may know. A host-wide counter (softnet_stat) belongs to no
 * namespace. Where a side is not known, nothing is guessed: a counter of a
 * known namespace pairs with drops of that namespace, or else with drops whose
 * namespace nobody knows; a counter of an unknown namespace pairs with drops
 * anywhere, as before namespaces were told apart.
 */

/** The namespace of a drop point: its inode, or undefined when the source could not tell. */
export function pointNetns(p: { readonly netns?: number }): number | undefined {
  return p.netns ? p.netns : undefined;
}

/**
 * The namespace a counter was read in: its own mark, else dropmon's own
 * (`own`, when known); undefined for host-wide counters and when unknown.
 */
export function counterNetns(c: { readonly netns?: number; readonly hostWide?: boolean }, own: number | undefined): number | undefined {
  if (c.hostWide) return undefined;
  return c.netns ?? own;
}

/** Whether a drop in namespace `point` and a counter of namespace `counter` are the same namespace. */
export function sameNetns(point: number | undefined, counter: number | undefined): boolean {
  return point !== undefined && point === counter;
}

/** Whether they may be, because one side is not known. */
export function mayBeSameNetns(point: number | undefined, counter: number | undefined): boolean {
  return point === undefined || counter === undefined || point === counter;
}
