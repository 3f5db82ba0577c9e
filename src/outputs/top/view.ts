/**
 * What `dropmon top` shows, as frames of styled lines for the diffing
 * screen: the table view (header, drop points, counters that moved, keys),
 * a row's explanation and evidence, and the help. Pure functions of the
 * model and the view's state, so a frame can be checked on fixed input.
 */
import type { KnowledgeBase } from '../../knowledge/base.js';
import type { KnowledgeEntry } from '../../knowledge/entry.js';
import type { LiveOrigin } from '../../core/live.js';
import type { Row, TopModel } from './model.js';
import { BOLD, CYAN, DIM, GREEN, REVERSE, RED, YELLOW, printable, type Line, type Segment } from './screen.js';
import { clock, fit, shortCount, shortRate, sparkline, wrap } from './format.js';

/** What the explanation needs of the knowledge base. */
export type Explainer = Pick<KnowledgeBase, 'explainReason' | 'symbol' | 'trap'>;

export interface TableState {
  readonly model: TopModel;
  readonly origin: LiveOrigin;
  readonly rows: readonly Row[];
  /** Key of the selected row. */
  readonly selected: string | undefined;
  /** Index of the first row shown. */
  readonly scroll: number;
  /** The filter being typed after '/'; undefined when not typing. */
  readonly editing: string | undefined;
  /** A warning or the remote connection's state, on the settings line. */
  readonly status: string;
  readonly unicode: boolean;
}

export interface Layout {
  readonly bodyTop: number;
  readonly bodyHeight: number;
}

interface Columns {
  reason: number;
  fn: number;
  netns: number;
  iface: number;
  proto: number;
  rate: number;
  spark: number;
  total: number;
}

const seg = (text: string, style = 0): Segment => ({ text, style });

/** Column widths for a terminal `w` wide; 80 columns is the design width. */
export function columns(w: number): Columns {
  const c: Columns = { reason: 15, fn: 17, netns: 9, iface: 6, proto: 4, rate: 7, spark: 8, total: 7 };
  let extra = w - 80;
  if (extra > 0) {
    const spark = Math.min(Math.floor(extra * 0.2), 52);
    c.spark += spark;
    const reason = Math.min(Math.floor(extra * 0.15), 15);
    c.reason += reason;
    const netns = Math.min(Math.floor(extra * 0.2), 30);
    c.netns += netns;
    const iface = Math.min(Math.floor(extra * 0.1), 10);
    c.iface += iface;
    const proto = Math.min(extra - spark - reason - netns - iface, 2);
    c.proto += proto;
    c.fn += extra - spark - reason - netns - iface - proto;
  } else {
    // Narrower than 80: give up the sparkline, then the protocol, then shrink names.
    for (const k of ['spark', 'proto', 'fn', 'reason', 'netns', 'iface'] as const) {
      const min = k === 'fn' || k === 'reason' ? 8 : k === 'netns' ? 4 : 0;
      const take = Math.min(-extra, c[k] - min);
      c[k] -= take;
      extra += take;
      if (extra >= 0) break;
    }
  }
  return c;
}

function counterPanelHeight(model: TopModel, h: number): number {
  if (model.counters === undefined) return 0;
  const n = model.counters.length;
  return 1 + Math.min(Math.max(n, 1), Math.max(2, Math.floor((h - 6) / 3)));
}

export function tableLayout(model: TopModel, h: number): Layout {
  const bodyTop = 4;
  return { bodyTop, bodyHeight: Math.max(1, h - bodyTop - 1 - counterPanelHeight(model, h)) };
}

export function tableFrame(s: TableState, w: number, h: number): Line[] {
  const m = s.model;
  const o = s.origin;
  const lines: Line[] = [];
  // A remote is named by host:port when it is plain http at the root (the common case), else by its URL.
  const remote = o.remote?.replace(/^http:\/\/([^/]+)\/$/, '$1');
  lines.push([
    seg('dropmon top', BOLD),
    seg(`  host ${printable(o.host) || '?'}${remote ? ` via ${printable(remote)}` : ''}  kernel ${printable(o.kernel) || '?'}  source ${printable(o.source) || '?'}`),
  ]);
  const rateNow = m.lastSeconds > 0 ? m.lastDrops / m.lastSeconds : 0;
  const figures: Segment[] = [
    seg('drops/s '),
    seg(shortRate(rateNow), BOLD | (rateNow > 0 ? RED : 0)),
    seg('  total '),
    seg(shortCount(m.totalDrops), BOLD),
    seg('  lost '),
    seg(shortCount(m.totalLost), m.totalLost > 0 ? BOLD | YELLOW : 0),
    seg('  netns with drops '),
    seg(String(m.activeNamespaces()), BOLD),
    seg(`  points ${m.points.size}`),
  ];
  if (m.lastOverflow.drops > 0) figures.push(seg(`  +${shortCount(m.lastOverflow.drops)} over --max-points`, YELLOW));
  lines.push(figures);
  const settings: Segment[] = [
    seg(`every ${o.intervalMs / 1000} s  sort ${m.sort}  group ${m.group}  benign ${m.hideBenign ? 'hidden' : 'dimmed'}`),
    ...(m.filter ? [seg('  filter '), seg(printable(m.filter), BOLD)] : []),
    ...(m.paused ? [seg('  PAUSED', BOLD | REVERSE), seg(m.waitingIntervals ? ` ${m.waitingIntervals} waiting` : '')] : []),
    ...(s.status ? [seg('  '), seg(printable(s.status), YELLOW)] : []),
  ];
  lines.push(settings);
  const c = columns(w);
  const head =
    [
      fit(' REASON', c.reason),
      fit('FUNCTION', c.fn),
      fit('NETNS', c.netns),
      fit('IFACE', c.iface),
      fit('PROTO', c.proto).replace(/^PRO~$/, 'PROT'),
      fit('RATE/s', c.rate, true),
      fit(c.spark >= 11 ? 'LAST MINUTE' : 'LAST MIN', c.spark),
      fit('TOTAL', c.total, true),
    ]
      .filter((x) => x.length > 0)
      .join(' ');
  lines.push([seg(fit(head, w), REVERSE)]);
  const { bodyHeight } = tableLayout(m, h);
  const rows = s.rows;
  if (rows.length === 0) {
    lines.push([seg(m.points.size ? '  (no drop point matches: / to change the filter, b for benign drops)' : '  no drops yet', DIM)]);
    for (let i = 1; i < bodyHeight; i++) lines.push([]);
  }
  for (let i = 0; i < bodyHeight && rows.length; i++) {
    const r = rows[s.scroll + i];
    if (!r) {
      lines.push([]);
      continue;
    }
    const netns = r.container ? `${r.netns} ${r.container}` : r.netns;
    const text = [
      fit(printable(r.reason || '-'), c.reason - 1),
      fit(printable(r.function), c.fn),
      fit(printable(netns || '-'), c.netns),
      fit(printable(r.ifname || '-'), c.iface),
      fit(printable(r.protocol || '-'), c.proto),
      fit(r.active ? shortRate(r.rate) : '-', c.rate, true),
      fit(sparkline(r.spark, c.spark, s.unicode), c.spark),
      fit(shortCount(r.total), c.total, true),
    ]
      .filter((x) => x.length > 0)
      .join(' ');
    // Idle and usually-benign rows are dimmed; benign ones also marked '~' (monochrome terminals lose no meaning).
    const style = (r.key === s.selected ? REVERSE : 0) | (r.benign || !r.active ? DIM : 0);
    lines.push([seg(fit((r.benign ? '~' : ' ') + text, w), style)]);
  }
  // Counters that moved, blind spots first.
  const ph = counterPanelHeight(m, h);
  if (ph > 0) {
    const moved = m.counters ?? [];
    lines.push([seg(fit(`COUNTERS MOVED in the last interval (${moved.length})${moved.some((x) => x.blindSpot) ? '   ! = blind spot: drops no drop event shows' : ''}`, w), BOLD | CYAN)]);
    if (moved.length === 0) lines.push([seg('  none', DIM)]);
    const room = ph - 1;
    for (let i = 0; i < Math.min(room, moved.length); i++) {
      const k = moved[i];
      if (i === room - 1 && moved.length > room) {
        lines.push([seg(`  … ${moved.length - i} more`, DIM)]);
        break;
      }
      const left = `${k.blindSpot ? '!' : ' '} ${fit('+' + shortCount(k.delta), 8, true)} ${fit(shortRate(k.rate) + '/s', 8, true)}  ${printable(k.name)}${k.scope ? ` ${printable(k.scope)}` : ''}`;
      const why = k.blindSpot ? `blind spot: ${k.blindSpot}` : k.meaning;
      lines.push([seg(left, k.blindSpot ? BOLD | YELLOW : k.class === 'drop' ? 0 : DIM), seg(fit(`  ${printable(why)}`, Math.max(0, w - left.length)), DIM)]);
    }
  }
  while (lines.length < h - 1) lines.push([]);
  lines.length = h - 1;
  lines.push(
    s.editing !== undefined
      ? [seg('/ filter: ', BOLD), seg(printable(s.editing)), seg(' ', REVERSE), seg('   Enter apply  Esc cancel', DIM)]
      : footer(w - 1),
  );
  return lines;
}

const KEYS: readonly [string, string][] = [['q', 'quit'], ['?', 'help'], ['Enter', 'explain'], ['s', 'sort'], ['g', 'group'], ['/', 'filter'], ['b', 'benign'], ['p', 'pause'], ['c', 'clear']];

/** The key line: keys bold, what they do dim; one space apart below 100 columns. */
function footer(w: number): Line {
  const gap = w >= 100 ? '  ' : ' ';
  const out: Segment[] = [];
  let used = 0;
  for (const [k, what] of KEYS) {
    const len = k.length + 1 + what.length + (out.length ? gap.length : 0);
    if (used + len > w) break;
    out.push(seg(`${out.length ? gap : ''}${k}`, BOLD), seg(` ${what}`, DIM));
    used += len;
  }
  return out;
}

function entryLines(title: string, e: KnowledgeEntry, w: number): Line[] {
  const out: Line[] = [[seg(title, BOLD | CYAN)], ...wrap(e.summary, w - 2, 2).map((l) => [seg('  ' + l.trimStart())] as Line)];
  const para = (label: string, text: string | undefined) => {
    if (!text) return;
    wrap(`${label}: ${text}`, w - 2, 4).forEach((l, i) => out.push([seg((i ? '' : '  ') + l, i ? 0 : 0)]));
  };
  const list = (label: string, items: readonly string[], style = 0) => {
    if (!items.length) return;
    out.push([seg(`  ${label}:`, BOLD)]);
    for (const it of items) wrap(`- ${it}`, w - 4, 6).forEach((l, i) => out.push([seg((i ? '' : '    ') + l, style)]));
  };
  para('Meaning', e.meaning);
  if (e.benign !== 'no') para(`Benign (${e.benign})`, e.benignWhen);
  list('Causes', e.causes);
  list('Check', e.check, GREEN);
  list('Fix', e.fix, GREEN);
  return out;
}

/** A row's explanation (knowledge base) and evidence (its points, counters, history). */
export function detailLines(row: Row, model: TopModel, kb: Explainer | undefined, w: number, unicode: boolean): Line[] {
  const out: Line[] = [];
  const title = `${row.reason || '(no reason)'} at ${row.function}`;
  out.push([seg(printable(title), BOLD)]);
  out.push([]);
  const reasons = [...new Set(row.members.map((m) => m.point.reason).filter(Boolean))];
  const functions = [...new Set(row.members.map((m) => m.point.function))];
  for (const r of reasons.slice(0, 3)) {
    // A reason newer than the knowledge base gets its honest generic entry (the summary says so).
    const e = kb?.explainReason(r, functions[0]);
    if (e) out.push(...entryLines(`Reason ${r}`, e, w), []);
  }
  for (const f of functions.slice(0, 3)) {
    const e = kb?.symbol(f) ?? kb?.trap(f);
    if (e) out.push(...entryLines(`Function ${f}`, e, w), []);
  }
  if (!reasons.length && !functions.some((f) => kb?.symbol(f)))
    out.push([seg('This kernel gives no drop reason here; the function tells where the packet was freed.', DIM)], []);
  out.push([seg('Evidence', BOLD | CYAN)]);
  const first = Math.min(...row.members.map((m) => m.firstSeen));
  const last = Math.max(...row.members.map((m) => m.lastSeen));
  out.push([seg(`  ${row.active ? `${shortRate(row.rate)} drops/s now` : 'no drops in the last interval'}, ${shortCount(row.total)} in all; first seen ${clock(first)}, last ${clock(last)}`)]);
  out.push([seg('  last minute '), seg(`[${sparkline(row.spark, Math.min(60, w - 16), unicode)}]`, RED)]);
  out.push([seg(`  drop points (${row.members.length}):`)]);
  const members = [...row.members].sort((a, b) => b.total - a.total);
  for (const m of members.slice(0, 20)) {
    const p = m.point;
    const where = [p.protocol, p.ifname && `dev ${p.ifname}`, p.netns && `netns ${p.netns}`, p.container && `(${p.container})`].filter(Boolean).join(' ');
    out.push([seg(`    ${fit(shortCount(m.total), 7, true)}  ${printable(p.symbol)}${p.location ? ` (${p.location})` : ''} [${p.origin}] ${printable(p.reason)} ${printable(where)}`)]);
    if (p.stack) for (const f of p.stack.slice(0, 12)) out.push([seg(`             ${printable(f)}`, DIM)]);
  }
  if (members.length > 20) out.push([seg(`    … ${members.length - 20} more`, DIM)]);
  // Counters tied to these reasons by the correlation of the latest interval, and their totals.
  const tied = new Set<string>();
  for (const g of model.correlated ?? []) if (g.reasons.some((r) => reasons.includes(r))) for (const c of g.counters) tied.add(c);
  const counters = [...tied].map((k) => ({ k, e: model.counterTotals.get(k) }));
  if (counters.length) {
    out.push([seg('  counters that moved with them (last interval; since start):')]);
    for (const { k, e } of counters) out.push([seg(`    ${printable(k)} +${shortCount(e?.counter.delta ?? 0)}; +${shortCount(e?.total ?? 0)}${e?.counter.meaning ? `  ${printable(e.counter.meaning)}` : ''}`)]);
  } else if (model.counters !== undefined) out.push([seg('  no kernel counter moved with them in the last interval', DIM)]);
  return out;
}

export const HELP_LINES: readonly string[] = [
  'dropmon top: every drop on the host, live',
  '',
  '  Up Down PgUp PgDn Home End   select a row',
  '  Enter         explain the selected row: meaning, what to check, what to',
  '                change (knowledge base), and its evidence',
  '  s             sort by rate now, total, name (cycles)',
  '  g             group by drop point, reason, function, namespace,',
  '                interface (cycles)',
  '  /             filter: rows whose reason, function, namespace, container,',
  '                interface or protocol contains the text (empty: all)',
  '  b             usually-benign drops (marked ~): dimmed or hidden',
  '  p             pause: the screen holds still; intervals wait, none is lost',
  '  c             clear totals and history',
  '  ?             this help',
  '  q, Ctrl-C     quit',
  '',
  'Columns: RATE/s is the last interval; LAST MINUTE one cell per few',
  'intervals, scaled to the row; TOTAL since the start or the last clear.',
  'Counters moved: the kernel counters that moved in the last interval;',
  '! marks a blind spot (drops that no drop event shows, e.g. NIC overruns).',
];

/** A scrolled page of `content` with a title bar and a key line. */
export function pageFrame(title: string, content: readonly Line[], scroll: number, w: number, h: number): Line[] {
  const lines: Line[] = [[seg(fit(title, w), REVERSE)]];
  const room = Math.max(1, h - 2);
  const top = Math.max(0, Math.min(scroll, Math.max(0, content.length - room)));
  for (let i = 0; i < room; i++) lines.push(content[top + i] ?? []);
  const more = content.length > top + room ? `  (${content.length - top - room} more lines: Down, PgDn)` : '';
  lines.push([seg(fit(`Esc back  Up Down PgUp PgDn scroll  q quit${more}`, w - 1), DIM)]);
  return lines;
}
