/**
 * What a kernel-facing test needs, and the reason it is skipped when it is
 * missing. A skipped test prints its reason; it never passes silently.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { NetdmClient } from '../../src/sources/netdm/client.js';

let cached: string | undefined | null = null;

function tracefsRoot(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, dir, type] = line.split(' ');
      if (type === 'tracefs' && dir && existsSync(`${dir}/instances`)) return dir;
    }
  } catch {
    /* no /proc */
  }
  return undefined;
}

/** Undefined when root with tracefs (mounted here if needed), else why not. */
export function kernelSkipReason(): string | undefined {
  if (cached !== null) return cached;
  cached = (() => {
    if (process.platform !== 'linux') return 'not Linux';
    if (process.getuid?.() !== 0) return 'not root: tracefs instances and network namespaces need root';
    if (!tracefsRoot()) {
      try {
        execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'ignore' });
      } catch {
        return 'no tracefs: it is not mounted and cannot be mounted here';
      }
    }
    if (!existsSync('/sys/kernel/tracing/events/skb/kfree_skb/format')) return 'this kernel has no skb:kfree_skb event';
    return undefined;
  })();
  if (cached) process.stderr.write(`# skipping kernel tests: ${cached}\n`);
  return cached;
}

export const TRACEFS = '/sys/kernel/tracing';

/** Options for node:test `test()` that skip with the reason when the kernel is not usable. */
export function kernelTest(): { skip: string | false } {
  const why = kernelSkipReason();
  return { skip: why ?? false };
}

/** Does this kernel have NET_DM (the generic netlink family of drop_monitor)? */
export function netdmPresent(): boolean {
  try {
    const c = NetdmClient.tryOpen();
    c?.close();
    return c !== undefined;
  } catch {
    return false;
  }
}
