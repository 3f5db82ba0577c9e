/**
 * The monitor as the API process sees it (service-port.ts): a copy of what
 * the monitor pushes over the channel (api-channel.ts), and calls for the few
 * things only the monitor can do (start, stop, change, metrics).
 *
 * What it keeps is bounded as the monitor's own memory is: the latest
 * `memoryIntervals` intervals, and names for at most MAX_NAMES namespaces and
 * interfaces (the oldest forgotten first).
 */
import { EventEmitter } from 'node:events';
import type { Attribution, NetnsNames } from '../core/attribution.js';
import { DropmonError } from '../core/errors.js';
import type { IntervalReport } from '../core/interval.js';
import { KallsymsTable, Symbolizer, type KallsymsParts } from '../kernel/kallsyms.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import type { CallMethod, ChannelError, MonitorMessage, NamesUpdate, Shown } from './api-channel.js';
import { ConfigError, type ServiceConfig } from './config.js';
import type { IntervalJson } from './interval-json.js';
import type { ServiceState, ServiceStatus, StateEvent } from './service-port.js';
import { ServiceBusyError, ServiceTimeoutError, type CountersView, type ServicePort } from './service-port.js';

const MAX_NAMES = 4096;

/** How long a call waits for the monitor: a start loads BPF or NET_DM, which can take seconds on a slow host. */
const CALL_TIMEOUT_MS = 120_000;

/** A call the monitor refused, as the API answers it (http.ts maps DropmonError to 409, ConfigError to 400). */
export function channelError(e: ChannelError): Error {
  if (e.kind === 'config') return new ConfigError(e.message, e.hint);
  if (e.kind === 'host') return new DropmonError(e.message, e.hint);
  if (e.kind === 'busy') return new ServiceBusyError(e.message);
  return new Error(e.message);
}

class MirroredNames implements Attribution {
  private readonly netnsNames = new Map<number, NetnsNames>();
  private readonly interfaces = new Map<string, string>();

  constructor(
    readonly initInode: number | undefined,
    readonly ownInode: number | undefined,
  ) {}

  netns(inode: number): NetnsNames | undefined {
    return this.netnsNames.get(inode);
  }

  ifname(netns: number, ifindex: number): string | undefined {
    return this.interfaces.get(`${netns}/${ifindex}`);
  }

  add(u: NamesUpdate): void {
    for (const [inode, names] of u.netns) remember(this.netnsNames, inode, names);
    for (const [netns, ifindex, name] of u.ifnames) remember(this.interfaces, `${netns}/${ifindex}`, name);
  }
}

/** Set k (as the newest), forgetting the oldest beyond MAX_NAMES. */
function remember<K, V>(m: Map<K, V>, k: K, v: V): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > MAX_NAMES) m.delete(m.keys().next().value as K);
}

export class ServiceMirror extends EventEmitter implements ServicePort {
  readonly symbols = new Symbolizer();
  readonly attribution: MirroredNames;
  private shown: Shown;
  private readonly json: IntervalJson[];
  private readonly kept: IntervalReport[];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    readonly kb: KnowledgeBase,
    init: Extract<MonitorMessage, { t: 'init' }>,
    /** Sends a message to the monitor; false when it is too large to send. */
    private readonly send: (m: unknown) => boolean,
  ) {
    super();
    this.shown = init.shown;
    this.json = [...init.intervals];
    this.kept = [...init.reports];
    this.attribution = new MirroredNames(init.initInode, init.ownInode);
    this.attribution.add(init.names);
    if (init.kallsyms) this.setKallsyms(init.kallsyms);
  }

  get config(): ServiceConfig {
    return this.shown.config;
  }

  get state(): ServiceState {
    return this.shown.status.state;
  }

  status(): ServiceStatus {
    return this.shown.status;
  }

  intervals(limit = Infinity): IntervalJson[] {
    return this.json.slice(Math.max(0, this.json.length - limit));
  }

  reports(): readonly IntervalReport[] {
    return this.kept;
  }

  counters(): Promise<CountersView> {
    return this.call('counters', 'counters').then((v) => v as CountersView);
  }

  start(why: string): Promise<void> {
    return this.call('start', why).then(() => undefined);
  }

  stop(why: string): Promise<void> {
    return this.call('stop', why).then(() => undefined);
  }

  change(change: unknown, why: string): Promise<ServiceConfig> {
    return this.call('change', why, change).then(() => this.shown.config);
  }

  scrapeMetrics(): Promise<{ contentType: string; body: string }> {
    return this.call('metrics', 'metrics').then((v) => v as { contentType: string; body: string });
  }

  /** A message from the monitor (api-process-main.ts hands them here). */
  receive(m: MonitorMessage): void {
    switch (m.t) {
      case 'interval': {
        this.shown = m.shown;
        this.attribution.add(m.names);
        const keep = Math.max(1, m.shown.config.memoryIntervals);
        this.json.push(m.json);
        this.kept.push(m.report);
        if (this.json.length > keep) this.json.splice(0, this.json.length - keep);
        if (this.kept.length > keep) this.kept.splice(0, this.kept.length - keep);
        this.emit('interval', m.json);
        return;
      }
      case 'state':
        this.shown = m.shown;
        this.emit('state', m.event satisfies StateEvent);
        return;
      case 'kallsyms':
        this.setKallsyms(m.parts);
        return;
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.shown) this.shown = m.shown;
        if (m.error) p.reject(channelError(m.error));
        else p.resolve(m.value);
        return;
      }
      default:
        return;
    }
  }

  /** The monitor is gone: every call waiting fails. */
  closeCalls(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('the monitor went away'));
      this.pending.delete(id);
    }
  }

  private setKallsyms(parts: KallsymsParts): void {
    this.symbols.setTable(KallsymsTable.fromParts(parts));
  }

  private call(method: CallMethod, why: string, change?: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.send({ t: 'call', id, method, why, ...(change !== undefined ? { change } : {}) })) {
        reject(new ConfigError('the request is too large to pass on'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ServiceTimeoutError(`the monitor did not answer ${method} within ${CALL_TIMEOUT_MS / 1000} s`));
      }, CALL_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
    });
  }
}
