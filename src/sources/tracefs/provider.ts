/**
 * The tracefs source in the source plan: the options only it has (--stack,
 * --buffer-kb), and its construction over the layout the plan has read.
 */
import { DropmonError } from '../../core/errors.js';
import { SourceProblem, type SourceProvider } from '../plan.js';
import { TracefsDropSource } from './source.js';

export const tracefsProvider: SourceProvider = {
  name: 'tracefs',
  title: 'tracefs',
  // At the ftrace cost plus a reader per event: after BPF where that can run.
  auto: { rank: 2, why: 'tracefs reads the drop tracepoint: reasons, protocol and stacks' },
  claims: (r) => (r.stack ? '--stack needs the tracefs source' : r.bufferKb !== undefined ? 'the options given need the tracefs source' : undefined),
  // What is missing is said when it starts (tracefs not mounted, no kfree_skb event): the plan checks the layout read.
  unavailable: () => undefined,
  check(r, chosen) {
    if (!chosen && r.stack) throw new SourceProblem('needs-tracefs', 'kernel stacks need the tracefs source');
  },
  checkKernel(kernel) {
    if (!kernel.tracefs) throw kernel.tracefsProblem ?? new DropmonError('tracefs cannot be read');
  },
  reportsReasons: () => true,
  perPacket: () => false,
  create: (r, { kernel, filter, warn }) =>
    new TracefsDropSource({
      ...(kernel.tracefs ? { root: kernel.tracefs.root, layout: kernel.tracefs.layout } : {}),
      filter,
      stack: r.stack ?? false,
      ...(r.bufferKb !== undefined ? { bufferKb: r.bufferKb } : {}),
      software: r.software,
      hardware: r.hardware,
      reasons: kernel.namer,
      warn,
    }),
};
