/**
 * Runs `dropmon serve` as a child process on a free loopback port, with its
 * recording and state (the generated API token) in a temporary folder, and
 * talks to it over HTTP, with that token unless told otherwise.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DropmonProcess } from '../helpers/dropmon.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export class Served {
  readonly dir: string;
  readonly proc: DropmonProcess;
  port = 0;
  token: string | undefined;

  /** The token given, else the one the service generated (read once it serves); anonymous: none. */
  private readonly tokenGiven: boolean;

  /** `env`: the service's environment (default this process's). */
  constructor(args: string[], opts: { record?: boolean; token?: string; anonymous?: boolean; env?: NodeJS.ProcessEnv } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'dropmon-serve-'));
    // The API process (another user, without root) reads the recording here; the token stays 0600.
    chmodSync(this.dir, 0o711);
    // A test that fails before stop() must not leave its folder (and token) behind.
    process.once('exit', this.removeDir);
    const record = opts.record ?? true;
    this.token = opts.token;
    this.tokenGiven = opts.token !== undefined || opts.anonymous === true;
    const hasListen = args.includes('--listen');
    this.proc = new DropmonProcess([
      'serve',
      ...(hasListen ? [] : ['--listen', '127.0.0.1:0']),
      ...(record ? ['--record', this.db] : ['--no-record']),
      ...(args.includes('--state-dir') ? [] : ['--state-dir', this.dir]),
      ...args,
    ], undefined, opts.env);
  }

  private readonly removeDir = (): void => rmSync(this.dir, { recursive: true, force: true });

  /** The token the service generated in its state directory. */
  get stateToken(): string {
    return readFileSync(join(this.dir, 'token'), 'utf8').trim();
  }

  get db(): string {
    return join(this.dir, 'dropmon.db');
  }

  /** Wait for "serving on http://HOST:PORT/". */
  async ready(ms = 20_000): Promise<this> {
    await this.proc.ready(ms, 'serving on');
    const m = /serving on http:\/\/[^ ]*:(\d+)\//.exec(this.proc.stderr);
    if (!m) throw new Error(`no port in: ${this.proc.stderr}`);
    this.port = Number(m[1]);
    if (!this.tokenGiven && this.proc.stderr.includes(join(this.dir, 'token'))) this.token = this.stateToken;
    return this;
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          headers: {
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
            ...headers,
          },
          timeout: 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
    return this.call('GET', path, undefined, headers);
  }

  /** The Authorization header of this.token (none without a token). */
  auth(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** readEvents with this service's token. */
  events(path: string, want: (event: string, data: unknown) => boolean, ms?: number, headers: Record<string, string> = {}): ReturnType<typeof readEvents> {
    return readEvents(this.port, path, want, ms, { ...this.auth(), ...headers });
  }

  /** Poll `fn` until it returns a value (not undefined), at most `ms`. */
  async until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
    const t0 = Date.now();
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() - t0 > ms) throw new Error(`${what}: not after ${ms} ms; stderr: ${this.proc.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM') {
    const fin = await this.proc.stop(signal, 15_000);
    this.removeDir();
    process.off('exit', this.removeDir);
    return fin;
  }
}

/** Read SSE events from the service until `want` returns true for one (or timeout). */
export function readEvents(
  port: number,
  path: string,
  want: (event: string, data: unknown) => boolean,
  ms = 10_000,
  headers: Record<string, string> = {},
): Promise<{ event: string; data: unknown; status: number; all: { event: string; data: unknown }[] }> {
  return new Promise((resolve, reject) => {
    const all: { event: string; data: unknown }[] = [];
    let status = 0;
    const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        res.on('end', () => resolve({ event: '', data: undefined, status, all }));
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!ev || data === undefined) continue;
          const parsed: unknown = JSON.parse(data);
          all.push({ event: ev, data: parsed });
          if (want(ev, parsed)) {
            clearTimeout(timer);
            req.destroy();
            resolve({ event: ev, data: parsed, status, all });
          }
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no matching event within ${ms} ms; got ${all.map((e) => e.event).join(', ')}`));
    }, ms);
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
    req.end();
  });
}
