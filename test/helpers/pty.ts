/**
 * Runs a command in a real pseudo-terminal (node-pty) and keeps a headless
 * xterm fed with everything it writes, so tests read the screen the way a
 * terminal renders it (cursor moves, alternate screen, colours applied),
 * send keys and resize. Skips with its reason when the modules are missing.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface IPty {
  onData(cb: (d: string) => void): void;
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): void;
  write(d: string): void;
  resize(c: number, r: number): void;
  kill(signal?: string): void;
  readonly pid: number;
}
interface XTerm {
  write(d: string, cb?: () => void): void;
  resize(c: number, r: number): void;
  readonly buffer: { readonly active: { readonly type: string; readonly length: number; getLine(y: number): { translateToString(trim?: boolean): string } | undefined; readonly viewportY: number } };
  readonly rows: number;
}

let loaded: { spawn: (file: string, args: string[], o: Record<string, unknown>) => IPty; Terminal: new (o: Record<string, unknown>) => XTerm } | string | undefined;

/** Undefined when a pty can be opened here, else why not. */
export function ptySkipReason(): string | undefined {
  if (loaded === undefined) {
    try {
      const pty = require('@lydell/node-pty') as { spawn: (file: string, args: string[], o: Record<string, unknown>) => IPty };
      const xterm = require('@xterm/headless') as { Terminal: new (o: Record<string, unknown>) => XTerm };
      loaded = { spawn: pty.spawn, Terminal: xterm.Terminal };
    } catch (err) {
      loaded = `no pseudo-terminal modules (@lydell/node-pty, @xterm/headless: npm ci): ${(err as Error).message}`;
    }
  }
  if (typeof loaded === 'string') {
    process.stderr.write(`# skipping: ${loaded}\n`);
    return loaded;
  }
  return undefined;
}

export class PtyScreen {
  readonly term: XTerm;
  readonly proc: IPty;
  /** Everything the program wrote. */
  raw = '';
  private pending = Promise.resolve();
  readonly exited: Promise<{ exitCode: number; signal?: number }>;

  constructor(file: string, args: string[], opts: { cols?: number; rows?: number; env?: Record<string, string | undefined> } = {}) {
    if (ptySkipReason() !== undefined || typeof loaded !== 'object') throw new Error('no pty');
    const cols = opts.cols ?? 80;
    const rows = opts.rows ?? 24;
    this.term = new loaded.Terminal({ cols, rows, allowProposedApi: true, scrollback: 0 });
    this.proc = loaded.spawn(file, args, { name: 'xterm-256color', cols, rows, cwd: process.cwd(), env: { ...process.env, LANG: 'C.UTF-8', ...opts.env } });
    this.proc.onData((d) => {
      this.raw += d;
      this.pending = this.pending.then(() => new Promise<void>((r) => this.term.write(d, r)));
    });
    this.exited = new Promise((resolve) => this.proc.onExit(resolve));
  }

  /** The screen as rendered now, one string per row, right-trimmed. */
  async lines(): Promise<string[]> {
    await this.pending;
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let y = 0; y < this.term.rows; y++) out.push(b.getLine(b.viewportY + y)?.translateToString(true) ?? '');
    return out;
  }

  async text(): Promise<string> {
    return (await this.lines()).join('\n');
  }

  /** Wait until the screen satisfies `want` (a regex or a predicate), at most `ms`. */
  async waitFor(want: RegExp | ((screen: string) => boolean), ms = 15_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const s = await this.text();
      if (typeof want === 'function' ? want(s) : want.test(s)) return s;
      if (Date.now() - t0 > ms) throw new Error(`screen never matched ${String(want)} in ${ms} ms; screen:\n${s}\n--- raw tail: ${JSON.stringify(this.raw.slice(-600))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  key(s: string): void {
    this.proc.write(s);
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
    this.proc.resize(cols, rows);
  }

  bufferType(): string {
    return this.term.buffer.active.type;
  }

  /** Wait for the end, killing after `ms`. */
  async end(ms = 10_000): Promise<{ exitCode: number; signal?: number }> {
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    try {
      const e = await this.exited;
      await this.pending;
      return e;
    } finally {
      clearTimeout(timer);
    }
  }
}
