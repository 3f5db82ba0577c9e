/**
 * One way from "what to watch" to a running drop source, for every command
 * and the service.
 *
 * A caller describes what it wants in a `SourceRequest` (origins, filters,
 * namespace, per-packet records, the options of one source), never in flags
 * or configuration keys. Each source folder provides a `SourceProvider`: the
 * options only it has, whether it can run here, what it refuses, how it is
 * built. `chooseSource` (select.ts) picks a provider from the registry
 * (registry.ts); `planSource` then checks the request against the running
 * kernel (reasons, locations) and returns the filter and a constructor.
 * Nothing is changed on the host before the source's start(), so a caller can
 * refuse a bad request while a running source goes on.
 *
 * Problems are `SourceProblem`s with a code: the commands and the service
 * word them in their own terms (a flag, a configuration key).
 */
import { DropmonError } from '../core/errors.js';
import type { DropSource } from '../core/drop.js';
import { resolveReasons, type DropFilter } from '../core/filter.js';
import { resolveLocations, type KallsymsTable } from '../kernel/kallsyms.js';
import type { AlertMode } from './netdm/protocol.js';
import type { KernelReasons } from './kernel-reasons.js';

/** What a caller wants watched, whatever source ends up doing it. */
export interface SourceRequest {
  /** Software drops (kfree_skb). */
  readonly software: boolean;
  /** Hardware drops that devices report through devlink traps. */
  readonly hardware: boolean;
  /** Drop reasons as the user spelled them (names or numbers). */
  readonly reasons: readonly string[];
  /** EtherTypes. */
  readonly protocols: readonly number[];
  /** Drop locations as the user spelled them (function, func+0xOFF, 0xADDRESS). */
  readonly locations: readonly string[];
  /** Only drops of this network namespace (a name, process id, inode or path). */
  readonly netns?: string;
  /**
   * The namespace is wanted for drops where the source can tell it (and for
   * the counters anyway): a source that cannot filter on it is not refused.
   */
  readonly netnsWhereSupported?: boolean;
  /** Only drops on this interface (of `netns`, else of dropmon's namespace). */
  readonly interface?: string;
  /** One record per dropped packet, with its bytes (BPF). */
  readonly packets?: boolean;
  /** An output keeps the bytes of each dropped packet (pcap). */
  readonly packetBytes?: boolean;
  /** Aggregate by kernel call stack too. */
  readonly stack?: boolean;
  /** Ring buffer per CPU, KiB. */
  readonly bufferKb?: number;
  /** NET_DM's own settings; any of them set asks for NET_DM. */
  readonly netdm?: NetdmRequest;
}

export interface NetdmRequest {
  readonly mode?: AlertMode;
  /** Packet mode: bytes of each packet to receive (0: all). */
  readonly trunc?: number;
  /** Packet mode: the kernel's per-CPU queue length. */
  readonly queue?: number;
  /** Take over monitoring that another program started. */
  readonly force?: boolean;
  /** Only listen to the alerts of a NET_DM another program runs. */
  readonly passive?: boolean;
}

/** What a source is built with, besides the request. */
export interface SourceContext {
  readonly kernel: KernelReasons;
  /** The filter the plan resolved (a source that can filters in the kernel). */
  readonly filter: DropFilter;
  readonly warn: (message: string) => void;
}

/** One drop source: its options, its "can it run here", its checks and its construction. */
export interface SourceProvider {
  /** The name `--source` and the service's `source:` take ("bpf"). */
  readonly name: string;
  /** How messages name it ("BPF"). */
  readonly title: string;
  /**
   * When `--source auto` may pick it although no option needs it: its rank
   * (lower is preferred) and why it is then the one. Absent: only when asked
   * for by name, or when the options given need it.
   */
  readonly auto?: { readonly rank: number; readonly why: string };
  /** Why the request needs this source (options only it has), else undefined. */
  claims(request: SourceRequest): string | undefined;
  /** Why it cannot run here for this request (one line), else undefined. */
  unavailable(request: SourceRequest): string | undefined;
  /**
   * Throw a SourceProblem for what it cannot accept in this request; when
   * another source was chosen (`chosen` false), for the options only it has.
   */
  check(request: SourceRequest, chosen: boolean): void;
  /** Throw when it cannot be built with what was read of this kernel (tracefs missing). */
  checkKernel?(kernel: KernelReasons): void;
  /** Whether it tells each drop's reason for this request. */
  reportsReasons(request: SourceRequest): boolean;
  /** Whether it delivers each dropped packet, with its bytes, for this request. */
  perPacket(request: SourceRequest): boolean;
  /** Build it; nothing changes on the host before its start(). */
  create(request: SourceRequest, context: SourceContext): DropSource;
}

/** A request the sources cannot carry out; `code` lets a caller word it in its own terms. */
export class SourceProblem extends DropmonError {
  constructor(
    readonly code: string,
    message: string,
    options: { readonly host?: boolean; readonly cause?: unknown } = {},
  ) {
    // A problem of the request is bad usage (2); one of the host is a runtime error (1).
    super(message, undefined, options.host ? 1 : 2);
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

export interface SourceChoice {
  readonly provider: SourceProvider;
  readonly name: string;
  readonly why: string;
  /** How it was chosen: asked for by name, needed by the options, or preferred among the ones that can run. */
  readonly by: 'name' | 'options' | 'preference';
}

export interface SourcePlan {
  readonly choice: SourceChoice;
  readonly filter: DropFilter;
  /** Drops come one packet at a time. */
  readonly perPacket: boolean;
  /** Build the source (nothing is changed on the host until its start()). */
  create(warn: (message: string) => void): DropSource;
}

/** The reason names a filter matches: as typed (without SKB_DROP_REASON_), and the names of the values resolved. */
function reasonNames(typed: readonly string[], values: readonly number[], table: ReadonlyMap<number, string>): string[] {
  return typed
    .map((r) => r.trim().toUpperCase().replace(/^SKB_DROP_REASON_/, ''))
    .concat(values.map((n) => table.get(n) ?? ''))
    .filter(Boolean);
}

/**
 * Check the request's filters against the running kernel and resolve them:
 * reasons against its table, locations against kallsyms (undefined when it
 * cannot be read; needed only for locations). Throws SourceProblem.
 */
export function planSource(choice: SourceChoice, request: SourceRequest, kernel: KernelReasons, kallsyms: KallsymsTable | undefined): SourcePlan {
  const provider = choice.provider;
  provider.checkKernel?.(kernel);
  if (request.reasons.length && kernel.hasReasons === false)
    throw new SourceProblem('no-reasons', 'this kernel reports no drop reasons (they appeared in Linux 5.17)', { host: true });
  if (request.reasons.length && !provider.reportsReasons(request))
    throw new SourceProblem('reasons-unseen', `the ${choice.name} source reports no reasons with these settings`);
  let locations: Array<[bigint, bigint]> = [];
  if (request.locations.length) {
    if (!kallsyms) throw new SourceProblem('no-kallsyms', 'locations need /proc/kallsyms, which cannot be read', { host: true });
    try {
      locations = resolveLocations(request.locations, kallsyms);
    } catch (err) {
      throw new SourceProblem('bad-location', (err as Error).message, { cause: err });
    }
  }
  // Subsystem names (OPENVSWITCH/...) cost a BTF parse: read only when reasons are asked for.
  const table: ReadonlyMap<number, string> = request.reasons.length ? kernel.namer.table() : new Map();
  let reasons: number[] = [];
  try {
    // No table (no tracefs, no BTF): the reasons cannot be checked, only matched by name.
    if (table.size) reasons = resolveReasons(request.reasons, table);
  } catch (err) {
    throw new SourceProblem('unknown-reason', (err as Error).message, { cause: err });
  }
  const filter: DropFilter = { reasons, reasonNames: reasonNames(request.reasons, reasons, table), protocols: request.protocols, locations };
  return {
    choice,
    filter,
    perPacket: provider.perPacket(request),
    create: (warn) => provider.create(request, { kernel, filter, warn }),
  };
}
