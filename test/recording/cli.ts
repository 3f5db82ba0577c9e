/**
 * Runs `record` or `report` in a child process the way main.ts does (cleanups
 * on every exit path, a DropmonError to a message and its exit code), until
 * main.ts dispatches to them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

const RUNNER = `
const [cmd, ...args] = process.argv.slice(2);
const root = ${JSON.stringify(join(PROJECT_ROOT, 'dist', 'src'))};
const { runCleanups } = await import(root + '/cli/lifecycle.js');
const { DropmonError } = await import(root + '/core/errors.js');
const mod = await import(root + '/cli/' + cmd + '.js');
const run = cmd === 'record' ? mod.recordCommand : mod.reportCommand;
run(args).then(
  (code) => { runCleanups(); process.exit(code); },
  (err) => {
    runCleanups();
    process.stderr.write('dropmon: ' + (err instanceof DropmonError ? err.message : err.stack) + '\\n');
    process.exit(err instanceof DropmonError ? err.exitCode : 1);
  },
);
`;

let runner: string | undefined;

export class Cli {
  stdout = '';
  stderr = '';
  readonly done: Promise<number | null>;
  private readonly child: ChildProcess;

  /** args: "record ..." or "report ...". */
  constructor(args: string[]) {
    // A file, not --eval: the kallsyms loader's worker thread inherits the process's execArgv.
    if (!runner || !existsSync(runner)) {
      runner = join(mkdtempSync(join(tmpdir(), 'dropmon-cli-')), 'run.mjs');
      writeFileSync(runner, RUNNER);
    }
    this.child = spawn(process.execPath, [runner, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** Resolve once the source runs ("watching" on stderr). */
  async ready(ms = 10_000): Promise<void> {
    const t0 = Date.now();
    while (!this.stderr.includes('watching')) {
      if (this.child.exitCode !== null) throw new Error(`exited early: ${this.stderr}`);
      if (Date.now() - t0 > ms) throw new Error(`not ready after ${ms} ms: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGINT, then SIGKILL after `ms`; the exit code. */
  async stop(ms = 10_000): Promise<number | null> {
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }
}
