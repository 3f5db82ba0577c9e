/**
 * Privilege separation for `dropmon serve`: the monitor (this process, root:
 * BPF, tracefs, NET_DM, namespaces, the recorder) binds the API's socket and
 * hands it to a second process running as an unprivileged user
 * (api-process-main.ts), which parses everything that comes from the network
 * (HTTP, JSON bodies, query strings), serves the dashboard and runs the
 * recording's range queries. The two talk over one channel (api-channel.ts).
 *
 * The API process cannot stop the monitoring: if it dies, the monitor says so
 * and starts another (sooner the first times, then at most every 30 s); if it
 * stops reading, what it is sent is bounded and a process that stays stuck
 * is replaced. Where it cannot start at all (no such user, dropmon's files
 * closed to that user, not root), the API runs in this process as before,
 * and the operator is told why.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Attribution } from '../core/attribution.js';
import { DropmonError } from '../core/errors.js';
import type { IntervalReport } from '../core/interval.js';
import { parseApiMessage, type ApiMessage, type ChannelError, type MonitorMessage, type NamesUpdate, type Shown } from './api-channel.js';
import type { ApiUser } from './api-user.js';
import { ConfigError, type HttpConfig, type ServiceConfig } from './config.js';
import { ApiServer } from './http.js';
import type { IntervalJson } from './interval-json.js';
import { redactUrl } from './redact.js';
import type { DropService, StateEvent } from './service.js';

/** The API as `serve` holds it, in its own process or in this one. */
export interface ApiHandle {
  readonly bound: { readonly host: string; readonly port: number };
  /** The API process, when it runs apart from the monitor. */
  readonly separate: { readonly user: string; readonly pid: number | undefined } | undefined;
  setToken(token: string): void;
  setHttp(http: HttpConfig): void;
  close(): Promise<void>;
}

export interface ApiSettings {
  readonly token: string;
  readonly http: HttpConfig;
  readonly webDir?: string;
  readonly host: string;
  readonly port: number;
}

/** Messages not yet written to the API process beyond which intervals are skipped for it (it is not reading). */
const MAX_UNSENT = 64;
/** An API process that has not read for this long is replaced. */
const STUCK_MS = 30_000;
/** How long the API process has to start (node, the knowledge base) on a slow or loaded host. */
const START_TIMEOUT_MS = 60_000;
/** Calls from the API process being carried out at once; more are refused. */
const MAX_CALLS = 16;

const ENTRY = fileURLToPath(new URL('./api-process-main.js', import.meta.url));

/** The configuration as the API process may see it: no token, no webhook secret. */
export function configForApi(c: ServiceConfig): ServiceConfig {
  const { token, ...rest } = c;
  return {
    ...rest,
    ...(token ? { token: '(set)' } : {}),
    alerts: {
      rules: c.alerts.rules,
      webhooks: c.alerts.webhooks.map((w) => ({ ...w, url: redactUrl(w.url), headers: Object.fromEntries(Object.keys(w.headers).map((h) => [h, '(set)'])) })),
    },
  };
}

/** The names of the namespaces and interfaces an interval's points and counters are in. */
export function namesFor(r: IntervalReport, a: Attribution): NamesUpdate {
  const inodes = new Set<number>();
  const ifs = new Map<string, readonly [number, number]>();
  for (const p of r.points) {
    if (p.netns !== undefined) inodes.add(p.netns);
    if (p.netns !== undefined && p.ifindex !== undefined) ifs.set(`${p.netns}/${p.ifindex}`, [p.netns, p.ifindex]);
  }
  for (const c of r.counters ?? []) if (c.netns !== undefined) inodes.add(c.netns);
  const netns: [number, NonNullable<ReturnType<Attribution['netns']>>][] = [];
  for (const i of inodes) {
    const n = a.netns(i);
    if (n) netns.push([i, n]);
  }
  const ifnames: [number, number, string][] = [];
  for (const [ns, ifindex] of ifs.values()) {
    const name = a.ifname(ns, ifindex);
    if (name !== undefined) ifnames.push([ns, ifindex, name]);
  }
  return { netns, ifnames };
}

function asChannelError(err: unknown): ChannelError {
  const e = err as DropmonError;
  if (err instanceof ConfigError) return { kind: 'config', message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  if (err instanceof DropmonError) return { kind: 'host', message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  return { kind: 'other', message: 'internal error' };
}

function bind(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    // Until the API process has it, a connection here would wait for nobody: refuse it (the client retries).
    server.on('connection', (s) => s.destroy());
    server.once('error', (err) => reject(new DropmonError(`cannot listen on ${host}:${port}: ${err.message}`, 'choose another listen address or port')));
    server.listen(port, host, () => resolve(server));
  });
}

export class ApiProcess implements ApiHandle {
  private child: ChildProcess | undefined;
  private closing = false;
  private token: string;
  private http: HttpConfig;
  private port: number;
  private unsent = 0;
  private unsentSince = 0;
  private skipped = 0;
  private calls = 0;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly onInterval: (json: IntervalJson, report: IntervalReport) => void;
  private readonly onState: (e: StateEvent) => void;
  bound = { host: '', port: 0 };

  private constructor(
    private readonly service: DropService,
    private readonly settings: ApiSettings,
    private readonly user: ApiUser,
    private readonly warn: (m: string) => void,
  ) {
    this.token = settings.token;
    this.http = settings.http;
    this.port = settings.port;
    this.onInterval = (json, report) => this.post({ t: 'interval', json, report, shown: this.shown(), names: namesFor(report, service.attribution) }, true);
    this.onState = (event) => this.post({ t: 'state', event, shown: this.shown() }, false);
  }

  /** Bind, start the API process as `user` and wait until it serves; throws when it cannot. */
  static async start(service: DropService, settings: ApiSettings, user: ApiUser, warn: (m: string) => void): Promise<ApiProcess> {
    const p = new ApiProcess(service, settings, user, warn);
    await p.spawn();
    service.on('interval', p.onInterval);
    service.on('state', p.onState);
    return p;
  }

  get separate(): { user: string; pid: number | undefined } {
    return { user: this.user.name, pid: this.child?.pid };
  }

  setToken(token: string): void {
    this.token = token;
    this.post({ t: 'settings', token: this.token, http: this.http }, false);
  }

  setHttp(http: HttpConfig): void {
    this.http = http;
    this.post({ t: 'settings', token: this.token, http: this.http }, false);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    this.service.off('interval', this.onInterval);
    this.service.off('state', this.onState);
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    this.post({ t: 'close' }, false);
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  private shown(): Shown {
    return { config: configForApi(this.service.config), status: this.service.status() };
  }

  /** Send to the API process; an interval (`skippable`) is left out while it is not reading. */
  private post(m: MonitorMessage, skippable: boolean): void {
    const c = this.child;
    if (!c?.connected) return;
    if (this.unsent >= MAX_UNSENT) {
      if (Date.now() - this.unsentSince > STUCK_MS) {
        this.warn(`the API process has read nothing for ${STUCK_MS / 1000} s; replacing it`);
        this.unsent = 0;
        c.kill('SIGKILL');
        return;
      }
      if (skippable) {
        this.skipped++;
        return;
      }
    }
    if (this.unsent === 0) this.unsentSince = Date.now();
    this.unsent++;
    try {
      c.send(m, (err) => {
        if (!err) this.unsent = Math.max(0, this.unsent - 1);
      });
    } catch {
      /* the channel closed under us: the exit handler takes over */
    }
  }

  private async spawn(): Promise<void> {
    const server = await bind(this.settings.host, this.port);
    const env = { ...process.env };
    delete env.DROPMON_TOKEN;
    const child = fork(ENTRY, [], {
      uid: this.user.uid,
      gid: this.user.gid,
      cwd: '/',
      env,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    this.unsent = 0;
    const ready = new Promise<{ host: string; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`it did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      child.once('exit', (code, signal) => reject(new Error(`it exited (${signal ?? `status ${code}`}) while starting`)));
      child.once('error', (err) => reject(err));
      child.on('message', (raw: unknown) => {
        const m = parseApiMessage(raw);
        if (m?.t === 'ready') {
          clearTimeout(timer);
          resolve({ host: m.host, port: m.port });
        } else if (m?.t === 'failed') {
          clearTimeout(timer);
          reject(new Error(m.message));
        } else if (m?.t === 'call') void this.answer(m);
      });
    });
    const s = this.service;
    const names: NamesUpdate = { netns: [], ifnames: [] };
    const init: MonitorMessage = {
      t: 'init',
      token: this.token,
      http: this.http,
      ...(this.settings.webDir ? { webDir: this.settings.webDir } : {}),
      shown: this.shown(),
      intervals: s.intervals(),
      reports: s.reports(),
      names: s.reports().reduce((acc, r) => {
        const n = namesFor(r, s.attribution);
        return { netns: [...acc.netns, ...n.netns], ifnames: [...acc.ifnames, ...n.ifnames] };
      }, names),
      ...(s.attribution.initInode !== undefined ? { initInode: s.attribution.initInode } : {}),
      ...(s.attribution.ownInode !== undefined ? { ownInode: s.attribution.ownInode } : {}),
      user: this.user.name,
    };
    try {
      child.send(init, server);
      this.bound = await ready;
    } catch (err) {
      child.kill('SIGKILL');
      this.child = undefined;
      throw new Error(`the API process (user ${this.user.name}) could not start: ${(err as Error).message}`, { cause: err });
    } finally {
      // The API process holds its own copy of the socket now (or nobody needs it).
      server.close();
    }
    this.port = this.bound.port;
    const started = Date.now();
    child.on('exit', (code, signal) => this.exited(child, code, signal, started));
    void s.kernelSymbols().then((t) => {
      if (t && this.child === child) this.post({ t: 'kallsyms', parts: t.toParts() }, false);
    });
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, started: number): void {
    if (this.child !== child) return;
    this.child = undefined;
    if (this.closing) return;
    // A process that served a while before it died starts over at the short delay.
    if (Date.now() - started > 60_000) this.failures = 0;
    const delay = Math.min(30_000, 1000 * 2 ** this.failures++);
    this.warn(`the API process exited (${signal ?? `status ${code}`}); the monitoring goes on, the API starts again in ${delay / 1000} s`);
    this.scheduleRestart(delay);
  }

  private scheduleRestart(delay: number): void {
    this.restartTimer = setTimeout(() => {
      this.spawn().catch((err: unknown) => {
        if (this.closing) return;
        const next = Math.min(30_000, 1000 * 2 ** this.failures++);
        this.warn(`${(err as Error).message}; trying again in ${next / 1000} s`);
        this.scheduleRestart(next);
      });
    }, delay);
  }

  /** A call from the API process: checked (parseApiMessage), bounded, carried out in turn by the service. */
  private async answer(m: Extract<ApiMessage, { t: 'call' }>): Promise<void> {
    if (this.calls >= MAX_CALLS) {
      this.post({ t: 'reply', id: m.id, error: { kind: 'other', message: `more than ${MAX_CALLS} changes are waiting; try again` } }, false);
      return;
    }
    this.calls++;
    try {
      let value: unknown;
      switch (m.method) {
        case 'start':
          await this.service.start(m.why);
          break;
        case 'stop':
          await this.service.stop(m.why);
          break;
        case 'change':
          await this.service.change(m.change, m.why);
          break;
        case 'metrics':
          value = await this.service.scrapeMetrics();
          break;
        case 'counters':
          value = await this.service.counters();
          break;
      }
      this.post({ t: 'reply', id: m.id, value, shown: this.shown() }, false);
    } catch (err) {
      if (!(err instanceof DropmonError)) this.warn(`the API's ${m.method} failed: ${(err as Error).message}`);
      this.post({ t: 'reply', id: m.id, error: asChannelError(err), shown: this.shown() }, false);
    } finally {
      this.calls--;
    }
  }
}

/** The API in the monitor's own process: where the API process cannot run. */
class InProcessApi implements ApiHandle {
  readonly separate = undefined;
  private constructor(
    private readonly api: ApiServer,
    readonly bound: { host: string; port: number },
  ) {}

  static async start(service: DropService, s: ApiSettings): Promise<InProcessApi> {
    const api = new ApiServer(service, { token: s.token, http: s.http, ...(s.webDir ? { webDir: s.webDir } : {}) });
    return new InProcessApi(api, await api.listen(s.host, s.port));
  }

  setToken(token: string): void {
    this.api.setToken(token);
  }

  setHttp(http: HttpConfig): void {
    this.api.setHttp(http);
  }

  close(): Promise<void> {
    return this.api.close();
  }
}

/**
 * Serve the API: in its own process as `user` where that can start, else in
 * this one (said once, with why). `user` undefined: in this one (not root).
 */
export async function serveApi(service: DropService, settings: ApiSettings, user: ApiUser | undefined, warn: (m: string) => void): Promise<ApiHandle> {
  if (user) {
    try {
      return await ApiProcess.start(service, settings, user, warn);
    } catch (err) {
      if (err instanceof DropmonError) throw err; // the address: the API could not listen in either process
      warn(`${(err as Error).message}; the API runs in the monitor's process, as root`);
    }
  }
  return InProcessApi.start(service, settings);
}
