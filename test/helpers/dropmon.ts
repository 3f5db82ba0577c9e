/** Runs the built `dropmon` CLI as a child process and collects its output. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from './dropgen.js';
import { patience } from './patience.js';

export const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class DropmonProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly done: Promise<Finished>;

  /**
   * `command`: how dropmon is started, the built CLI by default (an installed
   * `dropmon` in the packaging tests, another copy of main.js in a test VM's own file system).
   */
  constructor(args: string[], command: readonly string[] = [process.execPath, CLI], env?: NodeJS.ProcessEnv) {
    this.child = spawn(command[0], [...command.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((resolve) =>
      this.child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolve once stderr says the event is enabled (says `marker`); reject after `ms` (stretched by patience()). */
  async ready(ms = 30_000, marker = 'watching'): Promise<void> {
    ms = patience(ms);
    const t0 = Date.now();
    while (!this.stderr.includes(marker)) {
      if (this.child.exitCode !== null) throw new Error(`dropmon exited early: ${this.stderr}`);
      if (Date.now() - t0 > ms) throw new Error(`dropmon not ready after ${ms} ms: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolve once stdout matches `re` (what the test waits to see printed); reject after `ms` (stretched by patience()). */
  async printed(re: RegExp, ms = 30_000): Promise<void> {
    ms = patience(ms);
    const t0 = Date.now();
    while (!re.test(this.stdout)) {
      if (this.child.exitCode !== null) throw new Error(`dropmon exited before printing ${re}: ${this.stdout}\n${this.stderr}`);
      if (Date.now() - t0 > ms) throw new Error(`dropmon did not print ${re} within ${ms} ms: ${this.stdout}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGINT', ms = 30_000): Promise<Finished> {
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), patience(ms));
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }

  finished(): Promise<Finished> {
    return this.done;
  }
}

export interface JsonDrop {
  type: 'drop';
  count: number;
  function: string | null;
  symbol: string;
  reason: string | null;
  ethertype: number;
  location: string;
  stack?: string[];
}

export interface JsonInterval {
  type: 'interval';
  drops: number;
  points: number;
  lost_events: number;
  overflow_drops: number;
  overflow_points: number;
}

export function parseJsonLines(text: string): { drops: JsonDrop[]; intervals: JsonInterval[] } {
  const drops: JsonDrop[] = [], intervals: JsonInterval[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line) as JsonDrop | JsonInterval | { type: string };
    // Other line types ("counters", "packet") are not intervals.
    if (o.type === 'drop') drops.push(o as JsonDrop);
    else if (o.type === 'interval') intervals.push(o as JsonInterval);
  }
  return { drops, intervals };
}

/** Sum of drop counts per "function reason" key. */
export function totals(drops: readonly JsonDrop[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const d of drops) {
    const k = `${d.function} ${d.reason}`;
    m.set(k, (m.get(k) ?? 0) + d.count);
  }
  return m;
}
