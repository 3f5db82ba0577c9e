/**
 * Shared wording for outputs: how a drop point's location, reason and
 * protocol are shown. Text and JSON outputs both use it so they agree.
 */
import { NO_REASON, hexAddress, protocolName } from '../core/drop.js';
import type { DropPoint } from '../core/aggregator.js';
import { formatSymbol, type Symbolizer } from '../kernel/kallsyms.js';

export interface DescribedPoint {
  /** "fn+0x4bc" plus " [module]" for module code; the hex address when unknown. */
  readonly where: string;
  /** The kernel's %pS form with the size: "fn+0x4bc/0x6f0 [module]". */
  readonly symbol: string;
  readonly function: string | null;
  readonly offset: number | null;
  readonly module: string | null;
  readonly address: string;
  /** Reason name, "reason 123" for a number the table lacks, "" without reasons. */
  readonly reason: string;
  readonly protocol: string;
}

export function describePoint(p: DropPoint, symbols: Symbolizer | undefined): DescribedPoint {
  const sym = symbols?.lookup(p.location);
  return {
    where: formatSymbol(sym, p.location, false),
    symbol: formatSymbol(sym, p.location, true),
    function: sym?.name ?? null,
    offset: sym ? Number(sym.offset) : null,
    module: sym?.module ?? null,
    address: hexAddress(p.location),
    reason: p.reasonName || (p.reason === NO_REASON ? '' : `reason ${p.reason}`),
    protocol: p.protocol ? protocolName(p.protocol) : '',
  };
}

/** One frame of a kernel stack, symbolized. */
export function describeFrame(addr: bigint, symbols: Symbolizer | undefined): string {
  return formatSymbol(symbols?.lookup(addr), addr, true);
}

/** A kernel stack, symbolized, without the tracing code's own frames on top. */
export function describeStack(stack: readonly bigint[], symbols: Symbolizer | undefined): string[] {
  const frames = stack.map((a) => describeFrame(a, symbols));
  let i = 0;
  while (i < frames.length - 1 && /^(trace_event_raw_event_|perf_trace_|__traceiter_|__bpf_trace_)/.test(frames[i])) i++;
  return frames.slice(i);
}
