/**
 * Attribution of a drop point to where it happened: the network namespace
 * (by the inode the source reports) and the interface (by its index in that
 * namespace). Finding the names is namespace I/O, which the kernel layer does
 * and caches (kernel/namespaces.ts); outputs, metrics and the service are
 * handed a lookup by the command that wires them, as they are handed the
 * symbolizer, so that formatting a line never does I/O of its own.
 */

/** What is known of a network namespace, for people reading about it. */
export interface NetnsNames {
  /** The `ip netns` (or Docker sandbox) name; "init" for the initial namespace. */
  readonly name?: string;
  /** "docker 3f2a1b0c9d8e", "containerd …", "k8s pod <uid>", from its processes' cgroup. */
  readonly container?: string;
  /** When the namespace was seen to go away (nothing refers to it any more), ms since the epoch. */
  readonly gone?: number;
}

export interface Attribution {
  /** What is known of namespace `inode`; undefined when nothing refers to it. */
  netns(inode: number): NetnsNames | undefined;
  /** The name of interface `ifindex` in namespace `netns`, or undefined. */
  ifname(netns: number, ifindex: number): string | undefined;
  /** The initial namespace's inode (lines leave it out), when it can be read. */
  readonly initInode: number | undefined;
  /** dropmon's own namespace's inode (where counters without a namespace were read), when it can be read. */
  readonly ownInode?: number | undefined;
}
