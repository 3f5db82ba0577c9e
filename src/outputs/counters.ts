/**
 * Counter output for `dropmon counters`: a table grouped by layer (NIC first,
 * neighbour last, the order a packet meets them on the way in), each counter
 * with its meaning; and, for --watch, what moved in each interval.
 */
import { COUNTER_LAYERS, type CounterDelta, type CounterLayer, type CounterReading } from '../core/counter.js';
import type { KnowledgeView } from '../core/knowledge-view.js';
import { counterMeaning, type CounterClass } from '../core/counter-meaning.js';
import { terminalSafe } from '../core/terminal-safe.js';

const LAYER_TITLES: Record<CounterLayer, string> = {
  nic: 'NIC and link',
  driver: 'driver queues (ethtool -S)',
  softnet: 'softnet (per-CPU receive backlog)',
  qdisc: 'qdisc (traffic control)',
  ip: 'IP',
  tcp: 'TCP',
  udp: 'UDP',
  socket: 'sockets',
  netfilter: 'netfilter and conntrack',
  neighbour: 'neighbour (ARP/NDISC)',
};

export interface ShownCounter extends CounterReading {
  readonly class: CounterClass;
  readonly meaning: string;
}

/** The readings to show: non-zero drop and related counters, or everything with `all`. */
export function selectCounters(readings: readonly CounterReading[], kb: KnowledgeView, all: boolean): ShownCounter[] {
  const out: ShownCounter[] = [];
  for (const r of readings) {
    const m = counterMeaning(r, kb);
    if (!all && (r.value === 0 || m.class === 'info' || r.gauge)) continue;
    out.push({ ...r, class: m.class, meaning: m.meaning });
  }
  return sortByLayer(out);
}

function sortByLayer<T extends { layer: CounterLayer; name: string; scope: string }>(xs: T[]): T[] {
  const order = new Map(COUNTER_LAYERS.map((l, i) => [l, i]));
  return xs.sort((a, b) => (order.get(a.layer) ?? 99) - (order.get(b.layer) ?? 99) || a.name.localeCompare(b.name) || a.scope.localeCompare(b.scope, undefined, { numeric: true }));
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function padLeft(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** The `dropmon counters` table. */
export function formatCounterTable(shown: readonly ShownCounter[]): string {
  if (shown.length === 0) return 'no drop counter is above zero\n';
  const nameW = Math.min(36, Math.max(...shown.map((c) => c.name.length)));
  const scopeW = Math.min(28, Math.max(4, ...shown.map((c) => c.scope.length)));
  const valW = Math.max(...shown.map((c) => String(c.value).length));
  let out = '';
  let layer: CounterLayer | undefined;
  for (const c of shown) {
    if (c.layer !== layer) {
      layer = c.layer;
      out += `${out ? '\n' : ''}${LAYER_TITLES[c.layer]}\n`;
    }
    const mark = c.class === 'drop' ? '' : c.class === 'related' ? ' (related)' : '';
    const meaning = c.meaning || (c.class === 'drop' ? 'driver or kernel counter with a drop-like name' : '');
    out += `  ${pad(c.name, nameW)}  ${pad(c.scope, scopeW)}  ${padLeft(String(c.value), valW)}  ${meaning}${mark}${c.detail ? ` [${c.detail}]` : ''}\n`;
  }
  return terminalSafe(out);
}

export function counterTableJson(shown: readonly ShownCounter[], errors: readonly string[], netns?: string): Record<string, unknown> {
  return {
    type: 'counters',
    ...(netns ? { netns } : {}),
    counters: shown.map((c) => ({
      name: c.name,
      scope: c.scope,
      layer: c.layer,
      value: c.value,
      class: c.class,
      meaning: c.meaning,
      source: c.source,
      ...(c.gauge ? { gauge: true } : {}),
      ...(c.detail ? { detail: c.detail } : {}),
    })),
    errors,
  };
}

/** Deltas worth printing: drop and related counters, or every one with `all`. */
export function selectDeltas(deltas: readonly CounterDelta[], kb: KnowledgeView, all: boolean): (CounterDelta & { class: CounterClass; meaning: string })[] {
  const out: (CounterDelta & { class: CounterClass; meaning: string })[] = [];
  for (const d of deltas) {
    const m = counterMeaning(d, kb);
    if (!all && (m.class === 'info' || d.gauge)) continue;
    out.push({ ...d, class: m.class, meaning: m.meaning });
  }
  return sortByLayer(out);
}

function rate(r: number): string {
  return r >= 100 ? `${Math.round(r)}/s` : `${r.toFixed(1)}/s`;
}

/** One --watch interval: "+delta rate name scope meaning" lines. */
export function formatDeltas(at: number, seconds: number, shown: readonly (CounterDelta & { meaning: string })[]): string {
  const time = new Date(at).toISOString().slice(11, 19);
  if (shown.length === 0) return `${time} (${seconds.toFixed(1)} s): no drop counter moved\n`;
  const nameW = Math.min(36, Math.max(...shown.map((c) => c.name.length)));
  const scopeW = Math.min(28, Math.max(...shown.map((c) => c.scope.length)));
  const dW = Math.max(...shown.map((c) => String(c.delta).length + 1));
  let out = `${time} (${seconds.toFixed(1)} s)\n`;
  for (const c of shown) {
    const sign = c.delta >= 0 ? '+' : '';
    out += `  ${padLeft(sign + String(c.delta), dW)} ${padLeft(rate(c.rate), 9)}  ${pad(c.name, nameW)}  ${pad(c.scope, scopeW)}  ${c.meaning}${c.reset ? ' (counter was reset)' : ''}${c.detail ? ` [${c.detail}]` : ''}\n`;
  }
  return terminalSafe(out);
}

export function deltasJson(at: number, seconds: number, shown: readonly (CounterDelta & { class: CounterClass; meaning: string })[]): Record<string, unknown> {
  return {
    type: 'counter-interval',
    time: new Date(at).toISOString(),
    seconds: Number(seconds.toFixed(3)),
    moved: shown.map((c) => ({
      name: c.name,
      scope: c.scope,
      layer: c.layer,
      delta: c.delta,
      rate: Number(c.rate.toFixed(3)),
      value: c.value,
      class: c.class,
      meaning: c.meaning,
      ...(c.reset ? { reset: true } : {}),
      ...(c.detail ? { detail: c.detail } : {}),
    })),
  };
}
