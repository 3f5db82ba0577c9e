/**
 * The service core: one DropService owns what `dropmon serve` runs.
 *
 *   source --> Pipeline --annotate: counter deltas + correlation--> interval
 *     interval --> recorder (SQLite), memory (latest N), metrics, alerts,
 *                  and the 'interval' event (SSE)
 *
 * start/stop/reconfigure are serialized: one change at a time, and a change
 * is validated (reasons against the kernel's table, locations against
 * kallsyms) before the running pipeline is stopped, so a bad request never
 * leaves the host unmonitored. Stopping always undoes what the source changed
 * on the host (the tracefs instance, NET_DM state), as `watch` does.
 *
 * Events: 'interval' (IntervalJson, IntervalReport), 'state' (StateEvent),
 * 'alert' (AlertEvent).
 */
import { EventEmitter } from 'node:events';
import { hostname, release } from 'node:os';
import type { Attribution } from '../core/attribution.js';
import type { IntervalReport } from '../core/interval.js';
import { annotateWithCounters, troubleAsWarnings } from '../core/annotate.js';
import type { KnowledgeView } from '../core/knowledge-view.js';
import type { DropSource } from '../core/drop.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import { loadKnowledge } from '../knowledge/load.js';
import { Pipeline, type StopReason } from '../core/pipeline.js';
import { type KallsymsTable, Symbolizer } from '../kernel/kallsyms.js';
import { loadKallsymsInBackground } from '../kernel/kallsyms-loader.js';
import { resolveNetnsSpec } from '../kernel/namespaces.js';
import { selectCounters, selectDeltas } from '../outputs/counters.js';
import { ResilientRecorder, type RecordingState } from '../recording/resilient-recorder.js';
import type { CounterSnapshot } from '../sources/counters/snapshot.js';
import { chooseCounterSampler, type CounterChoice } from '../sources/counters/host-sampler.js';
import { NetnsRegistry } from '../kernel/netns-registry.js';
import { releaseNetns } from '../kernel/setns.js';
import { readKernelReasons, type KernelReasons } from '../sources/kernel-reasons.js';
import { reclaimedLine, reclaimLeftovers } from '../sources/reclaim.js';
import { AlertEngine, LogNotifier, WebhookNotifier, type AlertEvent, type Notifier } from './alerts.js';
import { applyRuntimeChange, ConfigError, type ServiceConfig } from './config.js';
import type { CountersView, ServicePort, ServiceState, ServiceStatus, StateEvent } from './service-port.js';
import { intervalJson, type IntervalJson } from './interval-json.js';
import { cachedKnowledgeView } from '../knowledge/views.js';
import { ServiceMetrics } from './metrics.js';
import { fallbackSource, planSource, type SourcePlan } from './source.js';
import { dropmonVersion } from '../core/version.js';
import { terminalSafe } from '../core/terminal-safe.js';

export type { ServiceState, ServiceStatus, StateEvent } from './service-port.js';

export interface DropServiceOptions {
  readonly config: ServiceConfig;
  /** Operator messages (one line each). */
  readonly warn?: (message: string) => void;
  readonly info?: (message: string) => void;
  /** Alert lines; default stdout. */
  readonly alertLog?: (line: string) => void;
  readonly kb?: KnowledgeBase;
  /** Namespace and interface names for the points; default this host's (kernel/namespaces.ts). */
  readonly attribution?: Attribution;
  /** A group that may read the recording (the API process's, api-process.ts). */
  readonly recordingReaders?: number;
}

/** What one run of the pipeline owns; all of it goes away at stop. */
interface Run {
  readonly pipeline: Pipeline;
  readonly source: DropSource;
  readonly recorder?: ResilientRecorder;
  readonly counters?: CounterChoice;
  readonly done: Promise<StopReason>;
  readonly since: number;
}

export class DropService extends EventEmitter implements ServicePort {
  readonly kb: KnowledgeBase;
  /** The knowledge base's per-counter answers, remembered (asked every interval). */
  private readonly kbView: KnowledgeView;
  readonly symbols = new Symbolizer();
  /** Names of namespaces and interfaces, for the API and the metrics. */
  readonly attribution: Attribution;
  /** Every network namespace, held while a run reads counters host-wide; names them (and when one went away) for the outputs. */
  private readonly netns = new NetnsRegistry();
  readonly metrics: ServiceMetrics;
  private readonly alerts: AlertEngine;
  private webhooks: WebhookNotifier[] = [];
  private config_: ServiceConfig;
  /** This kernel's reason tables, read once. */
  private readonly tables: KernelReasons;
  private readonly kallsyms: Promise<KallsymsTable | undefined>;
  private run: Run | undefined;
  /** Serializes start/stop/reconfigure. */
  private op: Promise<unknown> = Promise.resolve();
  private readonly recentJson: IntervalJson[] = [];
  private readonly recentReports: IntervalReport[] = [];
  private snapshot: CounterSnapshot | undefined;
  private totals = { drops: 0, lost: 0, intervals: 0 };
  private recorderStats = { file: null as string | null, bytes: 0, intervals: 0, unwritten: 0, state: null as RecordingState | null };
  private readonly warn: (m: string) => void;
  private readonly info: (m: string) => void;
  private readonly recordingReaders: number | undefined;

  constructor(opts: DropServiceOptions) {
    super();
    this.config_ = opts.config;
    this.recordingReaders = opts.recordingReaders;
    this.warn = opts.warn ?? ((m) => process.stderr.write(`dropmon: warning: ${terminalSafe(m)}\n`));
    this.info = opts.info ?? ((m) => process.stderr.write(`dropmon: ${terminalSafe(m)}\n`));
    // Before this service changes anything: undo what dropmons that died left (never fails).
    const reclaimed = reclaimedLine(reclaimLeftovers());
    if (reclaimed) this.info(reclaimed);
    this.kb = opts.kb ?? loadKnowledge();
    this.kbView = cachedKnowledgeView(this.kb);
    this.attribution = opts.attribution ?? this.netns;
    this.tables = readKernelReasons();
    // kallsyms on a worker thread: the source starts at once, symbols follow.
    this.kallsyms = loadKallsymsInBackground().then(
      (t) => {
        this.symbols.setTable(t);
        if (t.hidden) this.warn('kernel addresses are hidden (kernel.kptr_restrict): drop locations will not be symbolized');
        return t;
      },
      (err: unknown) => {
        this.warn(`cannot read /proc/kallsyms (${err instanceof Error ? err.message : String(err)}): drop locations will not be symbolized`);
        return undefined;
      },
    );
    this.metrics = new ServiceMetrics(this.config_.metrics, this.kb, this.symbols, this.attribution);
    const log = new LogNotifier(opts.alertLog);
    const fanout: Notifier = { notify: (e) => this.notifyAlert(e) };
    this.alerts = new AlertEngine(this.config_.alerts.rules, [log, fanout], this.kbView);
    this.setWebhooks();
    this.metrics.setSourceUp(false);
  }

  get config(): ServiceConfig {
    return this.config_;
  }

  get state(): ServiceState {
    return this.run ? 'running' : 'stopped';
  }

  /** The latest intervals in memory, oldest first. */
  intervals(limit = Infinity): IntervalJson[] {
    return this.recentJson.slice(Math.max(0, this.recentJson.length - limit));
  }

  /** The latest interval reports in memory (diagnosis without a recording). */
  reports(): readonly IntervalReport[] {
    return this.recentReports;
  }

  /** The last counter snapshot, when counters are on. */
  lastSnapshot(): CounterSnapshot | undefined {
    return this.snapshot;
  }

  /** The dropmon_kernel_stat gauge and the API's counter list: drop-related non-zero counters. */
  shownCounters(): ReturnType<typeof selectCounters> {
    return this.snapshot ? selectCounters(this.snapshot.readings, this.kbView, false) : [];
  }

  /** The API's counter list: the last reading's drop-related non-zero counters. */
  counters(): Promise<CountersView> {
    const snap = this.snapshot;
    return Promise.resolve({
      enabled: this.config_.counters.enabled,
      at: snap ? new Date(snap.wallMs).toISOString() : null,
      counters: this.shownCounters().map((c) => ({ name: c.name, scope: c.scope, layer: c.layer, value: c.value, class: c.class, meaning: c.meaning, ...(c.detail ? { detail: c.detail } : {}) })),
      notRead: snap?.errors ?? [],
    });
  }

  /** The kernel's symbols once read (undefined where they cannot be), for the API process, which cannot read them. */
  kernelSymbols(): Promise<KallsymsTable | undefined> {
    return this.kallsyms;
  }

  /** The Prometheus exposition. */
  scrapeMetrics(): Promise<{ contentType: string; body: string }> {
    return this.metrics.scrape();
  }

  status(): ServiceStatus {
    const r = this.run;
    return {
      version: dropmonVersion(),
      hostname: hostname(),
      kernel: release(),
      state: this.state,
      source: r?.source.name ?? null,
      sourceDescription: r ? r.source.describe() : null,
      since: r ? new Date(r.since).toISOString() : null,
      intervalMs: this.config_.intervalMs,
      drops: this.totals.drops,
      lost: this.totals.lost,
      intervals: this.totals.intervals,
      recording: { ...this.recorderStats, file: this.config_.recording.file || null },
      counters: this.config_.counters.enabled,
      alertsFiring: this.alerts.firing(),
    };
  }

  /** Start monitoring with the current config (no-op when running). Throws ConfigError/DropmonError. */
  start(why = 'start'): Promise<void> {
    return this.serialize(async () => {
      if (!this.run) await this.startRun(why);
    });
  }

  /** Stop monitoring; the source undoes its changes to the host; the recording is flushed. */
  stop(why = 'stop'): Promise<void> {
    return this.serialize(() => this.stopRun(why));
  }

  /** Replace the configuration, in turn with the other changes (update). */
  reconfigure(next: ServiceConfig, why = 'config'): Promise<void> {
    return this.update(() => next, why).then(() => undefined);
  }

  /** PUT /api/v1/config: the configuration in effect at this change's turn, plus the keys `change` names (validated here). */
  change(change: unknown, why: string): Promise<ServiceConfig> {
    return this.update((current) => applyRuntimeChange(current, change), why);
  }

  /**
   * Change the configuration with `change`, handed the configuration in
   * effect when its turn comes: changes run one at a time, in the order they
   * were asked for, each from what the one before left. An API change
   * (PUT /api/v1/config: the running config plus the keys it names) and a
   * reload (SIGHUP: the file, read at its turn) both come this way, so
   * neither is computed from a configuration the other is replacing: a PUT
   * asked for after a reload keeps what the reload set and is kept by it; a
   * reload asked for after a PUT makes the file's configuration current, as a
   * restart would. Resolves with the configuration in effect after it;
   * `change` may throw (ConfigError), which changes nothing.
   */
  update(change: (current: ServiceConfig) => ServiceConfig | Promise<ServiceConfig>, why: string): Promise<ServiceConfig> {
    return this.serialize(async () => {
      await this.apply(await change(this.config_), why);
      return this.config_;
    });
  }

  /**
   * Apply a configuration (within serialize). It is validated first (a
   * ConfigError leaves everything as it was); a running pipeline is restarted
   * with it. If the new source cannot start, the old config is started again
   * and the error is thrown.
   */
  private async apply(next: ServiceConfig, why: string): Promise<void> {
    await this.validate(next);
    const prev = this.config_;
    const wasRunning = this.run !== undefined;
    if (wasRunning) await this.stopRun(why, false);
    this.config_ = next;
    this.alerts.setRules(next.alerts.rules);
    if (JSON.stringify(prev.alerts.webhooks) !== JSON.stringify(next.alerts.webhooks)) this.setWebhooks();
    this.metrics.setOptions(next.metrics);
    if (!wasRunning) {
      this.emitState(why);
      return;
    }
    try {
      await this.startRun(why);
    } catch (err) {
      this.config_ = prev;
      this.alerts.setRules(prev.alerts.rules);
      this.warn(`the new configuration could not start (${(err as Error).message}); back to the previous one`);
      try {
        await this.startRun('rollback');
      } catch (err2) {
        this.warn(`the previous configuration could not start either: ${(err2 as Error).message}`);
        this.emitState((err2 as Error).message);
      }
      throw err;
    }
  }

  /** Check a config against the running kernel without applying it. */
  async validate(c: ServiceConfig): Promise<void> {
    const table = c.filters.locations.length ? await this.kallsyms : undefined;
    planSource(c, this.tables, table);
    if (c.counters.enabled && c.counters.netns !== undefined) {
      try {
        releaseNetns(resolveNetnsSpec(c.counters.netns));
      } catch (err) {
        throw new ConfigError(`counters.netns: ${(err as Error).message}`);
      }
    }
  }

  /** Stop, flush, and let go of everything (graceful shutdown). */
  async shutdown(): Promise<void> {
    await this.stop('shutdown');
    for (const w of this.webhooks) await w.idle(2000);
    for (const w of this.webhooks) w.close();
  }

  /**
   * Synchronous last resort for exit paths (second signal, fatal error):
   * undo the source's host changes and close the recording without waiting.
   */
  closeNow(): void {
    const r = this.run;
    if (!r) return;
    r.pipeline.stop('error');
    try {
      r.source.close();
    } finally {
      r.recorder?.close();
    }
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.op.then(fn, fn);
    this.op = next.catch(() => undefined);
    return next;
  }

  private async startRun(why: string): Promise<void> {
    const c = this.config_;
    const table = c.filters.locations.length ? await this.kallsyms : undefined;
    const plan = planSource(c, this.tables, table);
    try {
      await this.launch(c, plan, why);
    } catch (err) {
      // The source auto preferred (BPF) can still fail to load (a verifier or memory limit of
      // this host): a service had better watch through the next one (tracefs) than not at all.
      const next = fallbackSource(c, plan.choice);
      if (!next) throw err;
      this.warn(`the ${plan.choice.provider.title} source cannot start (${(err as Error).message}); using ${next.name}`);
      await this.launch(c, planSource(c, this.tables, table, next.name), why);
    }
  }

  private async launch(c: ServiceConfig, plan: SourcePlan, why: string): Promise<void> {
    const counters = c.counters.enabled
      ? chooseCounterSampler({
          ...(c.counters.netns !== undefined ? { netns: resolveNetnsSpec(c.counters.netns) } : {}),
          scope: c.counters.scope ?? 'host',
          intervalMs: c.intervalMs,
          own: { sockets: 'drops', ethtoolDriver: c.counters.driver },
          registry: this.netns,
        })
      : undefined;
    const sampler = counters?.sampler;
    // The baseline is read now; the latest snapshot is kept for the API, the metrics and the alerts' interface names.
    const annotate = sampler
      ? annotateWithCounters({
          kb: this.kbView,
          ownNetns: this.attribution.ownInode,
          sampler,
          symbolName: (a) => this.symbols.lookup(a)?.name,
          noise: 'flat',
          trouble: troubleAsWarnings(this.warn, this.info),
          onSnapshot: (snapshot) => {
            this.snapshot = snapshot;
            this.metrics.setCounters(snapshot.readings);
          },
        })
      : undefined;
    let source: DropSource;
    try {
      source = plan.create(this.warn);
    } catch (err) {
      counters?.close();
      throw err;
    }
    let recorder: ResilientRecorder | undefined;
    if (c.recording.file) {
      // Never throws for the file: a broken one is moved aside, storage trouble is waited out, a newer
      // dropmon's recording is left alone; monitoring starts in every case.
      recorder = new ResilientRecorder(c.recording.file, {
        source: source.name,
        intervalMs: c.intervalMs,
        symbols: this.symbols,
        warn: this.warn,
        onReset: (why) => this.metrics.recordingReset(why),
        ...(this.recordingReaders !== undefined ? { readerGroup: this.recordingReaders } : {}),
        retention: {
          ...(c.recording.maxAgeMs !== undefined ? { maxAgeMs: c.recording.maxAgeMs } : {}),
          ...(c.recording.maxBytes !== undefined ? { maxBytes: c.recording.maxBytes } : {}),
        },
      });
    }
    let started!: () => void;
    const startedP = new Promise<void>((resolve) => (started = resolve));
    const pipeline = new Pipeline({
      source,
      outputs: [{ interval: (r) => this.onInterval(r, recorder) }],
      packetOutputs: recorder ? [recorder] : [],
      intervalMs: c.intervalMs,
      maxPoints: c.maxPoints,
      filter: plan.filter,
      outputsReady: this.kallsyms,
      ...(annotate ? { annotate } : {}),
      onStarted: () => started(),
    });
    const done = pipeline.run();
    try {
      await Promise.race([startedP, done.then(() => Promise.reject(new Error('the source stopped at once')))]);
    } catch (err) {
      source.close();
      recorder?.close();
      counters?.close();
      throw err;
    }
    this.run = { pipeline, source, recorder, ...(counters ? { counters } : {}), done, since: Date.now() };
    if (recorder) this.updateRecorderStats(recorder);
    this.metrics.setSourceUp(true);
    this.info(`watching ${source.describe()}${plan.choice.why !== 'asked for' ? ` (${plan.choice.why})` : ''}`);
    this.emitState(why);
  }

  private async stopRun(why: string, announce = true): Promise<void> {
    const r = this.run;
    if (!r) return;
    r.pipeline.stop('signal');
    try {
      await r.done;
    } catch (err) {
      this.warn(`the pipeline ended with an error: ${(err as Error).message}`);
    } finally {
      this.run = undefined;
      r.source.close();
      r.counters?.close();
      if (r.recorder) {
        this.updateRecorderStats(r.recorder);
        r.recorder.close();
        this.recorderStats.state = null;
      }
      this.metrics.setSourceUp(false);
    }
    if (announce) this.emitState(why);
  }

  private onInterval(r: IntervalReport, recorder: ResilientRecorder | undefined): void {
    this.totals.drops += r.drops;
    this.totals.lost += r.lostTotal;
    this.totals.intervals++;
    const json = intervalJson(r, this.symbols, this.attribution, this.kb, this.kbView);
    // Drop-related counters only, for memory and the recording: traffic counters move every
    // interval and say nothing about drops (alerts and metrics still see every delta).
    const dropCounters = r.counters ? selectDeltas(r.counters.filter((d) => !d.gauge && d.delta !== 0), this.kbView, false) : undefined;
    const keep = this.config_.memoryIntervals;
    const kept = dropCounters ? { ...r, counters: dropCounters } : r;
    this.recentJson.push(json);
    this.recentReports.push(kept);
    if (this.recentJson.length > keep) this.recentJson.splice(0, this.recentJson.length - keep);
    if (this.recentReports.length > keep) this.recentReports.splice(0, this.recentReports.length - keep);
    if (recorder) {
      recorder.record({ interval: r, ...(dropCounters ? { counters: dropCounters } : {}) });
      this.updateRecorderStats(recorder);
    }
    this.metrics.interval(r);
    const ifnames = new Map<number, string>();
    for (const [i, l] of this.snapshot?.links ?? []) ifnames.set(i, l.name);
    this.alerts.evaluate(r, ifnames);
    // The report as kept (drop-related counters only): what the API process is sent.
    this.emit('interval', json, kept);
  }

  private updateRecorderStats(recorder: ResilientRecorder): void {
    const s = recorder.stats;
    this.recorderStats = { file: recorder.file, bytes: s.databaseBytes, intervals: s.intervals, unwritten: s.intervalsUnwritten, state: recorder.state };
    this.metrics.setRecordingBytes(s.databaseBytes);
  }

  private notifyAlert(e: AlertEvent): void {
    for (const w of this.webhooks) w.notify(e);
    this.emit('alert', e);
  }

  private setWebhooks(): void {
    for (const w of this.webhooks) w.close();
    this.webhooks = this.config_.alerts.webhooks.map((h) => new WebhookNotifier(h, { warn: this.warn }));
  }

  private emitState(why: string): void {
    const r = this.run;
    const e: StateEvent = { state: this.state, source: r?.source.name ?? null, since: r ? new Date(r.since).toISOString() : null, why };
    this.emit('state', e);
  }
}
