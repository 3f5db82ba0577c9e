/** `dropmon report` as text for a terminal: aligned tables, compact time series. */
import { niceDuration } from './recording.js';
import type { RecordingReport } from './report.js';
import { findingWhere } from '../outputs/diagnosis.js';
import { terminalSafe } from '../core/terminal-safe.js';

/** Rows of the reasons-over-time table at most: adjacent buckets are merged to fit. */
const MAX_TIME_ROWS = 15;

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    '  ' +
    r
      .map((c, i) => (i === r.length - 1 && !rightAligned.has(i) ? c : rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
/** "2026-11-25 20:30:05Z" */
const when = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');
/** "20:30:05" (the day is in the header) */
const clock = (iso: string) => iso.slice(11, 19);

export function formatReportText(r: RecordingReport): string {
  const out: string[] = [];
  const rec = r.recording;
  out.push(`dropmon report: ${r.file}`);
  out.push(`recorded on ${rec.hostname} (kernel ${rec.kernel_release}, dropmon ${rec.dropmon_version}, source ${rec.source})`);
  const sessions = rec.sessions.length > 1 ? `, ${rec.sessions.length} sessions` : '';
  out.push(`from ${when(r.range.first)} to ${when(r.range.last)} (${num(r.range.seconds)} s, ${r.totals.intervals} intervals${sessions})`);
  const t = r.totals;
  out.push(
    `${t.drops} drops (${num(t.drops_per_second)}/s), ${t.lost_events} events lost` +
      (t.intervals_unwritten ? `, ${t.intervals_unwritten} intervals not written (storage errors)` : '') +
      (t.packets_seen ? `, ${t.packets_seen} dropped packets seen (${t.packets_kept} summaries kept)` : ''),
  );

  out.push('', 'Top drop points');
  if (r.top_points.length === 0) out.push('  none');
  else {
    const rows = [['drops', 'share', 'reason', 'proto', 'location']];
    for (const p of r.top_points) {
      const where = p.trap ? `trap ${p.trap_group ? `${p.trap_group}/` : ''}${p.trap}` : p.symbol.startsWith('0x') ? p.location : `${p.symbol} (${p.location})`;
      const attr = [p.ifindex !== null ? `ifindex ${p.ifindex}` : '', p.netns !== null ? `netns ${p.netns}` : ''].filter(Boolean).join(' ');
      rows.push([String(p.count), pct(p.share), p.reason ?? '-', p.protocol ?? '-', `${where}${p.origin !== 'software' ? ` [${p.origin}]` : ''}${attr ? ` ${attr}` : ''}`]);
    }
    out.push(...table(rows, new Set([0, 1])));
    if (t.overflow_drops) out.push(`  ${t.overflow_drops} drops at other locations (past the per-interval bound of drop points)`);
  }

  out.push('', 'Reasons');
  if (r.reasons.length === 0) out.push('  none');
  else out.push(...table([['drops', 'share', 'reason'], ...r.reasons.map((x) => [String(x.count), pct(x.share), x.reason])], new Set([0, 1])));

  const series = r.reasons_over_time;
  if (series.buckets.length > 1 && series.series.length > 0) {
    // Merge adjacent buckets to fit the terminal, by a factor that keeps the period round.
    const fits = (g: number) => series.buckets.length / g <= MAX_TIME_ROWS;
    const ms = series.bucket_seconds * 1000;
    const group =
      [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60].find((g) => fits(g) && niceDuration(ms * g) === ms * g) ?? Math.ceil(series.buckets.length / MAX_TIME_ROWS);
    out.push('', `Reasons over time (drops per ${num(series.bucket_seconds * group)} s)`);
    const rows = [['time', 'total', ...series.series]];
    for (let i = 0; i < series.buckets.length; i += group) {
      const part = series.buckets.slice(i, i + group);
      const counts = series.series.map((_, k) => part.reduce((s, b) => s + b.counts[k], 0));
      rows.push([clock(part[0].start), String(part.reduce((s, b) => s + b.total, 0)), ...counts.map(String)]);
    }
    out.push(...table(rows, new Set(rows[0].map((_, i) => i).filter((i) => i > 0))));
  }

  out.push('', 'Counters that moved');
  if (r.counters.length === 0) out.push('  none recorded');
  else
    out.push(
      ...table(
        [
          ['delta', 'max/s', 'layer', 'counter', ...(r.counters.some((c) => c.meaning) ? ['meaning'] : [])],
          ...r.counters.map((c) => [
            `${c.delta > 0 ? '+' : ''}${num(c.delta)}`,
            num(c.max_rate),
            c.layer,
            `${c.name}${c.scope ? ` @ ${c.scope}` : ''}${c.class === 'related' ? ' (related)' : c.class === 'info' ? ' (traffic)' : ''}`,
            ...(r.counters.some((x) => x.meaning) ? [c.meaning ?? ''] : []),
          ]),
        ],
        new Set([0, 1]),
      ),
    );

  out.push('', 'Lost events');
  if (r.losses.total === 0) out.push('  none');
  else out.push(...table([['lost', 'intervals', 'cause'], ...r.losses.by_cause.map((l) => [String(l.lost), String(l.intervals), l.cause])], new Set([0, 1])));

  if (r.packets.length) {
    out.push('', `Dropped packets (first ${r.packets.length})`);
    for (const p of r.packets) {
      const ep = (a: string | null, port: number | null) => (a === null ? '?' : port === null ? a : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
      const flow = p.src ? ` ${p.l4 ?? ''} ${ep(p.src, p.sport)} > ${ep(p.dst, p.dport)}` : '';
      out.push(`  ${p.time ? clock(p.time) : '-'} ${p.reason ?? '-'} at ${p.symbol ?? '?'}${p.ifname ? ` dev ${p.ifname}` : p.ifindex !== null ? ` dev ${p.ifindex}` : ''}${p.orig_len !== null ? ` len ${p.orig_len}` : ''}${p.protocol ? ` ${p.protocol}` : ''}${flow}`);
    }
  }

  out.push('', 'Diagnosis');
  if (r.diagnosis === null) out.push('  not available (no diagnosis engine or knowledge base)');
  else if (r.diagnosis.findings.length === 0) out.push('  nothing to diagnose');
  else
    for (const f of r.diagnosis.findings) {
      out.push(`  ${f.rank}. ${f.cause.replace(/\.$/, '')} (${f.packets} packets${f.benign !== 'no' ? `, ${f.benign} benign` : ''}${f.blindSpot ? ', seen only in counters' : ''})`);
      const where = findingWhere(f);
      if (where) out.push(`       where: ${where}`);
      for (const e of f.evidence) out.push(`       evidence: ${e}`);
      for (const c of f.check) out.push(`       check: ${c}`);
      for (const x of f.fix) out.push(`       fix: ${x}`);
    }
  return terminalSafe(out.join('\n') + '\n');
}
