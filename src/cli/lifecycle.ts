/**
 * Process lifecycle for commands that change the host (tracefs instances,
 * later NET_DM state): whatever way the process ends — normal end, SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT, an uncaught error — the registered cleanups run, once.
 * (SIGKILL cannot be caught: the next start reclaims what it left, reclaimAtStart.)
 */
import { terminalSafe } from '../core/terminal-safe.js';

type Cleanup = () => void;

const cleanups: Cleanup[] = [];
let installed = false;
let stopping: ((signal: NodeJS.Signals) => void) | undefined;
let signals = 0;

export function runCleanups(): void {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      c();
    } catch {
      /* a failing cleanup must not stop the others */
    }
  }
}

/** Register a synchronous cleanup; it runs on every exit path. */
export function onCleanup(c: Cleanup): void {
  cleanups.push(c);
  install();
}

/** The exit and signal handlers, once (a command with a stop handler but no cleanup needs them too). */
function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanups);
  // SIGQUIT too: its default (a core dump) would leave NET_DM running for everyone.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) {
    process.on(sig, () => {
      signals++;
      // First signal: stop gracefully (flush the last interval). Second: now.
      if (signals === 1 && stopping) stopping(sig);
      else {
        runCleanups();
        process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const)[sig]);
      }
    });
  }
  const fatal = (err: unknown) => {
    runCleanups();
    process.stderr.write(`dropmon: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/** What a signal should do while a command runs normally (e.g. stop its pipeline). */
export function onStopSignal(handler: (signal: NodeJS.Signals) => void): void {
  stopping = handler;
  install();
}

/**
 * Undo what dropmons that died left on the host (sources/reclaim.ts), said in
 * one line on stderr. Commands that touch the kernel call it first, whatever
 * their source; never fails.
 */
export async function reclaimAtStart(): Promise<void> {
  try {
    const { reclaimLeftovers, reclaimedLine } = await import('../sources/reclaim.js');
    const line = reclaimedLine(reclaimLeftovers());
    if (line) process.stderr.write(`dropmon: ${terminalSafe(line)}\n`);
  } catch {
    /* never fatal */
  }
}
