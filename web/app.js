/* global window, document, fetch, EventSource, sessionStorage, console, CSS, URLSearchParams */
// dropmon dashboard: plain browser JavaScript, no build step, no dependencies.
//
// Data flow: the first paint comes from GET /api/v1/intervals (the service's
// latest intervals in memory), /status, /config, /counters and /series (the
// chart's history from the recording); after that everything live arrives on
// the Server-Sent Events stream /api/v1/events (`interval`, `state`).
// The API is documented in docs/api.md.

const API = '/api/v1';
const TOKEN_KEY = 'dropmon-token';
/** How long a drop point stays in the "top drop points" table after its last drop. */
const POINTS_WINDOW_MS = 5 * 60_000;
/** A drop point first seen this recently is highlighted as new. */
const NEW_MS = 15_000;
const MAX_ROWS = 25;
const MAX_COUNTERS = 15;
/** Counters that moved this recently stay listed (greyed after the interval they moved in). */
const COUNTERS_WINDOW_MS = 60_000;
/** Live intervals kept in memory (for the table and the chart's newest part). */
const MAX_INTERVALS = 7200;
const CHART_BUCKETS = 60;
const STATUS_POLL_MS = 5_000;
/** The diagnosis table: the causes of the last minutes, asked of the service this often. */
const DIAGNOSIS_WINDOW_MIN = 5;
const DIAGNOSIS_POLL_MS = 15_000;
const DIAGNOSIS_ROWS = 10;
/** Colours of the chart's reasons: readable on both the light and the dark background. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1', '#edc948', '#76b7b2', '#ff9da7', '#9c755f', '#8cd17d', '#bab0ac', '#d37295'];

const $ = (id) => document.getElementById(id);

/**
 * A token handed over in the address's fragment (`dropmon serve --print-url`:
 * http://127.0.0.1:9947/#token=...): kept in this tab's sessionStorage and
 * removed from the address bar and the history at once. Browsers never send
 * a fragment to the server.
 */
function tokenFromFragment() {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return '';
  const token = new URLSearchParams(hash).get('token');
  if (token === null) return '';
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  const t = token.trim();
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  return t;
}

const state = {
  token: tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY) || '',
  /** Normalized intervals, oldest first; `receivedAt` is this browser's clock. */
  intervals: [],
  /** Intervals received before this browser time are left out of the table (set when filters change). */
  pointsFrom: 0,
  /** Point key -> browser time it was first seen. */
  firstSeen: new Map(),
  /** Reason name -> one-line explanation, for points the service sent without one. */
  summaries: new Map(),
  summaryRequested: new Set(),
  reasonColors: new Map(),
  history: { bucketMs: 0, buckets: [], to: 0 },
  rangeMinutes: 15,
  status: null,
  lastInterval: null,
  /** Moved counters from GET /counters, shown until the first interval arrives. */
  initialMoved: [],
  events: null,
  reconnectMs: 1000,
  tokenPrompt: null,
  /** The service's filters as last seen (JSON), to notice a change in a `state` event. */
  filtersKey: undefined,
  /** The stream was open before: a reopen reloads the chart's history (intervals may have been missed). */
  streamWasOpen: false,
};

// ---------------------------------------------------------------- utilities

function toMs(v) {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

function num(v, fallback = 0) {
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

function fmtCount(n) {
  return Math.round(n).toLocaleString('en');
}

function fmtRate(r) {
  if (r === 0) return '0/s';
  if (r < 10) return `${r.toFixed(1)}/s`;
  return `${fmtCount(r)}/s`;
}

/** Short numbers for the chart's axis: 1.5k, 2M. */
function fmtAxis(n) {
  if (n >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return fmtCount(n);
}

function fmtBytes(b) {
  if (!Number.isFinite(b)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b < 10 && i > 0 ? b.toFixed(1) : Math.round(b)} ${units[i]}`;
}

function fmtTime(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
}

function splitList(text) {
  return text.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
}

// ---------------------------------------------------------------- the API, with the bearer token

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Ask for the token once at a time; every request that got a 401 waits for the same answer. */
function askToken(rejected) {
  if (state.tokenPrompt) return state.tokenPrompt;
  const dialog = $('token-dialog');
  const input = $('token-input');
  input.value = '';
  dialog.querySelector('p').textContent = rejected
    ? 'The token was not accepted. Enter the bearer token of this dropmon service.'
    : 'This dropmon service requires a bearer token (as root on its host, dropmon serve --print-url gives an address with it). It is kept in this browser tab only.';
  state.tokenPrompt = new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener('close', done);
      state.tokenPrompt = null;
      const token = input.value.trim();
      if (token) {
        state.token = token;
        sessionStorage.setItem(TOKEN_KEY, token);
      }
      resolve(Boolean(token));
    };
    dialog.addEventListener('close', done);
    dialog.showModal();
  });
  return state.tokenPrompt;
}

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null; // an HTML error page of a proxy, say: the status code tells what happened
  }
}

async function api(path, options = {}, retried = false) {
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(API + path, {
    method: options.method || 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (res.status === 401 && !retried) {
    if (await askToken(Boolean(state.token))) return api(path, options, true);
  }
  const text = await res.text();
  const body = parseJson(text);
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

// ---------------------------------------------------------------- the API's JSON, as the page uses it
// Shapes: docs/api.md. Times are ms since the epoch (ISO strings are accepted too).

function normalizePoint(p) {
  const reason = p.reason || '';
  const protocol = p.protocol || '';
  const location = p.location || '';
  return {
    key: `${location || p.symbol}|${reason}|${protocol}|${p.origin}|${p.trap ?? ''}|${p.netns ?? ''}|${p.ifindex ?? ''}`,
    reason,
    protocol,
    location,
    symbol: p.symbol || p.function || location || '?',
    count: num(p.count),
    summary: p.summary || '',
    benign: p.benign || 'no',
    netns: p.netns ?? null,
    netnsName: p.netnsName || p.netns_name || '',
    container: p.container || '',
    ifindex: p.ifindex || null,
    ifname: p.ifname || '',
  };
}

/** How the tables name a namespace: "host/init" for the initial one, else its name or inode; "–" when the source cannot tell. */
function netnsLabel(netns, name) {
  if (name === 'init') return 'host/init';
  if (name) return name;
  return netns ? String(netns) : '–';
}

/** A namespace cell: its name, and the container living in it on a line of its own. */
function netnsCell(label, netns, name, container, gone) {
  const title = netns ? `network namespace inode ${netns}` : 'the source does not tell the namespace';
  return el(
    'td',
    { 'data-label': label, class: 'netns', title },
    netnsLabel(netns, name),
    container ? el('span', { class: 'container', text: container }) : null,
    gone ? el('span', { class: 'container', text: `gone at ${fmtTime(toMs(gone))}` }) : null,
  );
}

function normalizeCounter(c) {
  return { name: String(c.name ?? ''), scope: String(c.scope ?? ''), delta: num(c.delta), rate: num(c.rate), meaning: c.meaning || '' };
}

function normalizeInterval(raw, receivedAt = Date.now()) {
  const endMs = toMs(raw.end) ?? Date.now();
  const points = (Array.isArray(raw.points) ? raw.points : []).map(normalizePoint);
  return {
    seq: raw.seq,
    endMs,
    durationMs: num(raw.durationMs, 0) || Math.max(1, endMs - (toMs(raw.start) ?? endMs - 1000)),
    receivedAt,
    drops: num(raw.drops, points.reduce((a, p) => a + p.count, 0)),
    lost: num(raw.lost),
    lostByCause: raw.lostByCause ?? {},
    points,
    overflowDrops: num(raw.overflow?.drops),
    counters: (Array.isArray(raw.counters) ? raw.counters : []).map(normalizeCounter),
    /** Counter key (name@scope) -> why no drop event stands behind its move (correlation.blindSpots). */
    blindSpots: new Map((raw.correlation?.blindSpots ?? []).map((b) => [counterKey({ name: b.counter, scope: b.scope ?? '' }), String(b.why ?? '')])),
  };
}

function counterKey(c) {
  return c.scope ? `${c.name}@${c.scope}` : c.name;
}

/** GET /series: drops by reason per bucket (from the recording), or an empty history. */
function normalizeSeries(raw, to) {
  if (!raw || !Array.isArray(raw.buckets)) return { bucketMs: 0, buckets: [], to };
  return {
    bucketMs: num(raw.bucketMs),
    to,
    buckets: raw.buckets.map((b) => ({ startMs: toMs(b.start) ?? 0, endMs: toMs(b.end), byReason: b.reasons ?? {} })),
  };
}

// ---------------------------------------------------------------- live intervals

function addInterval(iv) {
  state.intervals.push(iv);
  const keepMs = Math.max(POINTS_WINDOW_MS, state.rangeMinutes * 60_000);
  const cutoff = Date.now() - keepMs;
  let drop = 0;
  while (drop < state.intervals.length && state.intervals[drop].receivedAt < cutoff) drop++;
  if (state.intervals.length - drop > MAX_INTERVALS) drop = state.intervals.length - MAX_INTERVALS;
  if (drop > 0) state.intervals.splice(0, drop);
  for (const p of iv.points) {
    if (!state.firstSeen.has(p.key)) state.firstSeen.set(p.key, iv.receivedAt);
    if (p.summary && p.reason) state.summaries.set(p.reason, p.summary);
  }
  state.lastInterval = iv;
}

function onInterval(raw) {
  const iv = normalizeInterval(raw);
  addInterval(iv);
  renderPoints();
  renderChart();
  renderCounters();
  renderLost();
  $('t-last').textContent = fmtCount(iv.drops);
}

// ---------------------------------------------------------------- top drop points

function topPoints() {
  const now = Date.now();
  const from = Math.max(state.pointsFrom, now - POINTS_WINDOW_MS);
  let latest = state.intervals[state.intervals.length - 1];
  // No interval for a while (monitoring stopped, connection lost): nothing drops "now".
  if (latest && now - latest.receivedAt > 2 * latest.durationMs + 1000) latest = undefined;
  const byKey = new Map();
  for (const iv of state.intervals) {
    if (iv.receivedAt < from) continue;
    for (const p of iv.points) {
      let agg = byKey.get(p.key);
      if (!agg) byKey.set(p.key, (agg = { ...p, count: 0, rate: 0, lastMs: 0 }));
      agg.count += p.count;
      agg.lastMs = iv.receivedAt;
      if (p.summary) agg.summary = p.summary;
      if (iv === latest) agg.rate = (p.count * 1000) / iv.durationMs;
    }
  }
  return [...byKey.values()].sort((a, b) => b.rate - a.rate || b.count - a.count || a.key.localeCompare(b.key));
}

/** A kernel symbol with line-break opportunities after its separators: func.part+0xoff/0xsize. */
function breakableSymbol(symbol) {
  return symbol.split(/(?<=[+/.])/).flatMap((piece) => [piece, el('wbr')]);
}

function benignBadge(benign) {
  if (benign !== 'usually' && benign !== 'sometimes') return null;
  const text = benign === 'usually' ? 'usually benign' : 'sometimes benign';
  return el('span', { class: 'badge', title: `This reason is ${text}: see its explanation`, text });
}

function renderPoints() {
  const body = $('points-body');
  const focusedKey = document.activeElement?.closest?.('tr')?.dataset.key;
  const points = topPoints().slice(0, MAX_ROWS);
  const now = Date.now();
  const rows = points.map((p) => {
    const firstSeen = state.firstSeen.get(p.key) ?? now;
    const summary = p.summary || state.summaries.get(p.reason) || '';
    if (!summary && p.reason) requestSummary(p.reason);
    const reasonLabel = p.reason || '(no reason)';
    const reasonCell = p.reason
      ? el('button', { type: 'button', class: 'linklike', 'aria-label': `Explain ${p.reason}`, onclick: () => explain(p.reason) }, reasonLabel)
      : el('span', { text: reasonLabel });
    return el(
      'tr',
      {
        'data-key': p.key,
        'data-reason': p.reason,
        'data-first-seen': firstSeen,
        class: [now - firstSeen < NEW_MS ? 'new' : '', p.rate === 0 ? 'idle' : ''].join(' ').trim() || undefined,
      },
      el('td', { 'data-label': 'Reason' }, reasonCell, benignBadge(p.benign)),
      el('td', { 'data-label': 'Location', class: 'sym', title: p.location || undefined }, ...breakableSymbol(p.symbol)),
      netnsCell('Namespace', p.netns, p.netnsName, p.container),
      el('td', { 'data-label': 'Interface', class: 'dev', text: p.ifname || (p.ifindex ? `ifindex ${p.ifindex}` : '–') }),
      el('td', { 'data-label': 'Protocol', text: p.protocol || '–' }),
      el('td', { 'data-label': 'Count', class: 'num', text: fmtCount(p.count) }),
      el('td', { 'data-label': 'Rate', class: 'num', text: fmtRate(p.rate) }),
      el('td', { 'data-label': 'Explanation', class: 'summary', text: summary }),
    );
  });
  body.replaceChildren(...rows);
  $('points-empty').hidden = rows.length > 0;
  if (focusedKey) body.querySelector(`tr[data-key="${CSS.escape(focusedKey)}"] button`)?.focus();
  const names = $('reason-names');
  const seen = new Set([...names.options].map((o) => o.value));
  for (const p of points) if (p.reason && !seen.has(p.reason)) names.append(el('option', { value: p.reason }));
}

// ---------------------------------------------------------------- likely causes (GET /diagnosis)

function interfacesText(list) {
  if (!Array.isArray(list) || list.length === 0) return '–';
  return list.map((i) => i.name || (i.ifindex ? `ifindex ${i.ifindex}` : '?')).join(', ');
}

function renderDiagnosis(res) {
  const findings = (Array.isArray(res?.findings) ? res.findings : []).slice(0, DIAGNOSIS_ROWS);
  const rows = findings.map((f) => {
    const name = String(f.key ?? '');
    const explainable = name && !name.startsWith('at ') && !name.startsWith('trap:');
    const keyCell = explainable
      ? el('button', { type: 'button', class: 'linklike', 'aria-label': `Explain ${name}`, onclick: () => explain(name) }, name)
      : el('span', { text: name });
    const evidence = [...(Array.isArray(f.sockets) ? f.sockets : []), ...(Array.isArray(f.evidence) ? f.evidence.slice(0, 3) : [])];
    const fix = Array.isArray(f.fix) ? f.fix.slice(0, 2) : [];
    return el(
      'tr',
      { 'data-key': name, 'data-netns': f.netns ?? '', class: f.benign === 'usually' ? 'idle' : undefined },
      el('td', { 'data-label': '#', class: 'num', text: String(f.rank ?? '') }),
      el('td', { 'data-label': 'Cause' }, keyCell, benignBadge(f.benign), f.blind_spot ? el('span', { class: 'badge warn', title: 'seen only in counters: the tracer cannot see these drops', text: 'no drop event' }) : null, el('span', { class: 'meaning', text: f.cause || '' })),
      netnsCell('Namespace', f.netns, f.netns_name, f.container, f.gone),
      el('td', { 'data-label': 'Interface', class: 'dev', text: interfacesText(f.interfaces) }),
      el('td', { 'data-label': 'Packets', class: 'num', text: fmtCount(num(f.packets)) }),
      el('td', { 'data-label': 'Evidence' }, evidence.length ? el('ul', {}, ...evidence.map((x) => el('li', { text: x }))) : '–'),
      el('td', { 'data-label': 'Fix' }, fix.length ? el('ul', {}, ...fix.map((x) => el('li', { text: x }))) : '–'),
    );
  });
  $('diagnosis-body').replaceChildren(...rows);
  $('diagnosis-empty').hidden = rows.length > 0;
}

async function loadDiagnosis() {
  try {
    renderDiagnosis(await api(`/diagnosis?from=-${DIAGNOSIS_WINDOW_MIN}m`));
  } catch (e) {
    if (e.status !== 404) console.warn('diagnosis:', e.message);
  }
}

/** Fill in a reason's one-line explanation when the service sent points without one. */
async function requestSummary(reason) {
  if (state.summaryRequested.has(reason)) return;
  state.summaryRequested.add(reason);
  try {
    const entry = pickEntry(await api(`/explain/${encodeURIComponent(reason)}`)).entry;
    if (entry?.summary) {
      state.summaries.set(reason, entry.summary);
      renderPoints();
    }
  } catch {
    /* no explanation: the cell stays empty */
  }
}

// ---------------------------------------------------------------- chart: drops by reason, stacked

function reasonColor(reason) {
  let c = state.reasonColors.get(reason);
  if (!c) {
    c = PALETTE[state.reasonColors.size % PALETTE.length];
    state.reasonColors.set(reason, c);
  }
  return c;
}

/** Buckets of the visible range: the recording's history, then the live intervals received after it. */
function chartBuckets() {
  const rangeMs = state.rangeMinutes * 60_000;
  const bucketMs = Math.max(state.history.bucketMs || 0, Math.ceil(rangeMs / CHART_BUCKETS / 1000) * 1000);
  const end = Math.ceil(Date.now() / bucketMs) * bucketMs;
  const start = end - Math.ceil(rangeMs / bucketMs) * bucketMs;
  const n = Math.round((end - start) / bucketMs);
  const buckets = Array.from({ length: n }, (_, i) => ({ startMs: start + i * bucketMs, byReason: new Map(), total: 0 }));
  const add = (t, reason, count) => {
    const i = Math.floor((t - start) / bucketMs);
    if (i < 0 || i >= n || !(count > 0)) return;
    const b = buckets[i];
    b.byReason.set(reason, (b.byReason.get(reason) ?? 0) + count);
    b.total += count;
  };
  for (const h of state.history.buckets) {
    const mid = h.endMs !== undefined ? (h.startMs + h.endMs) / 2 : h.startMs;
    for (const [reason, count] of Object.entries(h.byReason)) add(mid, reason || '(no reason)', num(count));
  }
  for (const iv of state.intervals) {
    if (iv.endMs <= state.history.to) continue;
    for (const p of iv.points) add(iv.endMs - 1, p.reason || '(no reason)', p.count);
    if (iv.overflowDrops > 0) add(iv.endMs - 1, '(other locations)', iv.overflowDrops);
  }
  return { buckets, bucketMs, start, end };
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function bucketLabel(ms) {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

function renderChart() {
  const box = $('chart');
  const { buckets, bucketMs, start, end } = chartBuckets();
  const totals = new Map();
  for (const b of buckets) for (const [r, c] of b.byReason) totals.set(r, (totals.get(r) ?? 0) + c);
  const reasons = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  const W = Math.max(280, box.clientWidth || 600);
  const H = 220;
  const left = 48, right = 8, top = 10, bottom = 22;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.total)));
  const barW = plotW / buckets.length;
  const summary = total
    ? `Drops by reason over the last ${state.rangeMinutes} minutes, per ${bucketLabel(bucketMs)}: ` +
      reasons.slice(0, 6).map((r) => `${r} ${fmtCount(totals.get(r))}`).join(', ')
    : `No drops in the last ${state.rangeMinutes} minutes`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, preserveAspectRatio: 'none' });
  for (let k = 0; k <= 2; k++) {
    const y = top + plotH - (plotH * k) / 2;
    root.append(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'axis' }));
    const label = svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' });
    label.textContent = fmtAxis((max * k) / 2);
    root.append(label);
  }
  const order = [...reasons].reverse(); // the largest reason at the bottom of each stack
  buckets.forEach((b, i) => {
    let y = top + plotH;
    for (const r of order) {
      const c = b.byReason.get(r);
      if (!c) continue;
      const h = Math.max(1, (c / max) * plotH);
      y -= h;
      const rect = svg('rect', {
        x: (left + i * barW + 0.5).toFixed(1),
        y: y.toFixed(1),
        width: Math.max(1, barW - 1).toFixed(1),
        height: h.toFixed(1),
        fill: reasonColor(r),
        'data-reason': r,
      });
      const title = svg('title');
      title.textContent = `${r}: ${fmtCount(c)} drops, ${fmtTime(b.startMs)}`;
      rect.append(title);
      root.append(rect);
    }
  });
  for (const [x, t, anchor] of [[left, start, 'start'], [W - right, end, 'end']]) {
    const label = svg('text', { x, y: H - 6, 'text-anchor': anchor });
    label.textContent = t === end ? 'now' : fmtTime(t);
    root.append(label);
  }
  box.replaceChildren(root);
  box.dataset.total = String(total);
  const legend = $('legend');
  legend.replaceChildren(
    ...reasons.map((r) =>
      el(
        'li',
        {},
        el('span', { class: 'swatch', style: `background:${reasonColor(r)}`, 'aria-hidden': 'true' }),
        r.startsWith('(')
          ? el('span', { text: r })
          : el('button', { type: 'button', class: 'linklike', 'aria-label': `Explain ${r}`, onclick: () => explain(r) }, r),
        ` ${fmtCount(totals.get(r))}`,
      ),
    ),
  );
}

async function loadSeries() {
  const to = Date.now();
  const from = to - state.rangeMinutes * 60_000;
  try {
    state.history = normalizeSeries(await api(`/series?from=${from}&to=${to}&buckets=${CHART_BUCKETS}`), to);
  } catch (e) {
    // No recording (or an old service): the chart shows the live intervals only.
    state.history = { bucketMs: 0, buckets: [], to: 0 };
    if (e.status !== 404) console.warn('series:', e.message);
  }
  renderChart();
}

// ---------------------------------------------------------------- counters that moved

/**
 * Counters that moved in the last interval, then (greyed) those that moved earlier in the
 * last minute: a one-off burst would otherwise flash by in a second.
 */
function renderCounters() {
  const latest = state.intervals[state.intervals.length - 1];
  const from = Date.now() - COUNTERS_WINDOW_MS;
  const byKey = new Map();
  const sources = state.intervals.length ? state.intervals.filter((iv) => iv.receivedAt >= from) : [{ counters: state.initialMoved, receivedAt: Date.now() }];
  for (const iv of sources) {
    for (const c of iv.counters) {
      if (c.delta === 0) continue;
      const key = counterKey(c);
      let agg = byKey.get(key);
      if (!agg) byKey.set(key, (agg = { ...c, delta: 0, lastAt: 0, fresh: false, blindSpot: '' }));
      if (iv.blindSpots?.has(key)) agg.blindSpot = iv.blindSpots.get(key) || 'no drop event stands behind this counter';
      agg.delta += c.delta;
      agg.rate = c.rate;
      agg.lastAt = iv.receivedAt;
      if (c.meaning) agg.meaning = c.meaning;
      agg.fresh = agg.fresh || iv === latest || !state.intervals.length;
    }
  }
  const shown = [...byKey.values()]
    .sort((a, b) => Number(b.fresh) - Number(a.fresh) || Math.abs(b.delta) - Math.abs(a.delta))
    .slice(0, MAX_COUNTERS);
  $('counters').replaceChildren(
    ...shown.map((c) =>
      el(
        'li',
        { 'data-counter': c.name, 'data-scope': c.scope, class: c.fresh ? undefined : 'earlier' },
        el('span', { class: 'delta', text: `${c.delta > 0 ? '+' : ''}${fmtCount(c.delta)}` }),
        el('button', { type: 'button', class: 'linklike', 'aria-label': `Explain ${c.name}`, onclick: () => explain(c.name) }, c.name),
        c.scope ? el('span', { class: 'scope', text: c.scope }) : null,
        c.fresh
          ? c.rate ? el('span', { class: 'scope', text: `(${fmtRate(c.rate)})` }) : null
          : el('span', { class: 'scope', text: `(${Math.max(1, Math.round((Date.now() - c.lastAt) / 1000))} s ago)` }),
        c.blindSpot ? el('span', { class: 'badge warn', title: c.blindSpot, text: 'no drop event' }) : null,
        c.meaning ? el('span', { class: 'meaning', text: c.meaning }) : null,
        c.blindSpot ? el('span', { class: 'meaning', text: `Blind spot: ${c.blindSpot}` }) : null,
      ),
    ),
  );
  $('counters-empty').hidden = shown.length > 0;
}

async function loadCounters() {
  try {
    const res = await api('/counters');
    const moved = Array.isArray(res?.moved) ? res.moved : [];
    state.initialMoved = moved.map(normalizeCounter);
    renderCounters();
  } catch (e) {
    if (e.status !== 404) console.warn('counters:', e.message);
  }
}

// ---------------------------------------------------------------- lost events, status, start/stop

function renderLost() {
  const box = $('lost');
  const last = state.lastInterval;
  const total = num(state.status?.lost);
  const parts = [];
  if (last && last.lost > 0) {
    const causes = Object.entries(last.lostByCause).map(([c, n]) => `${c}: ${fmtCount(num(n))}`).join(', ');
    parts.push(`${fmtCount(last.lost)} events lost in the last interval${causes ? ` (${causes})` : ''}.`);
  }
  if (total > 0) parts.push(`${fmtCount(total)} lost since start.`);
  if (parts.length) parts.push('Drop counts are lower than what the kernel dropped.');
  box.textContent = parts.length ? `⚠ ${parts.join(' ')}` : '';
  box.hidden = parts.length === 0;
}

function renderState(s) {
  const badge = $('state');
  const running = s === 'running';
  badge.textContent = s ? (running ? 'running' : s) : 'state unknown';
  badge.dataset.state = s || 'unknown';
  badge.className = `state state-${running ? 'running' : s === 'stopped' ? 'stopped' : 'unknown'}`;
  $('start').disabled = running;
  $('stop').disabled = s === 'stopped';
}

function renderStatus(st) {
  state.status = st;
  renderState(st.state);
  const host = [st.hostname, st.kernel && `Linux ${st.kernel}`, st.version && `dropmon ${st.version}`].filter(Boolean).join(' · ');
  $('host').textContent = host || 'dropmon service';
  $('t-drops').textContent = fmtCount(num(st.drops));
  $('t-lost').textContent = fmtCount(num(st.lost));
  $('t-intervals').textContent = fmtCount(num(st.intervals));
  $('t-source').textContent = [st.source, st.mode].filter(Boolean).join(', ') || '–';
  const rec = st.recording;
  const recording = $('t-recording');
  recording.textContent = rec && rec.file ? [fmtBytes(num(rec.bytes, NaN)), rec.file.split('/').pop()].filter(Boolean).join(', ') : 'off';
  recording.title = rec?.file ?? '';
  renderLost();
}

async function loadStatus() {
  try {
    renderStatus(await api('/status'));
  } catch (e) {
    showError(`Cannot read the service status: ${e.message}`);
  }
}

async function control(action) {
  const buttons = [$('start'), $('stop')];
  for (const b of buttons) b.disabled = true;
  try {
    await api(`/${action}`, { method: 'POST' });
    showError('');
  } catch (e) {
    showError(`${action === 'start' ? 'Start' : 'Stop'} failed: ${e.message}`);
  }
  await loadStatus();
}

// ---------------------------------------------------------------- filters

function fillFilters(config) {
  const f = config?.filters ?? config ?? {};
  const list = (v) => (Array.isArray(v) ? v.join(', ') : typeof v === 'string' ? v : '');
  $('f-reason').value = list(f.reasons);
  $('f-protocol').value = list(f.protocols);
  $('f-location').value = list(f.locations);
}

async function loadConfig() {
  try {
    const config = await api('/config');
    fillFilters(config);
    state.filtersKey = JSON.stringify(config?.filters ?? null);
  } catch (e) {
    console.warn('config:', e.message);
  }
}

async function applyFilters(event) {
  event?.preventDefault();
  const filters = {
    reasons: splitList($('f-reason').value).map((r) => r.toUpperCase().replace(/^SKB_DROP_REASON_/, '')),
    protocols: splitList($('f-protocol').value).map((p) => p.toLowerCase()),
    locations: splitList($('f-location').value),
  };
  const status = $('f-status');
  status.textContent = 'Applying…';
  $('f-apply').disabled = true;
  try {
    const config = await api('/config', { method: 'PUT', body: { filters } });
    fillFilters(config?.config ?? config);
    // state.filtersKey is left to the `state` event that follows: the old monitoring's last
    // interval may still arrive before it, and that event resets the table once more.
    // Points counted before the restart were not filtered: start the table afresh.
    state.pointsFrom = Date.now();
    renderPoints();
    const active = Object.entries(filters).filter(([, v]) => v.length).map(([k, v]) => `${k} ${v.join(', ')}`);
    status.textContent = active.length ? `Showing only ${active.join('; ')}.` : 'No filters: showing all drops.';
    showError('');
  } catch (e) {
    status.textContent = `Not applied: ${e.message}`;
  } finally {
    $('f-apply').disabled = false;
  }
}

// ---------------------------------------------------------------- explanations

/** GET /explain/NAME: {exact, entry, hits} (docs/api.md). */
function pickEntry(res) {
  return { entry: res?.entry ?? null, hits: Array.isArray(res?.hits) ? res.hits : [], fuzzy: res?.exact === false };
}

/** "Label: a, b, c" with each name a button that explains it. */
function nameLinks(label, names) {
  const list = [...new Set(names.filter(Boolean))].slice(0, 8);
  if (!list.length) return null;
  return el('p', { class: 'hint' }, `${label}: `, ...list.flatMap((n, i) => [i ? ', ' : '', el('button', { type: 'button', class: 'linklike', onclick: () => explain(n) }, n)]));
}

function listSection(title, items, code = false) {
  const arr = Array.isArray(items) ? items : items ? [items] : [];
  if (!arr.length) return null;
  return el('section', {}, el('h3', { text: title }), el('ul', {}, ...arr.map((t) => el('li', {}, code ? el('code', { text: t }) : String(t)))));
}

async function explain(name) {
  const dialog = $('explain');
  const content = $('explain-content');
  $('explain-title').textContent = name;
  content.replaceChildren(el('p', { text: 'Loading…' }));
  if (!dialog.open) dialog.showModal();
  try {
    const { entry, hits, fuzzy } = pickEntry(await api(`/explain/${encodeURIComponent(name)}`));
    if (!entry) throw new ApiError(404, 'not found');
    $('explain-title').textContent = `${entry.name}${entry.kind ? ` (${entry.kind})` : ''}`;
    const benign = entry.benign || 'no';
    content.replaceChildren(
      ...[
        fuzzy ? el('p', { class: 'hint', text: `No exact entry for “${name}”; the closest one:` }) : null,
        entry.summary ? el('p', { class: 'summary', text: entry.summary }) : null,
        entry.meaning ? el('p', { text: entry.meaning }) : null,
        benign !== 'no'
          ? el('p', { class: 'benign', text: `${benign === 'usually' ? 'Usually' : 'Sometimes'} benign${entry.benignWhen ? `: ${entry.benignWhen}` : '.'}` })
          : null,
        listSection('Causes', entry.causes),
        listSection('Check', entry.check, true),
        listSection('Fix', entry.fix),
        nameLinks('Related counters', entry.related?.counters ?? entry.counters ?? []),
        nameLinks('Related reasons', entry.related?.reasons ?? entry.reasons ?? []),
        nameLinks(fuzzy ? 'Other matches' : 'See also', hits.map((h) => h.name)),
      ].filter(Boolean),
    );
  } catch (e) {
    content.replaceChildren(el('p', { text: e.status === 404 ? `No explanation of “${name}” in the knowledge base.` : `Cannot load the explanation: ${e.message}` }));
  }
}

// ---------------------------------------------------------------- the live stream

function setLive(on, text) {
  const live = $('live');
  live.textContent = text;
  live.classList.toggle('on', on);
}

function connect() {
  state.events?.close();
  const url = `${API}/events${state.token ? `?token=${encodeURIComponent(state.token)}` : ''}`;
  const es = new EventSource(url);
  state.events = es;
  let opened = false;
  es.addEventListener('open', () => {
    opened = true;
    state.reconnectMs = 1000;
    setLive(true, 'live');
    if (state.streamWasOpen) loadSeries();
    state.streamWasOpen = true;
  });
  es.addEventListener('interval', (e) => {
    try {
      onInterval(JSON.parse(e.data));
    } catch (err) {
      console.warn('bad interval event:', err);
    }
  });
  es.addEventListener('state', (e) => {
    try {
      const s = JSON.parse(e.data);
      renderState(s.state);
      if (s.config) {
        fillFilters(s.config);
        // New filters: the intervals after this event (same stream, in order) come from the
        // restarted, filtered monitoring; the table starts afresh from here.
        const filters = JSON.stringify(s.config.filters ?? null);
        if (state.filtersKey !== undefined && filters !== state.filtersKey) {
          state.pointsFrom = Date.now();
          renderPoints();
        }
        state.filtersKey = filters;
      }
    } catch (err) {
      console.warn('bad state event:', err);
    }
    loadStatus();
  });
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED) {
      setLive(false, 'reconnecting…');
      return;
    }
    // The browser gave up (an HTTP error such as 401): ask /status, which asks for a token if needed, then retry.
    setLive(false, opened ? 'disconnected' : 'offline');
    es.close();
    const wait = state.reconnectMs;
    state.reconnectMs = Math.min(30_000, state.reconnectMs * 2);
    window.setTimeout(async () => {
      await loadStatus();
      if (state.events === es) connect();
    }, wait);
  });
}

// ---------------------------------------------------------------- first paint

async function loadIntervals() {
  try {
    const res = await api('/intervals?limit=300');
    const list = Array.isArray(res?.intervals) ? res.intervals : [];
    // Place them on this browser's clock relative to the newest one, which just arrived.
    const now = Date.now();
    const newest = list.reduce((m, r) => Math.max(m, toMs(r.end) ?? 0), 0);
    for (const raw of list) {
      const iv = normalizeInterval(raw);
      iv.receivedAt = now - Math.max(0, newest - iv.endMs);
      addInterval(iv);
    }
    if (state.lastInterval) {
      renderCounters();
      $('t-last').textContent = fmtCount(state.lastInterval.drops);
    }
  } catch (e) {
    console.warn('intervals:', e.message);
  }
  renderPoints();
}

async function main() {
  $('start').addEventListener('click', () => control('start'));
  $('stop').addEventListener('click', () => control('stop'));
  $('filters').addEventListener('submit', applyFilters);
  $('f-clear').addEventListener('click', () => {
    fillFilters({});
    applyFilters();
  });
  $('range').addEventListener('change', (e) => {
    state.rangeMinutes = Number(e.target.value) || 15;
    loadSeries();
  });
  $('points-window').textContent = `last ${POINTS_WINDOW_MS / 60_000} minutes, live`;
  $('diagnosis-window').textContent = `last ${DIAGNOSIS_WINDOW_MIN} minutes`;
  state.rangeMinutes = Number($('range').value) || 15;
  window.addEventListener('resize', () => renderChart());
  renderChart();

  await loadStatus(); // asks for the token first if the service wants one
  await Promise.all([loadIntervals(), loadConfig(), loadCounters(), loadSeries(), loadDiagnosis()]);
  connect();
  window.setInterval(loadDiagnosis, DIAGNOSIS_POLL_MS);
  // Totals, recording size and the "new" highlights move without intervals too.
  window.setInterval(() => {
    loadStatus();
    renderPoints();
    renderCounters();
  }, STATUS_POLL_MS);
}

main();
