/**
 * Privilege separation for `dropmon serve`: the monitor (this process, root:
 * BPF, tracefs, NET_DM, namespaces, the recorder) binds the API's socket and
 * holds it (held-socket.ts); a second process, running as an unprivileged
 * user (api-process-main.ts), accepts on it and parses everything that comes
 * from the network (HTTP, JSON bodies, query strings), serves the dashboard
 * and runs the recording's range queries. The two talk over one socket pair
 * (api-channel.ts, api-frames.ts).
 *
 * The API process cannot stop the monitoring or exhaust the monitor:
 * - what it sends is read with a size limit and a rate limit, checked
 *   against the few messages it may send; anything else ends it;
 * - what it is sent is bounded in bytes: intervals are skipped while it is
 *   behind, and one that stays behind (or falls far behind) is ended;
 * - its calls have budgets (changes apart from reads), and metrics scrapes
 *   asked for together are rendered once;
 * - if it dies, the monitor says so and starts another (sooner the first
 *   times, then at most every 30 s); connections made meanwhile wait in the
 *   socket's backlog. The monitoring goes on throughout.
 * Where it cannot start at all (no such user, dropmon's files closed to that
 * user, capabilities missing), the API runs in this process as before, and
 * the operator is told why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serialize } from 'node:v8';
import type { Attribution, NetnsNames } from '../core/attribution.js';
import { DropmonError } from '../core/errors.js';
import type { IntervalReport } from '../core/interval.js';
import { terminalSafe } from '../core/terminal-safe.js';
import { parseApiMessage, type ApiMessage, type ChannelError, type MonitorMessage, type NamesUpdate, type Shown } from './api-channel.js';
import { encodeFrame, FrameReader, MAX_FROM_API } from './api-frames.js';
import type { ApiUser } from './api-user.js';
import { ConfigError, type HttpConfig, type ServiceConfig } from './config.js';
import { holdListeningSocket, type HeldSocket } from './held-socket.js';
import { ApiServer } from './http.js';
import type { IntervalJson } from './interval-json.js';
import { redactUrl } from './redact.js';
import type { DropService } from './service.js';
import type { StateEvent } from './service-port.js';

/** The API as `serve` holds it, in its own process or in this one. */
export interface ApiHandle {
  readonly bound: { readonly host: string; readonly port: number };
  /** The API process, when it runs apart from the monitor. */
  readonly separate: { readonly user: string; readonly pid: number | undefined } | undefined;
  setToken(token: string): void;
  setHttp(http: HttpConfig): void;
  /** From now on, refuse changes (the service is stopping): a start must not come after the stop. */
  refuseChanges(): void;
  close(): Promise<void>;
}

export interface ApiSettings {
  readonly token: string;
  readonly http: HttpConfig;
  readonly webDir?: string;
  readonly host: string;
  readonly port: number;
  /** Tests only: another program in the API process's place (one that misbehaves). */
  readonly entry?: string;
}

/** Bytes waiting for the API process beyond which intervals are skipped for it. */
const BEHIND_BYTES = 8 * 2 ** 20;
/** Bytes waiting beyond which it is ended at once (a kernel symbol table is about 10 MiB). */
const FAR_BEHIND_BYTES = 64 * 2 ** 20;
/** An API process behind for this long is ended. */
const STUCK_MS = 30_000;
/** How long the API process has to start (node, the knowledge base) on a slow or loaded host. */
const START_TIMEOUT_MS = 60_000;
/** Calls being carried out at once, per kind: more are answered "busy" (503). */
const MAX_CONTROL_CALLS = 4;
const MAX_READ_CALLS = 8;
/** Messages a second the API process may send; more end it. */
const MAX_MESSAGES_PER_S = 2000;
/** The longest output line of the API process passed on to the log. */
const MAX_LOG_LINE = 2000;

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

/** The names of the namespaces and interfaces the reports' points and counters are in. */
export function namesFor(reports: readonly IntervalReport[], a: Attribution): NamesUpdate {
  const netns = new Map<number, NetnsNames>();
  const ifnames = new Map<string, readonly [number, number, string]>();
  for (const r of reports) {
    for (const p of r.points) {
      if (p.netns === undefined) continue;
      if (!netns.has(p.netns)) {
        const n = a.netns(p.netns);
        if (n) netns.set(p.netns, n);
      }
      const key = `${p.netns}/${p.ifindex}`;
      if (p.ifindex !== undefined && !ifnames.has(key)) {
        const name = a.ifname(p.netns, p.ifindex);
        if (name !== undefined) ifnames.set(key, [p.netns, p.ifindex, name]);
      }
    }
    for (const c of r.counters ?? []) {
      if (c.netns === undefined || netns.has(c.netns)) continue;
      const n = a.netns(c.netns);
      if (n) netns.set(c.netns, n);
    }
  }
  return { netns: [...netns], ifnames: [...ifnames.values()] };
}

function asChannelError(err: unknown): ChannelError {
  const e = err as DropmonError;
  if (err instanceof ConfigError) return { kind: 'config', message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  if (err instanceof DropmonError) return { kind: 'host', message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  return { kind: 'other', message: 'internal error' };
}

/** One API process and what the monitor tracks of it. */
interface Child {
  readonly proc: ChildProcess;
  readonly channel: Socket;
  readonly started: number;
  ready: boolean;
  /** When it fell behind (BEHIND_BYTES waiting); undefined while it keeps up. */
  behindSince: number | undefined;
  controlCalls: number;
  readCalls: number;
  second: number;
  messages: number;
  ended: boolean;
}

export class ApiProcess implements ApiHandle {
  private child: Child | undefined;
  private closing = false;
  private token: string;
  private http: HttpConfig;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private scraping: Promise<{ contentType: string; body: string }> | undefined;
  private readonly onInterval: (json: IntervalJson, report: IntervalReport) => void;
  private readonly onState: (e: StateEvent) => void;
  private readyWaiter: { resolve: () => void; reject: (err: Error) => void } | undefined;

  private constructor(
    private readonly service: DropService,
    private readonly settings: ApiSettings,
    private readonly user: ApiUser,
    private readonly held: HeldSocket,
    private readonly warn: (m: string) => void,
  ) {
    this.token = settings.token;
    this.http = settings.http;
    this.onInterval = (json, report) => this.post({ t: 'interval', json, report, shown: this.shown(), names: namesFor([report], service.attribution) }, true);
    this.onState = (event) => this.post({ t: 'state', event, shown: this.shown() }, false);
  }

  /** Bind, start the API process as `user` and wait until it serves; throws when it cannot (a DropmonError: the address). */
  static async start(service: DropService, settings: ApiSettings, user: ApiUser, warn: (m: string) => void): Promise<ApiProcess> {
    const held = await holdListeningSocket(settings.host, settings.port);
    const p = new ApiProcess(service, settings, user, held, warn);
    service.on('interval', p.onInterval);
    service.on('state', p.onState);
    try {
      await p.spawn();
    } catch (err) {
      p.closing = true;
      p.detach();
      held.close();
      throw err;
    }
    return p;
  }

  get bound(): { host: string; port: number } {
    return { host: this.held.host, port: this.held.port };
  }

  get separate(): { user: string; pid: number | undefined } {
    return { user: this.user.name, pid: this.child?.proc.pid };
  }

  setToken(token: string): void {
    this.token = token;
    this.post({ t: 'settings', token: this.token, http: this.http }, false);
  }

  setHttp(http: HttpConfig): void {
    this.http = http;
    this.post({ t: 'settings', token: this.token, http: this.http }, false);
  }

  refuseChanges(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    this.detach();
    const c = this.child;
    if (c && c.proc.exitCode === null && c.proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()));
      this.post({ t: 'close' }, false);
      const timer = setTimeout(() => this.end(c, undefined), 5000);
      await exited;
      clearTimeout(timer);
    }
    this.held.close();
  }

  private detach(): void {
    this.service.off('interval', this.onInterval);
    this.service.off('state', this.onState);
  }

  private shown(): Shown {
    return { config: configForApi(this.service.config), status: this.service.status() };
  }

  /** Send to the current API process; an interval (`skippable`) is left out while it is behind. */
  private post(m: MonitorMessage, skippable: boolean): void {
    const c = this.child;
    if (c) this.sendTo(c, m, skippable);
  }

  private sendTo(c: Child, m: MonitorMessage, skippable = false): void {
    if (c.ended || !c.channel.writable) return;
    const waiting = c.channel.writableLength;
    if (waiting > FAR_BEHIND_BYTES) return this.end(c, `has ${waiting >> 20} MiB unread`);
    if (waiting > BEHIND_BYTES && c.ready) {
      c.behindSince ??= Date.now();
      if (Date.now() - c.behindSince > STUCK_MS) return this.end(c, `has read nothing for ${STUCK_MS / 1000} s`);
    } else c.behindSince = undefined;
    if (skippable && waiting > BEHIND_BYTES) return;
    let payload: Buffer;
    try {
      payload = serialize(m);
    } catch (err) {
      this.warn(`a ${m.t} message could not be sent to the API process: ${(err as Error).message}`);
      return;
    }
    c.channel.write(encodeFrame(payload));
  }

  /** End an API process (`why` said, unless undefined); its exit starts the next one. */
  private end(c: Child, why: string | undefined): void {
    if (c.ended) return;
    c.ended = true;
    if (why) this.warn(`the API process ${why}; ending it`);
    c.channel.destroy();
    try {
      c.proc.kill('SIGKILL');
    } catch {
      /* without CAP_KILL: the closed channel ends it */
    }
  }

  private async spawn(): Promise<void> {
    const env = { ...process.env };
    delete env.DROPMON_TOKEN;
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [...process.execArgv, this.settings.entry ?? ENTRY], {
        uid: this.user.uid,
        gid: this.user.gid,
        cwd: '/',
        env,
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', this.held.fd],
      });
    } catch (err) {
      throw new Error(`the API process (user ${this.user.name}) could not start: ${(err as Error).message}`, { cause: err });
    }
    const channel = proc.stdio[3] as Socket;
    const c: Child = { proc, channel, started: Date.now(), ready: false, behindSince: undefined, controlCalls: 0, readCalls: 0, second: 0, messages: 0, ended: false };
    this.child = c;
    proc.on('error', (err) => this.warn(`the API process: ${err.message}`));
    for (const out of [proc.stdout, proc.stderr]) this.passOn(out);
    const reader = new FrameReader(MAX_FROM_API);
    channel.on('data', (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) this.received(c, frame);
      if (reader.failed) this.end(c, `sent ${reader.failed}`);
    });
    channel.on('error', () => undefined); // its end shows as the process's exit
    proc.on('exit', (code, signal) => this.exited(c, code, signal));
    const ready = new Promise<void>((resolve, reject) => {
      this.readyWaiter = { resolve, reject };
    });
    const timer = setTimeout(() => this.readyWaiter?.reject(new Error(`it did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const s = this.service;
    this.sendTo(c, {
      t: 'init',
      token: this.token,
      http: this.http,
      ...(this.settings.webDir ? { webDir: this.settings.webDir } : {}),
      shown: this.shown(),
      intervals: s.intervals(),
      reports: s.reports(),
      names: namesFor(s.reports(), s.attribution),
      ...(s.attribution.initInode !== undefined ? { initInode: s.attribution.initInode } : {}),
      ...(s.attribution.ownInode !== undefined ? { ownInode: s.attribution.ownInode } : {}),
      user: this.user.name,
    });
    try {
      await ready;
    } catch (err) {
      this.end(c, undefined);
      throw new Error(`the API process (user ${this.user.name}) could not start: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      this.readyWaiter = undefined;
    }
    c.ready = true;
    void s.kernelSymbols().then((t) => {
      if (t) this.sendTo(c, { t: 'kallsyms', parts: t.toParts() });
    });
  }

  /** The API process's output, line by line, marked as its own and made safe for a terminal. */
  private passOn(out: NodeJS.ReadableStream | null): void {
    let partial = '';
    out?.setEncoding('utf8');
    out?.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!.slice(0, MAX_LOG_LINE);
      for (const line of lines) if (line) process.stderr.write(`dropmon: api: ${terminalSafe(line.slice(0, MAX_LOG_LINE))}\n`);
    });
  }

  /** One frame from an API process: a message it may send, within its rate, or it is ended. */
  private received(c: Child, frame: Buffer): void {
    if (c.ended) return;
    const second = Math.floor(Date.now() / 1000);
    if (second !== c.second) [c.second, c.messages] = [second, 0];
    if (++c.messages > MAX_MESSAGES_PER_S) return this.end(c, `sent more than ${MAX_MESSAGES_PER_S} messages in a second`);
    let m: ApiMessage | undefined;
    try {
      m = parseApiMessage(JSON.parse(frame.toString('utf8')));
    } catch {
      m = undefined;
    }
    if (!m) return this.end(c, 'sent a message it may not send');
    if (m.t === 'call') return void this.answer(c, m);
    if (c !== this.child || c.ready) return;
    if (m.t === 'ready') this.readyWaiter?.resolve();
    else this.readyWaiter?.reject(new Error(m.message));
  }

  private exited(c: Child, code: number | null, signal: NodeJS.Signals | null): void {
    c.ended = true;
    if (this.child !== c) return;
    this.child = undefined;
    this.readyWaiter?.reject(new Error(`it exited (${signal ?? `status ${code}`}) while starting`));
    if (this.closing || !c.ready) return;
    // A process that served a while before it died starts over at the short delay.
    if (Date.now() - c.started > 60_000) this.failures = 0;
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

  /** A call from API process `c`: within its kind's budget, carried out in turn by the service, answered to `c` alone. */
  private async answer(c: Child, m: Extract<ApiMessage, { t: 'call' }>): Promise<void> {
    const control = m.method === 'start' || m.method === 'stop' || m.method === 'change';
    const busy = (message: string) => this.sendTo(c, { t: 'reply', id: m.id, error: { kind: 'busy', message } });
    if (this.closing) return busy('the service is stopping');
    if (control ? c.controlCalls >= MAX_CONTROL_CALLS : c.readCalls >= MAX_READ_CALLS) return busy(`${control ? MAX_CONTROL_CALLS : MAX_READ_CALLS} such requests are in hand already; ask again`);
    if (control) c.controlCalls++;
    else c.readCalls++;
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
          // Scrapes asked for together are rendered once.
          value = await (this.scraping ??= this.service.scrapeMetrics().finally(() => (this.scraping = undefined)));
          break;
        case 'counters':
          value = await this.service.counters();
          break;
      }
      this.sendTo(c, { t: 'reply', id: m.id, value, shown: this.shown() });
    } catch (err) {
      if (!(err instanceof DropmonError)) this.warn(`the API's ${m.method} failed: ${(err as Error).message}`);
      this.sendTo(c, { t: 'reply', id: m.id, error: asChannelError(err), shown: this.shown() });
    } finally {
      if (control) c.controlCalls--;
      else c.readCalls--;
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

  refuseChanges(): void {
    /* in one process the API answers until it is closed, as before the API had its own */
  }

  close(): Promise<void> {
    return this.api.close();
  }
}

/**
 * Serve the API: in its own process as `user` where that can start, else in
 * this one (said once, with why). `user` undefined: in this one.
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
