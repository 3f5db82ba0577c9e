/**
 * This kernel's drop reasons, read once for the plan and every source: the
 * table in the tracefs event format (the kernel's own, no BTF needed), else
 * the kernel's BTF; subsystem reasons (OPENVSWITCH/...) from BTF when they
 * show up. The tracefs layout read here is handed to the tracefs source,
 * which then need not read it again.
 */
import { join } from 'node:path';
import type { DropReasons } from '../kernel/drop-reasons.js';
import { dropReasonsFromBtf } from './bpf/source.js';
import { readLayout, type TracefsLayout } from './tracefs/source.js';
import { findTracefs } from './tracefs/tracefs.js';

export interface KernelReasons {
  /** The tracefs root and its layout, when they could be read. */
  readonly tracefs?: { readonly root: string; readonly layout: TracefsLayout };
  /** Why tracefs could not be read (the tracefs source cannot run; the others may). */
  readonly tracefsProblem?: unknown;
  /** false when the drop event has no reason field (before Linux 5.17); undefined when unknown. */
  readonly hasReasons?: boolean;
  /** Names reason values, the same for every source. */
  readonly namer: DropReasons;
}

export function readKernelReasons(): KernelReasons {
  let tracefs: KernelReasons['tracefs'];
  let tracefsProblem: unknown;
  try {
    const root = findTracefs();
    tracefs = { root, layout: readLayout(join(root, 'events')) };
  } catch (err) {
    tracefsProblem = err;
  }
  const core = tracefs?.layout.kfree.symbolic.get('reason');
  return {
    ...(tracefs ? { tracefs, hasReasons: tracefs.layout.kfree.fields.has('reason') } : { tracefsProblem }),
    // The namer shares the parsed vmlinux BTF with the BPF source.
    namer: dropReasonsFromBtf(core),
  };
}
