/**
 * The BPF source in the source plan: preferred by `--source auto` where it
 * can run (counted in the kernel per CPU, about half the cost of the bare
 * ftrace event, nothing read per drop, with interface and namespace); the
 * only one that filters by namespace and interface in the kernel and keeps
 * per-packet records with --packets.
 */
import { interfaceIndex, resolveNetnsSpec } from '../../kernel/namespaces.js';
import { currentNetnsInode } from '../../kernel/setns.js';
import { SourceProblem, type SourceProvider, type SourceRequest } from '../plan.js';
import { bpfTrapUnavailableReason, bpfUnavailableReason } from './availability.js';
import { BpfDropSource } from './source.js';

/** Options only BPF has: a namespace or interface it must filter on, per-packet records. */
function bpfOptions(r: SourceRequest): boolean {
  return (r.netns !== undefined && !r.netnsWhereSupported) || r.interface !== undefined || r.packets === true;
}

export interface BpfChecks {
  /** Why BPF cannot run here (undefined: it can). */
  readonly problem: () => string | undefined;
  /** Why it cannot count hardware drops here (the devlink_trap_report tracepoint missing from BTF). */
  readonly trapProblem: () => string | undefined;
}

/** The provider; `checks` are injectable for tests. */
export function bpfSourceProvider(checks: BpfChecks = { problem: bpfUnavailableReason, trapProblem: bpfTrapUnavailableReason }): SourceProvider {
  return {
    name: 'bpf',
    title: 'BPF',
    auto: { rank: 1, why: 'BPF counts drops in the kernel (the cheapest source), with interface and namespace' },
    claims: (r) => (bpfOptions(r) ? '--netns, --interface and --packets need the BPF source' : undefined),
    unavailable(r) {
      const problem = checks.problem();
      if (problem !== undefined) return `BPF is not usable here (${problem})`;
      const trapProblem = r.hardware ? checks.trapProblem() : undefined;
      // With hardware drops asked for, a source that counts them beats a cheaper one that cannot.
      if (trapProblem !== undefined) return `BPF cannot count hardware drops here (${trapProblem})`;
      return undefined;
    },
    check(r, chosen) {
      if (r.packets && !r.software) throw new SourceProblem('packets-need-software', 'per-packet records are of software drops');
      // The trap counters are not filtered by namespace or port: say so rather than count every port's.
      if (r.hardware && ((r.netns !== undefined && !r.netnsWhereSupported) || r.interface !== undefined))
        throw new SourceProblem('hardware-scope', 'a namespace or interface filters software drops only; hardware drops are counted for every port');
      if (!chosen && bpfOptions(r)) throw new SourceProblem('needs-bpf', 'the namespace, interface and per-packet options need the bpf source');
    },
    reportsReasons: () => true,
    perPacket: (r) => r.packets === true,
    create(r, { kernel, warn }) {
      const target = r.netns !== undefined ? resolveNetnsSpec(r.netns) : undefined;
      return new BpfDropSource({
        ...(target ? { netns: target.inode } : {}),
        ...(r.interface !== undefined ? { ifindex: interfaceIndex(r.interface, target) } : {}),
        // An interface alone means dropmon's namespace: filter on it too, ifindexes repeat across namespaces.
        ...(r.interface !== undefined && !target ? { netns: currentNetnsInode() } : {}),
        ...(r.packets ? { packets: {} } : {}),
        software: r.software,
        hardware: r.hardware,
        reasons: kernel.namer,
        warn,
      });
    },
  };
}

export const bpfProvider = bpfSourceProvider();
