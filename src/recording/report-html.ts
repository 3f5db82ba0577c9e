/**
 * `dropmon report --html`: one self-contained HTML file (inline CSS, inline
 * SVG charts drawn here, no script, no external reference) that can be
 * mailed or attached to a ticket and read on a phone.
 *
 * Charts are SVG with percentage x coordinates and pixel y coordinates, so
 * they stretch to any width while their text keeps a readable size.
 */
import type { RecordingReport } from './report.js';
import { NO_REASON_LABEL, OTHER_REASONS, OVERFLOW_REASON } from './report.js';
import { findingWhere } from '../outputs/diagnosis.js';

/** Distinct on white and for the common colour-vision deficiencies (Okabe-Ito, then a few more). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#882255', '#44AA99'];
const GREY: Record<string, string> = { [OTHER_REASONS]: '#9a9a9a', [OVERFLOW_REASON]: '#5f5f5f', [NO_REASON_LABEL]: '#bdbdbd' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
const e = escapeHtml;

function colorOf(labels: readonly string[]): (label: string) => string {
  const m = new Map<string, string>();
  let k = 0;
  for (const l of labels) m.set(l, GREY[l] ?? PALETTE[k++ % PALETTE.length]);
  return (l) => m.get(l) ?? '#777';
}

const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 }));
const when = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');
const clock = (iso: string) => iso.slice(11, 19);
/** SVG percentages with few digits. */
const p = (x: number) => `${Math.round(x * 1000) / 1000}%`;

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `v`. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

/** Stacked columns of drops per bucket by reason. */
function reasonsChart(r: RecordingReport, color: (l: string) => string): string {
  const s = r.reasons_over_time;
  if (s.buckets.length === 0) return '<p class="muted">No intervals in this range.</p>';
  const H = 200, TOP = 18, BOTTOM = 22;
  const max = niceMax(Math.max(...s.buckets.map((b) => b.total)));
  const n = s.buckets.length;
  const parts: string[] = [];
  const gridLabels: string[] = [];
  for (const f of [0.25, 0.5, 0.75, 1]) {
    const y = TOP + H - f * H;
    parts.push(`<line x1="0" x2="100%" y1="${y}" y2="${y}" class="grid"/>`);
    // Drawn after the columns, with a halo, so they stay readable over them.
    gridLabels.push(`<text x="2" y="${y - 3}" class="axis halo">${fmt(max * f)}</text>`);
  }
  s.buckets.forEach((b, k) => {
    let y = TOP + H;
    s.series.forEach((label, i) => {
      const c = b.counts[i];
      if (!c) return;
      const h = (c / max) * H;
      y -= h;
      parts.push(
        `<rect x="${p(((k + 0.08) / n) * 100)}" width="${p((0.84 / n) * 100)}" y="${y.toFixed(2)}" height="${Math.max(h, 0.5).toFixed(2)}" fill="${color(label)}"><title>${e(`${clock(b.start)}–${clock(b.end)} ${label}: ${fmt(c)} drops`)}</title></rect>`,
      );
    });
  });
  parts.push(`<line x1="0" x2="100%" y1="${TOP + H}" y2="${TOP + H}" class="base"/>`, ...gridLabels);
  const yLabel = TOP + H + 16;
  parts.push(`<text x="0" y="${yLabel}" class="axis">${e(clock(s.buckets[0].start))}</text>`);
  if (n > 2) parts.push(`<text x="50%" y="${yLabel}" class="axis" text-anchor="middle">${e(clock(s.buckets[Math.floor(n / 2)].start))}</text>`);
  parts.push(`<text x="100%" y="${yLabel}" class="axis" text-anchor="end">${e(clock(s.buckets[n - 1].end))}</text>`);
  const legend = s.series.map((l) => `<li><span class="swatch" style="background:${color(l)}"></span>${e(l)}</li>`).join('');
  return (
    `<svg class="chart" width="100%" height="${TOP + H + BOTTOM}" role="img" aria-label="Drops by reason over time, ${fmt(s.bucket_seconds)} s per column">${parts.join('')}</svg>` +
    `<ul class="legend">${legend}</ul><p class="muted">${fmt(s.bucket_seconds)} s per column (UTC); hover a column for its numbers.</p>`
  );
}

/** Horizontal bars of the top drop points. */
function pointsChart(r: RecordingReport, color: (l: string) => string): string {
  const pts = r.top_points;
  if (pts.length === 0) return '<p class="muted">No drops in this range.</p>';
  const ROW = 38;
  const max = pts[0].count;
  const rows = pts.map((pt, i) => {
    const y = i * ROW;
    const label = pt.trap ? `trap ${pt.trap}` : pt.symbol;
    const short = label.length > 56 ? `${label.slice(0, 55)}…` : label;
    const reason = pt.reason ?? NO_REASON_LABEL;
    return (
      `<text x="0" y="${y + 13}" class="label">${e(short)}</text>` +
      `<text x="100%" y="${y + 13}" class="label" text-anchor="end">${fmt(pt.count)}</text>` +
      `<rect x="0" y="${y + 18}" width="${p(Math.max((pt.count / max) * 100, 0.3))}" height="12" rx="2" fill="${color(reason)}"><title>${e(`${label} ${reason} ${pt.protocol ?? ''}: ${fmt(pt.count)} drops (${pct(pt.share)})`)}</title></rect>`
    );
  });
  return `<svg class="chart" width="100%" height="${pts.length * ROW}" role="img" aria-label="Top drop points by drops">${rows.join('')}</svg>`;
}

function htmlTable(head: readonly string[], rows: readonly (readonly string[])[], numeric: ReadonlySet<number>): string {
  const th = head.map((h, i) => `<th${numeric.has(i) ? ' class="num"' : ''}>${e(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.has(i) ? ' class="num"' : ''}>${e(c)}</td>`).join('')}</tr>`).join('');
  return `<div class="scroll"><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`;
}

const CSS = `
:root{color-scheme:light;--fg:#1d1d1f;--muted:#666;--line:#e3e3e3;--bg:#fff;--card:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1000px;margin:0 auto;padding:16px}
h1{font-size:1.4em;margin:.2em 0}
h2{font-size:1.1em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
.muted{color:var(--muted);font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px;margin:12px 0}
.card{background:var(--card);border-radius:8px;padding:8px 12px}
.card b{display:block;font-size:1.3em}
.chart{display:block;overflow:visible}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .base{stroke:#999;stroke-width:1}
.chart .axis{font-size:11px;fill:var(--muted)}
.chart .halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.chart .label{font-size:12px;fill:var(--fg);font-family:ui-monospace,Menlo,Consolas,monospace}
.legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.9em}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
td:last-child{white-space:normal;overflow-wrap:anywhere}
.num{text-align:right;white-space:nowrap;width:1%}
.finding{background:var(--card);border-radius:8px;padding:8px 12px;margin:8px 0}
.finding ul{margin:.3em 0;padding-left:1.2em}
.finding .where{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;margin:.3em 0;overflow-wrap:anywhere}
footer{margin:2em 0 1em;color:var(--muted);font-size:.8em}
`;

export function formatReportHtml(r: RecordingReport): string {
  const rec = r.recording;
  const t = r.totals;
  const color = colorOf(r.reasons_over_time.series);
  const card = (label: string, value: string) => `<div class="card">${e(label)}<b>${e(value)}</b></div>`;
  const sections: string[] = [];

  sections.push(`<h2>Drops by reason over time</h2>${reasonsChart(r, color)}`);

  const pointRows = r.top_points.map((pt) => [
    fmt(pt.count),
    pct(pt.share),
    pt.reason ?? '-',
    pt.protocol ?? '-',
    (pt.trap ? `trap ${pt.trap_group ? `${pt.trap_group}/` : ''}${pt.trap}` : pt.symbol.startsWith('0x') ? pt.location : `${pt.symbol} (${pt.location})`) +
      (pt.origin !== 'software' ? ` [${pt.origin}]` : '') +
      (pt.ifindex !== null ? ` ifindex ${pt.ifindex}` : '') +
      (pt.netns !== null ? ` netns ${pt.netns}` : ''),
  ]);
  sections.push(
    `<h2>Top drop points</h2>${pointsChart(r, color)}` +
      (pointRows.length ? htmlTable(['drops', 'share', 'reason', 'proto', 'location'], pointRows, new Set([0, 1])) : '') +
      (t.overflow_drops ? `<p class="muted">${fmt(t.overflow_drops)} drops at other locations (past the per-interval bound of drop points).</p>` : ''),
  );

  if (r.reasons.length)
    sections.push(
      `<h2>Reasons</h2>${htmlTable(['drops', 'share', 'reason'], r.reasons.map((x) => [fmt(x.count), pct(x.share), x.reason]), new Set([0, 1]))}`,
    );

  sections.push(
    '<h2>Counters that moved</h2>' +
      (r.counters.length
        ? htmlTable(
            ['delta', 'max/s', 'layer', 'counter'],
            r.counters.map((c) => [
              `${c.delta > 0 ? '+' : ''}${fmt(c.delta)}`,
              fmt(c.max_rate),
              c.layer,
              `${c.name}${c.scope ? ` @ ${c.scope}` : ''}${c.class === 'related' ? ' (related)' : c.class === 'info' ? ' (traffic)' : ''}${c.meaning ? ` — ${c.meaning}` : ''}`,
            ]),
            new Set([0, 1]),
          )
        : '<p class="muted">None recorded.</p>'),
  );

  sections.push(
    '<h2>Lost events</h2>' +
      (r.losses.total
        ? htmlTable(['lost', 'intervals', 'cause'], r.losses.by_cause.map((l) => [fmt(l.lost), fmt(l.intervals), l.cause]), new Set([0, 1]))
        : '<p class="muted">None: every drop event reached dropmon.</p>'),
  );

  if (r.packets.length)
    sections.push(
      `<h2>Dropped packets (first ${r.packets.length})</h2>` +
        htmlTable(
          ['time', 'reason', 'location', 'dev', 'len', 'flow'],
          r.packets.map((k) => [
            k.time ? clock(k.time) : '-',
            k.reason ?? '-',
            k.symbol ?? '-',
            k.ifname ?? (k.ifindex !== null ? String(k.ifindex) : '-'),
            k.orig_len !== null ? String(k.orig_len) : '-',
            k.src ? `${k.l4 ?? k.protocol ?? ''} ${k.src}${k.sport !== null ? `:${k.sport}` : ''} > ${k.dst ?? '?'}${k.dport !== null ? `:${k.dport}` : ''}` : (k.protocol ?? '-'),
          ]),
          new Set([4]),
        ),
    );

  let diag: string;
  if (r.diagnosis === null) diag = '<p class="muted">Not available (no diagnosis engine or knowledge base).</p>';
  else if (r.diagnosis.findings.length === 0) diag = '<p class="muted">Nothing to diagnose.</p>';
  else
    diag = r.diagnosis.findings
      .map((f) => {
        const list = (title: string, xs: readonly string[]) => (xs.length ? `<div>${e(title)}<ul>${xs.map((x) => `<li>${e(x)}</li>`).join('')}</ul></div>` : '');
        const tags = [f.benign !== 'no' ? `${f.benign} benign${f.benignWhen ? `: ${f.benignWhen}` : ''}` : '', f.blindSpot ? 'seen only in counters' : ''].filter(Boolean).join('; ');
        const where = findingWhere(f);
        return `<div class="finding"><b>${f.rank}. ${e(f.cause)}</b> <span class="muted">${fmt(f.packets)} packets${tags ? `; ${e(tags)}` : ''}</span>${where ? `<div class="where">${e(where)}</div>` : ''}${list('Evidence', f.evidence)}${list('Check', f.check)}${list('Fix', f.fix)}</div>`;
      })
      .join('');
  sections.push(`<h2>Diagnosis</h2>${diag}`);

  const sessions = rec.sessions.length > 1 ? `, ${rec.sessions.length} sessions` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(`dropmon report: ${rec.hostname} ${when(r.range.first)}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>Packet drops on ${e(rec.hostname)}</h1>
<p class="muted">${e(`${when(r.range.first)} to ${when(r.range.last)} · kernel ${rec.kernel_release} · source ${rec.source} · dropmon ${rec.dropmon_version}${sessions}`)}</p>
<div class="cards">${card('drops', fmt(t.drops))}${card('drops per second', fmt(t.drops_per_second))}${card('events lost', fmt(t.lost_events))}${card('intervals', fmt(t.intervals))}${t.intervals_unwritten ? card('intervals not written', fmt(t.intervals_unwritten)) : ''}</div>
${sections.join('\n')}
<footer>${e(`Generated ${when(r.generated_at)} by dropmon from ${r.file}.`)}</footer>
</main>
</body>
</html>
`;
}
