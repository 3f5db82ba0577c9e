/**
 * Prometheus metrics (GET /metrics), with bounded label cardinality: a drop
 * storm over thousands of kernel locations must not become thousands of time
 * series in every Prometheus that scrapes the host.
 *
 *   dropmon_drops_total{reason,location,protocol,origin,netns,pod,container}  counter
 *   dropmon_lost_events_total{cause}                      counter
 *   dropmon_kernel_stat{name,scope,layer,netns}           gauge: a kernel drop counter's value
 *     (not "dropmon_counter": promtool's lint rejects a type name inside a metric name)
 *   dropmon_intervals_total                               counter
 *   dropmon_source_up                                     gauge: 1 while a source runs
 *   dropmon_recording_bytes                               gauge
 *   dropmon_recording_reset_total{why}                    counter: broken recordings moved aside
 *     (why: not_a_database, corrupt, foreign, unmigratable; every value present from the start)
 *   process_* / nodejs_*                                  prom-client's default metrics
 *   dropmon_api_process_{resident_memory,heap_used,heap_total,external}_bytes  gauges: the API process (api-process-metrics.ts)
 *
 * Locations: kernel function names, never addresses ("unknown" until a drop
 * point can be symbolized). The first `topLocations` distinct functions to drop packets
 * (the busiest first within an interval) keep their own label for the life of
 * the process; the rest are counted as location="other". Admission is sticky
 * because a counter series must never go backwards or disappear and
 * reappear. Protocols are limited the same way, and loss causes too.
 * Network namespaces too (MAX_NETNS); `pod` and `container` are what the
 * cgroup of a process in an admitted namespace says (Kubernetes pod UID,
 * runtime and container id), so they add no series beyond the namespaces'.
 *
 * Kernel counters are labelled by the namespace they were read in: dropmon's
 * own always, and the MAX_COUNTER_NETNS others whose drop counters moved the
 * most since the service started; the counters of every other namespace are
 * summed per name, scope and layer into netns="other". The ranking is by
 * movement since the start, not in the last interval, so that a namespace
 * keeps its label (and its series) across a quiet minute. The whole gauge is
 * still bounded by maxCounterSeries.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { IntervalReport } from '../core/interval.js';
import type { CounterReading } from '../core/counter.js';
import { protocolName } from '../core/drop.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';
import { counterMeaning } from '../core/counter-meaning.js';
import { RESET_CAUSES, type ResetCause } from '../recording/resilient-recorder.js';
import { UNKNOWN_LOCATION } from './redact.js';

export const OTHER = 'other';
const MAX_PROTOCOLS = 16;
/** Network namespaces named in labels (the BPF source attributes drops to them); the rest are "other". */
const MAX_NETNS = 32;
/** Namespaces besides dropmon's own whose kernel counters keep their own netns label (the busiest); the rest are summed as "other". */
export const MAX_COUNTER_NETNS = 10;
const MAX_CAUSES = 32;
/** Reasons are a kernel enum (~100); this only guards against a misbehaving source. */
const MAX_REASONS = 256;

export interface MetricsOptions {
  readonly topLocations: number;
  readonly maxCounterSeries: number;
  /** prom-client's process and Node.js metrics (default true). */
  readonly defaultMetrics?: boolean;
}

/** A bounded set of label values: the first `max` stay, the rest become OTHER. */
class LabelBudget {
  private readonly admitted = new Set<string>();
  constructor(private readonly max: number) {}
  label(v: string): string {
    if (this.admitted.has(v)) return v;
    if (this.admitted.size < this.max) {
      this.admitted.add(v);
      return v;
    }
    return OTHER;
  }
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly drops: Counter<'reason' | 'location' | 'protocol' | 'origin' | 'netns' | 'pod' | 'container'>;
  private readonly lost: Counter<'cause'>;
  private readonly intervals: Counter;
  private readonly sourceUp: Gauge;
  private readonly recordingBytes: Gauge;
  private readonly recordingResets: Counter<'why'>;
  private locations: LabelBudget;
  private readonly protocols = new LabelBudget(MAX_PROTOCOLS);
  private readonly causes = new LabelBudget(MAX_CAUSES);
  private readonly reasons = new LabelBudget(MAX_REASONS);
  private readonly namespaces = new LabelBudget(MAX_NETNS);
  private counterReadings: readonly CounterReading[] = [];
  /** The last value of each drop-related counter (by namespace and instance), to measure how much each namespace moved. */
  private lastValues = new Map<string, number>();
  /** How much the drop-related counters of each namespace (undefined: dropmon's own) moved since the start. */
  private movement = new Map<number | undefined, number>();
  /** Whether a counter name counts drops: asked of the knowledge base once per name, not per scrape. */
  private readonly dropRelated = new Map<string, boolean>();

  constructor(
    private opts: MetricsOptions,
    private readonly kb: KnowledgeBase,
    private readonly symbols: Symbolizer | undefined,
    /** Names the netns, pod and container labels; without it the netns label is the inode. */
    private readonly attribution: Attribution | undefined,
  ) {
    const registers = [this.registry];
    this.locations = new LabelBudget(opts.topLocations);
    this.drops = new Counter({
      name: 'dropmon_drops_total',
      help: 'Packets dropped by the kernel, by drop reason, kernel function (top N, the rest "other"), protocol, origin, network namespace and its Kubernetes pod and container (BPF source; "" when the source cannot tell).',
      labelNames: ['reason', 'location', 'protocol', 'origin', 'netns', 'pod', 'container'],
      registers,
    });
    this.lost = new Counter({ name: 'dropmon_lost_events_total', help: 'Drop events the source could not receive (buffer overruns), by cause.', labelNames: ['cause'], registers });
    this.intervals = new Counter({ name: 'dropmon_intervals_total', help: 'Intervals closed by the service.', registers });
    this.sourceUp = new Gauge({ name: 'dropmon_source_up', help: '1 while a drop source is running, 0 when stopped.', registers });
    this.recordingBytes = new Gauge({ name: 'dropmon_recording_bytes', help: 'Size of the recording database.', registers });
    this.recordingResets = new Counter({
      name: 'dropmon_recording_reset_total',
      help: 'Recordings that could not be used, moved aside (FILE.broken-TIME) and started anew, by why.',
      labelNames: ['why'],
      registers,
    });
    for (const why of RESET_CAUSES) this.recordingResets.inc({ why }, 0);
    const series = () => this.kernelStatSeries();
    new Gauge({
      name: 'dropmon_kernel_stat',
      help: `Drop-related kernel counters (the value the kernel reports), non-zero ones only, bounded in number; by the network namespace they were read in (dropmon's own and the ${MAX_COUNTER_NETNS} others that moved most by name, the rest summed as "other").`,
      labelNames: ['name', 'scope', 'layer', 'netns'],
      registers,
      collect() {
        this.reset();
        for (const s of series()) this.set(s.labels, s.value);
      },
    });
    if (opts.defaultMetrics ?? true) {
      // The event-loop delay monitor samples every 10 ms by default: about 1 % of a core on an idle
      // service, as much as everything else it does. A coarser resolution still shows stalls.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 500 });
      // Gauges named *_total, which promtool's lint rejects (and nobody graphs).
      for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(n);
    }
  }

  /** New limits (reload). A smaller location budget applies to locations not yet seen. */
  setOptions(opts: MetricsOptions): void {
    if (opts.topLocations !== this.opts.topLocations) this.locations = new LabelBudget(opts.topLocations);
    this.opts = opts;
  }

  setSourceUp(up: boolean): void {
    this.sourceUp.set(up ? 1 : 0);
  }

  setRecordingBytes(bytes: number): void {
    this.recordingBytes.set(bytes);
  }

  recordingReset(why: ResetCause): void {
    this.recordingResets.inc({ why });
  }

  /** The latest counter snapshot's readings (exported as dropmon_kernel_stat at scrape time). */
  setCounters(readings: readonly CounterReading[]): void {
    this.counterReadings = readings;
    // How much each namespace moved: the ranking of the netns label. Namespaces no longer read are forgotten.
    const values = new Map<string, number>();
    const movement = new Map<number | undefined, number>();
    for (const c of readings) {
      if (c.gauge || !this.shown(c.name)) continue;
      const ns = this.readIn(c);
      const key = `${ns ?? ''}|${c.name}@${c.scope}`;
      values.set(key, c.value);
      const before = this.lastValues.get(key);
      const moved = before === undefined || c.value < before ? 0 : c.value - before;
      movement.set(ns, (movement.get(ns) ?? this.movement.get(ns) ?? 0) + moved);
    }
    this.lastValues = values;
    this.movement = movement;
  }

  /** Whether a counter name counts drops (or errors and pressure beside them). */
  private shown(name: string): boolean {
    let v = this.dropRelated.get(name);
    if (v === undefined) {
      v = counterMeaning({ name }, this.kb).class !== 'info';
      if (this.dropRelated.size < 10_000) this.dropRelated.set(name, v);
    }
    return v;
  }

  /** The namespace a counter was read in; undefined for dropmon's own. */
  private readIn(c: CounterReading): number | undefined {
    return c.netns === undefined || c.netns === this.attribution?.ownInode ? undefined : c.netns;
  }

  /** The netns label of a namespace (undefined: dropmon's own): its name, "init", or its inode. */
  private counterNetnsLabel(ns: number | undefined): string {
    const inode = ns ?? this.attribution?.ownInode;
    if (inode === undefined) return '';
    return this.attribution?.netns(inode)?.name ?? (inode === this.attribution?.initInode ? 'init' : String(inode));
  }

  /**
   * dropmon_kernel_stat's series: dropmon's own namespace, then the busiest
   * others by name, then the rest summed as "other"; at most maxCounterSeries.
   */
  kernelStatSeries(): { labels: { name: string; scope: string; layer: string; netns: string }; value: number }[] {
    const byNetns = new Map<number | undefined, CounterReading[]>();
    for (const c of this.counterReadings) {
      if (c.value === 0 || c.gauge || !this.shown(c.name)) continue;
      const ns = this.readIn(c);
      const list = byNetns.get(ns);
      if (list) list.push(c);
      else byNetns.set(ns, [c]);
    }
    const others = [...byNetns.keys()].filter((ns): ns is number => ns !== undefined);
    const moved = (ns: number) => this.movement.get(ns) ?? 0;
    others.sort((a, b) => moved(b) - moved(a) || a - b);
    const named = [undefined, ...others.slice(0, MAX_COUNTER_NETNS)];
    const out: { labels: { name: string; scope: string; layer: string; netns: string }; value: number }[] = [];
    const limit = this.opts.maxCounterSeries;
    for (const ns of named) {
      const netns = this.counterNetnsLabel(ns);
      for (const c of byNetns.get(ns) ?? []) {
        if (out.length >= limit) return out;
        out.push({ labels: { name: c.name, scope: c.scope, layer: c.layer, netns }, value: c.value });
      }
    }
    const summed = new Map<string, { labels: { name: string; scope: string; layer: string; netns: string }; value: number }>();
    for (const ns of others.slice(MAX_COUNTER_NETNS))
      for (const c of byNetns.get(ns) ?? []) {
        const key = `${c.name}\0${c.scope}\0${c.layer}`;
        const s = summed.get(key);
        if (s) s.value += c.value;
        else summed.set(key, { labels: { name: c.name, scope: c.scope, layer: c.layer, netns: OTHER }, value: c.value });
      }
    for (const s of summed.values()) {
      if (out.length >= limit) break;
      out.push(s);
    }
    return out;
  }

  interval(r: IntervalReport): void {
    this.intervals.inc();
    // Busiest points first, so that a storm's main location is admitted before its noise.
    for (const p of r.points) {
      // Never the raw address: /metrics may be read without the token (http.readOnlyPublic), and an
      // address would undo kptr_restrict. Unsymbolized drops share one series.
      const fn = this.symbols?.lookup(p.location)?.name ?? UNKNOWN_LOCATION;
      this.drops.inc(
        {
          reason: this.reasons.label(p.reasonName || 'NONE'),
          location: this.locations.label(fn),
          protocol: this.protocols.label(p.protocol ? protocolName(p.protocol) : 'none'),
          origin: p.origin,
          ...this.netnsLabels(p.netns),
        },
        p.count,
      );
    }
    if (r.overflow.drops > 0) this.drops.inc({ reason: OTHER, location: OTHER, protocol: OTHER, origin: 'software', netns: '', pod: '', container: '' }, r.overflow.drops);
    for (const [cause, n] of r.lost) if (n > 0) this.lost.inc({ cause: this.causes.label(cause.replace(/\d+$/, '').trim() || cause) }, n);
  }

  /** netns, pod and container labels of a drop's namespace (inode); pod and container only for an admitted namespace. */
  private netnsLabels(inode: number | undefined): { netns: string; pod: string; container: string } {
    if (inode === undefined) return { netns: '', pod: '', container: '' };
    const info = this.attribution?.netns(inode);
    const netns = this.namespaces.label(info?.name ?? String(inode));
    if (netns === OTHER || !info?.container) return { netns, pod: '', container: '' };
    return { netns, ...podAndContainer(info.container) };
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Split the attribution's "k8s pod <uid> containerd <id>" / "docker <id>" into the pod and container labels. */
export function podAndContainer(attributed: string): { pod: string; container: string } {
  const k8s = /^k8s pod (\S+)(?: (.+))?$/.exec(attributed);
  return k8s ? { pod: k8s[1], container: k8s[2] ?? '' } : { pod: '', container: attributed };
}
