/**
 * Alerts: rules on rates, evaluated at every interval, delivered as one line
 * on stdout (the journal, under systemd) and as JSON POSTs to webhooks.
 *
 * A rule measures one rate per interval, in events per second:
 *   reason     drops with that reason ("*": all drops)
 *   counter    a kernel counter's increase (name, or name@scope), summed over scopes
 *              and over network namespaces
 *   interface  drop counters of one interface of the service's own namespace
 *              (link:rx_dropped, qdisc:drops of "eth0 ...", ...) plus drop points
 *              attributed to it
 * and has hysteresis: it fires once the rate has stayed above `above` for
 * `for`, and resolves once it falls below `below`. An alert that keeps
 * flapping around one threshold would page someone on every interval.
 *
 * Delivery never blocks the pipeline: webhook notifications go into a bounded
 * queue (the oldest are dropped, and counted, when it is full), one request at
 * a time, retried with exponential backoff.
 */
import { hostname } from 'node:os';
import type { IntervalReport } from '../core/interval.js';
import type { KnowledgeView } from '../core/knowledge-view.js';
import type { AlertRule, WebhookConfig } from './config.js';
import { redactUrl } from './redact.js';
import { terminalSafe } from '../core/terminal-safe.js';

export type AlertStatus = 'firing' | 'resolved';

export interface AlertEvent {
  readonly status: AlertStatus;
  readonly rule: string;
  readonly kind: AlertRule['kind'];
  readonly match: string;
  /** The rate that decided it, per second. */
  readonly rate: number;
  /** The threshold crossed: `above` when firing, `below` when resolved. */
  readonly threshold: number;
  /** When the rate first went above the threshold (ms since the epoch). */
  readonly since: number;
  readonly at: number;
  readonly hostname: string;
}

interface RuleState {
  /** Start of the current run above `above`; undefined when not above. */
  aboveSince?: number;
  firing: boolean;
  firedAt?: number;
}

/** What an interval says about one rule: its rate per second. */
export function ruleRate(rule: AlertRule, r: IntervalReport, kb: Pick<KnowledgeView, 'counter'> | undefined, ifnames?: ReadonlyMap<number, string>): number {
  const seconds = Math.max(0.001, (r.end - r.start) / 1000);
  let n = 0;
  switch (rule.kind) {
    case 'reason': {
      if (rule.match === '*') return r.drops / seconds;
      const want = rule.match.toUpperCase().replace(/^SKB_DROP_REASON_/, '');
      for (const p of r.points) if (p.reasonName === want) n += p.count;
      return n / seconds;
    }
    case 'counter': {
      const at = rule.match.indexOf('@');
      const name = (at > 0 ? rule.match.slice(0, at) : rule.match).toLowerCase();
      const scope = at > 0 ? rule.match.slice(at + 1) : undefined;
      for (const c of r.counters ?? []) {
        if (c.gauge || c.name.toLowerCase() !== name) continue;
        if (scope !== undefined && c.scope !== scope) continue;
        n += c.delta;
      }
      return n / seconds;
    }
    case 'interface': {
      const dev = rule.match;
      for (const c of r.counters ?? []) {
        if (c.gauge || c.delta <= 0) continue;
        // The service's own namespace's interface: every container has an eth0 of its own.
        if (c.netns !== undefined) continue;
        if (c.scope !== dev && !c.scope.startsWith(`${dev} `)) continue;
        if (kb?.counter(c.name)?.drop) n += c.delta;
      }
      for (const p of r.points) if (p.ifindex !== undefined && ifnames?.get(p.ifindex) === dev) n += p.count;
      return n / seconds;
    }
  }
}

export interface Notifier {
  notify(e: AlertEvent): void;
}

/** Evaluates the rules at each interval and hands state changes to the notifiers. */
export class AlertEngine {
  private states = new Map<string, RuleState>();

  constructor(
    private rules: readonly AlertRule[],
    private readonly notifiers: readonly Notifier[],
    private readonly kb?: Pick<KnowledgeView, 'counter'>,
  ) {}

  /** New rules (reload): rules that keep their name keep their state. */
  setRules(rules: readonly AlertRule[]): void {
    const keep = new Map<string, RuleState>();
    for (const r of rules) {
      const s = this.states.get(r.name);
      if (s) keep.set(r.name, s);
    }
    this.states = keep;
    this.rules = rules;
  }

  /** Alerts firing now. */
  firing(): { rule: string; since: number }[] {
    return [...this.states].filter(([, s]) => s.firing).map(([rule, s]) => ({ rule, since: s.firedAt ?? 0 }));
  }

  evaluate(r: IntervalReport, ifnames?: ReadonlyMap<number, string>): AlertEvent[] {
    const events: AlertEvent[] = [];
    for (const rule of this.rules) {
      let s = this.states.get(rule.name);
      if (!s) this.states.set(rule.name, (s = { firing: false }));
      const rate = ruleRate(rule, r, this.kb, ifnames);
      const base = { rule: rule.name, kind: rule.kind, match: rule.match, rate: Math.round(rate * 1000) / 1000, at: r.end, hostname: hostname() };
      if (!s.firing) {
        if (rate > rule.above) {
          // The interval's start: the rate was above for the whole interval.
          s.aboveSince ??= r.start;
          if (r.end - s.aboveSince >= rule.forMs) {
            s.firing = true;
            s.firedAt = r.end;
            events.push({ ...base, status: 'firing', threshold: rule.above, since: s.aboveSince });
          }
        } else s.aboveSince = undefined;
      } else if (rate < rule.below) {
        events.push({ ...base, status: 'resolved', threshold: rule.below, since: s.aboveSince ?? r.start });
        s.firing = false;
        s.aboveSince = undefined;
        s.firedAt = undefined;
      }
    }
    for (const e of events) for (const n of this.notifiers) n.notify(e);
    return events;
  }
}

/** One line per alert, for stdout and the journal. */
export function alertLine(e: AlertEvent): string {
  const what = e.kind === 'reason' ? (e.match === '*' ? 'all drops' : `drops ${e.match}`) : e.kind === 'counter' ? `counter ${e.match}` : `drops on ${e.match}`;
  const cmp = e.status === 'firing' ? '>' : '<';
  const dur = e.status === 'firing' ? ` for ${Math.round((e.at - e.since) / 1000)} s` : '';
  return terminalSafe(`dropmon: alert ${e.status.toUpperCase()} ${e.rule}: ${what} at ${e.rate}/s ${cmp} ${e.threshold}/s${dur}`);
}

export class LogNotifier implements Notifier {
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}
  notify(e: AlertEvent): void {
    this.write(alertLine(e));
  }
}

export interface WebhookStats {
  readonly delivered: number;
  readonly failed: number;
  /** Dropped because the queue was full. */
  readonly dropped: number;
  readonly queued: number;
}

export interface WebhookOptions {
  /** Notifications waiting at most (default 100); the oldest go first. */
  readonly maxQueue?: number;
  /** Attempts per notification (default 5). */
  readonly attempts?: number;
  /** First retry delay; doubles each time (default 1000 ms, at most 60 s). */
  readonly backoffMs?: number;
  readonly warn?: (m: string) => void;
}

/**
 * POSTs each alert as JSON to one URL. A single request is in flight at a
 * time, so a dead receiver costs one pending timer, never a pile of sockets.
 */
export class WebhookNotifier implements Notifier {
  private readonly queue: AlertEvent[] = [];
  private busy = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private stats_ = { delivered: 0, failed: 0, dropped: 0 };
  private failingSince: number | undefined;

  constructor(
    readonly hook: WebhookConfig,
    private readonly opts: WebhookOptions = {},
  ) {}

  get stats(): WebhookStats {
    return { ...this.stats_, queued: this.queue.length };
  }

  notify(e: AlertEvent): void {
    if (this.closed) return;
    if (this.queue.length >= (this.opts.maxQueue ?? 100)) {
      this.queue.shift();
      this.stats_.dropped++;
    }
    this.queue.push(e);
    if (!this.busy) void this.pump();
  }

  /** Stop retrying; pending notifications are abandoned (reload, shutdown). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
  }

  /** Resolves when the queue is empty (tests, shutdown with a deadline). */
  async idle(timeoutMs = 5000): Promise<boolean> {
    const t0 = Date.now();
    while (this.busy || this.queue.length) {
      if (Date.now() - t0 > timeoutMs) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length && !this.closed) {
        const e = this.queue[0];
        const attempts = this.opts.attempts ?? 5;
        let ok = false;
        for (let i = 0; i < attempts && !this.closed; i++) {
          if (i > 0) await this.sleep(Math.min(60_000, (this.opts.backoffMs ?? 1000) * 2 ** (i - 1)));
          if (this.closed) break;
          const why = await this.post(e);
          if (why === undefined) {
            ok = true;
            break;
          }
          if (this.failingSince === undefined) {
            this.failingSince = Date.now();
            this.opts.warn?.(`webhook ${redactUrl(this.hook.url)}: ${why}; retrying with backoff`);
          }
        }
        if (this.queue[0] === e) this.queue.shift();
        if (ok) {
          this.stats_.delivered++;
          if (this.failingSince !== undefined) this.opts.warn?.(`webhook ${redactUrl(this.hook.url)}: delivering again`);
          this.failingSince = undefined;
        } else if (!this.closed) {
          this.stats_.failed++;
          this.opts.warn?.(`webhook ${redactUrl(this.hook.url)}: alert ${e.rule} ${e.status} not delivered after ${attempts} attempts`);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }

  /** One POST; undefined when the receiver accepted it (2xx), else why not. */
  private async post(e: AlertEvent): Promise<string | undefined> {
    try {
      const res = await fetch(this.hook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'dropmon', ...this.hook.headers },
        body: JSON.stringify({ ...e, at: new Date(e.at).toISOString(), since: new Date(e.since).toISOString(), summary: alertLine(e) }),
        signal: AbortSignal.timeout(this.hook.timeoutMs),
        redirect: 'error',
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      // fetch hides the reason (ECONNREFUSED, a port fetch refuses to use, ...) in its cause.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
      // The reason goes to the log: never with the URL's credentials in it.
      return why.replaceAll(this.hook.url, redactUrl(this.hook.url));
    }
  }
}

