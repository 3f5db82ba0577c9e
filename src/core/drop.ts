/**
 * The event model shared by every source and every output.
 *
 * A source never hands out one object per dropped packet: at a million drops a
 * second that alone would cost more than the drop. It hands out `DropSample`s,
 * each a drop point (where, why, which protocol) with the number of drops seen
 * there since its last batch, exactly like the kernel's NET_DM summary alerts.
 */

/** Where the drop happened: in the kernel's software path or in a device (devlink trap). */
export type DropOrigin = 'software' | 'hardware';

/** A reason code the kernel did not give (old kernels without drop reasons). */
export const NO_REASON = -1;

/**
 * The name of a reason value of the running kernel ("" when unknown). Core
 * reasons are spelled as the kernel does without SKB_DROP_REASON_; reasons of
 * other subsystems as SUBSYS/REASON (OPENVSWITCH/OVS_DROP_LAST_ACTION).
 */
export type ReasonNamer = (reason: number) => string;

export interface DropSample {
  /** Kernel address of the code that freed the packet (the kfree_skb caller). */
  readonly location: bigint;
  /** Numeric drop reason of the running kernel, or NO_REASON. */
  readonly reason: number;
  /** The reason's name in the running kernel (e.g. "NO_SOCKET"); "" when unknown. */
  readonly reasonName: string;
  /** skb->protocol as an EtherType in host order (0x0800 IPv4); 0 when none. */
  readonly protocol: number;
  readonly origin: DropOrigin;
  /** Number of drops at this point in this batch. */
  readonly count: number;
  /** Kernel call stack (innermost first) when stacks were asked for. */
  readonly stack?: readonly bigint[];
  /**
   * Hardware drops: the devlink trap that reported the packets. `ifindex` and
   * `netns` then name the input port, when the source knows them.
   */
  readonly trap?: TrapInfo;
  /** Per-packet sources (NET_DM packet mode): what is known of this one packet. */
  readonly packet?: DroppedPacket;
  /**
   * Attribution, when the source knows it (the BPF source): the interface the
   * packet was on (skb->dev) and the inode of that device's network namespace.
   */
  readonly ifindex?: number;
  readonly netns?: number;
}

/** A devlink packet trap (Documentation/networking/devlink/devlink-trap.rst). */
export interface TrapInfo {
  readonly name: string;
  readonly group?: string;
  /** "drop", "exception" or "control" (enum devlink_trap_type), when the source can tell. */
  readonly type?: string;
  /** The trap's action ("trap", "mirror") as devlink listed it, when looked up. */
  readonly action?: string;
  /** The devlink device, "bus/device" (e.g. "pci/0000:03:00.0"), when the source reports it. */
  readonly device?: string;
  /** Name of the input port's net device, when the source has its name (tracefs). */
  readonly inputName?: string;
}

/**
 * A batch of hardware drops at one trap: no kernel location, reason or
 * protocol, only the trap (and the input port, when the source knows it).
 */
export function hardwareSample(trap: TrapInfo, count: number, port?: { readonly ifindex: number; readonly netns?: number }): DropSample {
  return { location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count, trap, ...(port ? port : {}) };
}

/** One dropped packet, as NET_DM packet mode reports it. */
export interface DroppedPacket {
  /** Nanoseconds since the epoch, when the kernel saw the drop. */
  readonly timestamp?: bigint;
  readonly ifindex?: number;
  readonly ifname?: string;
  /** Length before truncation, from the MAC header. */
  readonly origLen?: number;
  /** Bytes from the MAC header (truncated to what was asked). */
  readonly payload?: Uint8Array;
  /** The kernel's symbol for the location (NET_DM sends %pS, at most 39 characters). */
  readonly kernelSymbol?: string;
  /** The whole netlink message, for pcap output. */
  readonly raw?: Uint8Array;
}

/** Events a source could not deliver, by cause, since its previous report. */
export interface LossSample {
  /** Events overwritten or refused by a full kernel buffer. */
  readonly lost: number;
  /** A short tag for where they were lost, e.g. "ring-buffer overrun cpu1". */
  readonly cause: string;
}

/** What a source pushes downstream. Calls are synchronous and cheap. */
export interface DropSink {
  drops(samples: readonly DropSample[]): void;
  loss(sample: LossSample): void;
}

/**
 * A source of drop evidence: tracefs, NET_DM or BPF (src/sources/, built by the
 * source plan).
 * Lifecycle: `start(sink)` once, `drain()` any number of times, `close()` once.
 */
export interface DropSource {
  /** Short name for messages and JSON ("tracefs"). */
  readonly name: string;
  start(sink: DropSink): Promise<void>;
  /** One line saying what is being watched and how, for the start-up message. */
  describe(): string;
  /**
   * Deliver everything the kernel has buffered right now, then report losses.
   * `final`: the last drain before close(); a source may stop watching first,
   * so that everything it counted is delivered now (nothing is left for a
   * drain that will not come).
   */
  drain(final?: boolean): void;
  /**
   * Undo every change made to the host. Synchronous so that it can run from
   * signal and exit handlers; safe to call more than once.
   */
  close(): void;
}

const ETHERTYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0800, 'ipv4'],
  [0x0806, 'arp'],
  [0x86dd, 'ipv6'],
  [0x8100, 'vlan'],
  [0x88a8, 'qinq'],
  [0x8847, 'mpls'],
  [0x8848, 'mpls-mc'],
  [0x8864, 'pppoe'],
  [0x88cc, 'lldp'],
  [0x8035, 'rarp'],
  [0x0004, '802.2'],
  [0x0003, 'all'],
]);

/** Lower-case protocol name for an EtherType ("ipv4"), or "0x88b5". */
export function protocolName(ethertype: number): string {
  return ETHERTYPE_NAMES.get(ethertype) ?? `0x${ethertype.toString(16).padStart(4, '0')}`;
}

/** Parse a protocol given by a user: a name from the table above or a number. */
export function parseProtocol(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  for (const [num, name] of ETHERTYPE_NAMES) if (name === t) return num;
  if (/^(0x[0-9a-f]{1,4}|\d{1,5})$/.test(t)) {
    const n = Number(t);
    if (n <= 0xffff) return n;
  }
  return undefined;
}

/** Hex form of a kernel address, 0x-prefixed, 16 digits on 64-bit kernels. */
export function hexAddress(addr: bigint): string {
  return `0x${addr.toString(16).padStart(16, '0')}`;
}
