/**
 * Can the BPF source run here, and if not, why (one line for the user and
 * for `--source auto`). Checked without loading anything: privileges, kernel
 * lockdown, BTF, and the kfree_skb prototype (drop reasons, 5.17+).
 */
import { existsSync, readFileSync } from 'node:fs';
import { DropmonError, ParseError } from '../../core/errors.js';
import { Btf } from '../../kernel/bpf/btf.js';
import { readKernelLayout } from './layout.js';
import { readTrapLayout } from './trap-program.js';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

let btf: Btf | undefined;
let parseMs = 0;

/** How long reading and parsing the kernel's BTF took (0 before the first vmlinuxBtf()). */
export function btfParseMs(): number {
  return parseMs;
}

/** The running kernel's BTF, parsed once per process (~40 ms for 5 MB). */
export function vmlinuxBtf(): Btf {
  if (btf) return btf;
  if (!existsSync(VMLINUX_BTF))
    throw new DropmonError(`the BPF source needs the kernel's BTF (${VMLINUX_BTF} is missing)`, 'a kernel built with CONFIG_DEBUG_INFO_BTF (most distributions since 2020); else use --source tracefs');
  try {
    const t0 = performance.now();
    btf = Btf.vmlinux(VMLINUX_BTF);
    parseMs = performance.now() - t0;
  } catch (err) {
    if (err instanceof ParseError) throw new DropmonError(`the BPF source cannot read the kernel's BTF: ${err.message}`);
    throw err;
  }
  return btf;
}

let kernelReasons: Set<string> | undefined;

/**
 * Does the running kernel have a core drop reason of this name (without
 * SKB_DROP_REASON_)? Read once from its BTF, which needs no privileges; false
 * when there is none, so callers fall back to what they would say otherwise.
 */
export function kernelHasReason(name: string): boolean {
  if (!kernelReasons) {
    kernelReasons = new Set();
    try {
      for (const [n] of vmlinuxBtf().enumValues('skb_drop_reason')) {
        const name = n.replace(/^SKB_DROP_REASON_/, '');
        // Bounds and masks of the enum are not reasons.
        if (name !== 'MAX' && !name.startsWith('SUBSYS_')) kernelReasons.add(name);
      }
    } catch {
      /* no BTF: no name is known to be the kernel's */
    }
  }
  return kernelReasons.has(name);
}

/** Effective capabilities of this process, as a bit set. */
function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? BigInt('0x' + m[1]) : 0n;
}

const CAP_SYS_ADMIN = 21n, CAP_PERFMON = 38n, CAP_BPF = 39n;

/** Why this process may not load tracing programs (privileges, lockdown), or undefined. */
export function bpfPermissionProblem(): string | undefined {
  if (process.platform !== 'linux') return 'BPF needs Linux';
  try {
    const caps = effectiveCaps();
    const has = (c: bigint) => (caps >> c) & 1n;
    if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) return 'BPF needs root (or CAP_BPF and CAP_PERFMON)';
  } catch {
    /* no /proc: let the syscalls say */
  }
  try {
    const lockdown = readFileSync('/sys/kernel/security/lockdown', 'latin1');
    if (lockdown.includes('[confidentiality]')) return 'kernel lockdown (confidentiality) forbids BPF programs from reading kernel memory';
  } catch {
    /* no lockdown LSM */
  }
  return undefined;
}

/** Undefined when the BPF source can count hardware drops (the devlink_trap_report tracepoint in BTF), else why. */
export function bpfTrapUnavailableReason(): string | undefined {
  try {
    readTrapLayout(vmlinuxBtf());
  } catch (err) {
    if (err instanceof DropmonError) return err.message;
    throw err;
  }
  return undefined;
}

/** Undefined when the BPF source can run, else the reason in one line. */
export function bpfUnavailableReason(): string | undefined {
  const denied = bpfPermissionProblem();
  if (denied) return denied;
  try {
    readKernelLayout(vmlinuxBtf());
  } catch (err) {
    if (err instanceof DropmonError) return err.message;
    throw err;
  }
  return undefined;
}
