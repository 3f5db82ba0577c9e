/**
 * Finding (and if needed mounting) tracefs, and the privilege checks that
 * turn EACCES into a message that says what to do.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { DropmonError, errnoCode } from '../../core/errors.js';

const CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Mount points of tracefs listed in /proc/self/mounts. */
function mountedTracefs(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'tracefs' && dir) out.push(dir.replace(/\\040/g, ' '));
  }
  return out;
}

/** The mounted tracefs root, or undefined: never mounts (for a look that must stay cheap). */
export function mountedTracefsRoot(): string | undefined {
  return mountedTracefs().find((dir) => existsSync(`${dir}/instances`));
}

/**
 * The tracefs root. When none is mounted, mount it at /sys/kernel/tracing
 * (as `mount -t tracefs nodev /sys/kernel/tracing` would); the mount is left
 * in place, as systemd and perf do: it costs nothing and other tools expect it.
 */
export function findTracefs(): string {
  const mounted = mountedTracefs();
  for (const dir of mounted) if (existsSync(`${dir}/instances`)) return dir;
  for (const dir of mounted) {
    try {
      accessSync(dir, constants.X_OK);
    } catch (err) {
      throw tracefsError('read tracefs', dir, err);
    }
  }
  for (const dir of CANDIDATES) if (existsSync(`${dir}/instances`)) return dir;
  if (!existsSync('/sys/kernel/tracing')) {
    throw new DropmonError(
      'tracefs is not available: /sys/kernel/tracing does not exist',
      'the kernel needs CONFIG_FTRACE/CONFIG_TRACING; on a container, bind-mount /sys/kernel/tracing from the host',
    );
  }
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new DropmonError(
      `tracefs is not mounted and mounting it failed${stderr ? `: ${stderr}` : ''}`,
      isRoot()
        ? 'mount it by hand: mount -t tracefs nodev /sys/kernel/tracing'
        : 'run dropmon as root (mounting tracefs needs CAP_SYS_ADMIN)',
    );
  }
  if (!existsSync('/sys/kernel/tracing/instances'))
    throw new DropmonError('tracefs was mounted but has no instances directory', 'a kernel older than 3.10 is not supported');
  return '/sys/kernel/tracing';
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Turn a failed tracefs operation into an error that says what to do. */
export function tracefsError(action: string, path: string, err: unknown): DropmonError {
  const code = errnoCode(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new DropmonError(
      `permission denied to ${action} (${path})`,
      isRoot()
        ? 'tracefs refused root: check lockdown (cat /sys/kernel/security/lockdown) and any LSM policy'
        : 'run dropmon as root, or with CAP_SYS_ADMIN (tracefs instances need it)',
    );
  }
  if (code === 'ENOENT') return new DropmonError(`cannot ${action}: ${path} does not exist`);
  if (code === 'ENOSPC' || code === 'ENOMEM')
    return new DropmonError(`cannot ${action}: the kernel is out of memory for trace buffers`, 'lower --buffer-kb');
  const msg = err instanceof Error ? err.message : String(err);
  return new DropmonError(`cannot ${action} (${path}): ${msg}`);
}
