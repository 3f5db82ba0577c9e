/** Runs `dropmon record` / `dropmon report` (the built CLI) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from '../helpers/dropmon.js';
import { patience } from '../helpers/patience.js';

export class Cli {
  stdout = '';
  stderr = '';
  /** The exit code; null when killed by a signal. */
  readonly done: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** Resolve once the source runs ("watching" on stderr). */
  async ready(ms = 30_000): Promise<void> {
    ms = patience(ms);
    const t0 = Date.now();
    while (!this.stderr.includes('watching')) {
      if (this.child.exitCode !== null) throw new Error(`exited early: ${this.stderr}`);
      if (Date.now() - t0 > ms) throw new Error(`not ready after ${ms} ms: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGINT, then SIGKILL after `ms`; the exit code. */
  async stop(ms = 30_000): Promise<number | null> {
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), patience(ms));
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }
}
