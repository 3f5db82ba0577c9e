/**
 * An interval as a live view (`dropmon top`) shows it: every name already
 * resolved (kernel symbol, namespace, container, interface, whether the drop
 * is usually benign), because a remote service resolves them on its own
 * host and sends only names. The local pipeline's intervals and a remote
 * service's event stream are both turned into this, so the view has one
 * input whatever the drops come from.
 */
import type { Benign } from './knowledge-view.js';

export interface LivePoint {
  /** Drop reason name; "" when the kernel gave none. */
  readonly reason: string;
  /** Kernel function (or devlink trap, or hex address when unknown). */
  readonly function: string;
  /** "fn+0x4bc/0x6f0 [module]" where known; else the same as `function`. */
  readonly symbol: string;
  /** Hex address of the drop location ("" for hardware traps). */
  readonly location: string;
  /** "ipv4", "0x88b5", "" for none. */
  readonly protocol: string;
  readonly origin: string;
  /** Namespace name (ip netns, Docker) or inode number; "init"; "" when the source does not say. */
  readonly netns: string;
  /** "docker 3f2a1b0c9d8e", "" when none. */
  readonly container: string;
  /** Interface name (or "ifindex N"); "" when unknown. */
  readonly ifname: string;
  /** Drops at this point in the interval. */
  readonly count: number;
  readonly benign: Benign;
  /** Kernel stack, innermost first, when the source recorded it. */
  readonly stack?: readonly string[];
}

export interface LiveCounter {
  readonly name: string;
  readonly scope: string;
  readonly delta: number;
  readonly rate: number;
  /** 'drop': an increment is a dropped packet; 'related': errors and pressure around drops. */
  readonly class: string;
  readonly meaning: string;
  /** Set when the counter moved with no drop event behind it: why no tracer saw these drops. */
  readonly blindSpot?: string;
}

export interface LiveInterval {
  readonly seq: number;
  /** Wall-clock start and end, ms since the epoch. */
  readonly start: number;
  readonly end: number;
  /** All drops of the interval (listed points, overflow, usually benign ones). */
  readonly drops: number;
  readonly lost: number;
  readonly lostByCause: Readonly<Record<string, number>>;
  readonly points: readonly LivePoint[];
  /** Drops at points past the source's bound, and how many points they were. */
  readonly overflow: { readonly drops: number; readonly points: number };
  /** Drop-related counters that moved; undefined when counters are not read. */
  readonly counters?: readonly LiveCounter[];
  /** Counters joined with drop reasons: `counters` as name@scope keys. */
  readonly correlated?: readonly { readonly reasons: readonly string[]; readonly counters: readonly string[]; readonly drops: number }[];
}

/** Where the drops come from, for the view's header. */
export interface LiveOrigin {
  readonly host: string;
  readonly kernel: string;
  /** "bpf", "tracefs", "netdm", or the remote service's source. */
  readonly source: string;
  readonly intervalMs: number;
  /** The remote service's address, for remote views. */
  readonly remote?: string;
}
