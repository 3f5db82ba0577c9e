/**
 * Which drop source `--source auto` uses, and why (printed once at start).
 *
 * Order, from the measurements (cost added to each drop on a 2-core VM):
 *   1. options only one source has decide it: --stack and --buffer-kb pick
 *      tracefs; --mode, --trunc, --queue, --force, --passive (packet bytes,
 *      or another program's NET_DM) pick NET_DM; --netns, --interface and
 *      --packets pick BPF;
 *   2. BPF where it can run (root or CAP_BPF+CAP_PERFMON, BTF, no lockdown,
 *      drop reasons): counted in the kernel per CPU, about half the cost of
 *      the bare ftrace event, nothing read per drop, and it names the
 *      interface and network namespace; with --hw also the devlink trap
 *      reports, counted in the kernel too, with the input port's interface
 *      and namespace and the trap type, when the tracepoint is in BTF;
 *   3. tracefs otherwise: reasons, protocol and stacks, at the ftrace cost
 *      plus a reader per event; with --hw the devlink_trap_report event.
 * All three see the same hardware drops: NET_DM's hardware alerts come from
 * the same devlink_trap_report tracepoint (minus control traps, which drop
 * nothing), so --hw alone no longer needs NET_DM.
 * NET_DM is not chosen on its own: its summary alerts carry no reason, and
 * it is one state per host that another tool may be using.
 */
import { bpfTrapUnavailableReason, bpfUnavailableReason } from './bpf/availability.js';

export type SourceName = 'tracefs' | 'netdm' | 'bpf';

export interface SourceNeeds {
  /** --stack: only tracefs records stacks. */
  readonly stack?: boolean;
  /** --buffer-kb and other tracefs-only options. */
  readonly tracefsOnly?: boolean;
  /** --mode, --trunc, --queue, --force, --passive: only NET_DM. */
  readonly netdmOnly?: boolean;
  /** --netns, --interface, --packets: only BPF. */
  readonly bpfOnly?: boolean;
  /** --hw: hardware drops (devlink traps), which every source can count. */
  readonly hardware?: boolean;
  /** --reason or --protocol: NET_DM's summary mode cannot tell them. */
  readonly filtersByReasonOrProtocol?: boolean;
}

export interface SourceChoice {
  readonly name: SourceName;
  readonly why: string;
}

export function chooseSource(
  requested: SourceName | 'auto',
  needs: SourceNeeds,
  /** Why BPF cannot run here (undefined: it can); injectable for tests. */
  bpfProblem: () => string | undefined = bpfUnavailableReason,
  /** Why BPF cannot count hardware drops here; injectable for tests. */
  bpfTrapProblem: () => string | undefined = bpfTrapUnavailableReason,
): SourceChoice {
  if (requested !== 'auto') return { name: requested, why: 'asked for' };
  if (needs.stack) return { name: 'tracefs', why: '--stack needs the tracefs source' };
  if (needs.tracefsOnly) return { name: 'tracefs', why: 'the options given need the tracefs source' };
  if (needs.netdmOnly) return { name: 'netdm', why: 'the options given need NET_DM' };
  if (needs.bpfOnly) return { name: 'bpf', why: '--netns, --interface and --packets need the BPF source' };
  const problem = bpfProblem();
  const trapProblem = problem === undefined && needs.hardware ? bpfTrapProblem() : undefined;
  if (trapProblem !== undefined) return { name: 'tracefs', why: `BPF cannot count hardware drops here (${trapProblem})` };
  if (problem === undefined) return { name: 'bpf', why: 'BPF counts drops in the kernel (the cheapest source), with interface and namespace' };
  return { name: 'tracefs', why: `BPF is not usable here (${problem})` };
}
