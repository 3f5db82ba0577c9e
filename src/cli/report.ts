/**
 * `dropmon report FILE`: analyse a recording afterwards, as text, JSON or a
 * self-contained HTML page. Reads the file only.
 */
import { writeFileSync } from 'node:fs';
import { DropmonError, UsageError } from '../core/errors.js';
import * as units from '../core/units.js';
import { openRecording, type TimeRange } from '../recording/recording.js';
import { buildReport, type CounterClassifier, type DiagnoseFn } from '../recording/report.js';
import { formatReportText } from '../recording/report-text.js';
import { formatReportHtml } from '../recording/report-html.js';
import { counterClassifier } from '../knowledge/views.js';
import { recordingDiagnosis } from '../recording/diagnosis.js';
import { loadKnowledge } from '../knowledge/load.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import { parseCount, parseCommandArgs } from './args.js';

export const REPORT_HELP = `Usage: dropmon report FILE [--json | --html] [-o OUT] [--from T] [--to T] [--top N]

Analyse a recording made by 'dropmon record' (or the service): top drop
points, reasons over time, counters that moved, lost events, and the
diagnosis.

      --json              the report as one JSON object (shape: see README)
      --html              a self-contained HTML page with charts (no scripts,
                          nothing loaded from the network)
  -o, --output OUT        write to OUT instead of standard output
      --from T, --to T    only intervals that ended after --from and by
                          --to. T is an ISO 8601 time (2026-11-25T20:30:00Z;
                          without a zone: local time), Unix seconds
                          (@1795638502), or relative to the recording: +10m
                          after its start, -10m before its end (units s, m,
                          h, d; write --to=-10m, as a value cannot start
                          with - after a space)
      --top N             drop points listed (default 10)
      --buckets N         columns of the reasons-over-time series (default 60)
      --all-counters      list traffic counters that moved too (default: the
                          drop counters, then the related errors)
`;

/**
 * Parse a --from/--to value (units.ts's time grammar); `start`/`end` are the
 * recording's bounds, for offsets. Digits alone are refused: seconds or
 * milliseconds, a recording from 1970 would be a silent surprise.
 */
export function parseTime(flag: string, v: string, start: number | null, end: number | null): number {
  const t = units.parseTimeSpec(v);
  if (t?.kind === 'absolute') return t.ms;
  if (t?.kind === 'offset') {
    const base = t.sign === '+' ? start : end;
    if (base === null) throw new DropmonError(`${flag} ${v}: the recording has no intervals to be relative to`);
    return t.sign === '+' ? base + t.ms : base - t.ms;
  }
  throw new UsageError(`${flag} takes an ISO 8601 time, @UNIXSECONDS, +OFFSET or -OFFSET (like +10m), not ${JSON.stringify(v)}`, "see 'dropmon report --help'");
}

export interface ReportRequest {
  readonly file: string;
  readonly format: 'text' | 'json' | 'html';
  /** --from and --to as given (see parseTime). */
  readonly from?: string;
  readonly to?: string;
  readonly top?: number;
  readonly buckets?: number;
  readonly allCounters?: boolean;
  readonly diagnose?: DiagnoseFn;
  readonly classifyCounter?: CounterClassifier;
}

/**
 * The report of a recording file, rendered. Everything in it comes from the
 * file, which may be damaged or not written by dropmon: whatever goes wrong
 * ends as one DropmonError naming the file.
 */
export function renderReport(req: ReportRequest): string {
  const rec = openRecording(req.file);
  try {
    const whole = rec.totals();
    const range: TimeRange = {
      ...(req.from !== undefined ? { from: parseTime('--from', req.from, whole.firstMs, whole.lastMs) } : {}),
      ...(req.to !== undefined ? { to: parseTime('--to', req.to, whole.firstMs, whole.lastMs) } : {}),
    };
    if (range.from !== undefined && range.to !== undefined && range.from > range.to) throw new UsageError('--from is after --to');
    const report = buildReport(rec, {
      range,
      ...(req.top !== undefined ? { top: req.top } : {}),
      ...(req.buckets !== undefined ? { buckets: req.buckets } : {}),
      allCounters: req.allCounters ?? false,
      ...(req.diagnose ? { diagnose: req.diagnose } : {}),
      ...(req.classifyCounter ? { classifyCounter: req.classifyCounter } : {}),
    });
    return req.format === 'json' ? JSON.stringify(report, null, 2) + '\n' : req.format === 'html' ? formatReportHtml(report) : formatReportText(report);
  } catch (err) {
    if (err instanceof DropmonError) throw err;
    throw new DropmonError(`${req.file}: cannot report on this recording: ${err instanceof Error ? err.message : String(err)}`, 'the file may be damaged, or not written by dropmon');
  } finally {
    rec.close();
  }
}

export interface ReportHooks {
  /** The diagnosis engine; default: core/diagnosis.ts with the knowledge base (none if it cannot be loaded). */
  readonly diagnose?: DiagnoseFn;
}

/** The knowledge base, or undefined with a warning: a report without it still has all the numbers. */
function knowledge(): KnowledgeBase | undefined {
  try {
    return loadKnowledge();
  } catch (err) {
    process.stderr.write(`dropmon: warning: no knowledge base (${(err as Error).message}): no diagnosis, counters unclassified\n`);
    return undefined;
  }
}

export async function reportCommand(argv: string[], hooks: ReportHooks = {}): Promise<number> {
  const parsed = parseCommandArgs('report', argv, {
    help: { type: 'boolean', short: 'h' },
    json: { type: 'boolean' },
    html: { type: 'boolean' },
    output: { type: 'string', short: 'o' },
    from: { type: 'string' },
    to: { type: 'string' },
    top: { type: 'string' },
    buckets: { type: 'string' },
    'all-counters': { type: 'boolean' },
  }, true);
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(REPORT_HELP);
    return 0;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined) throw new UsageError('report needs the recording FILE', "see 'dropmon report --help'");
  if (extra.length) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`, "see 'dropmon report --help'");
  if (v.json && v.html) throw new UsageError('--json and --html exclude each other');
  const top = parseCount('--top', v.top, 1, 1000) ?? 10;
  const buckets = parseCount('--buckets', v.buckets, 1, 1000) ?? 60;

  const kb = knowledge();
  const diagnose = hooks.diagnose ?? (kb ? recordingDiagnosis(kb) : undefined);
  const text = renderReport({
    file,
    format: v.json ? 'json' : v.html ? 'html' : 'text',
    ...(v.from !== undefined ? { from: v.from } : {}),
    ...(v.to !== undefined ? { to: v.to } : {}),
    top,
    buckets,
    allCounters: v['all-counters'] ?? false,
    ...(diagnose ? { diagnose } : {}),
    ...(kb ? { classifyCounter: counterClassifier(kb) } : {}),
  });
  if (v.output !== undefined && v.output !== '-') {
    try {
      writeFileSync(v.output, text);
    } catch (err) {
      throw new DropmonError(`cannot write ${v.output}: ${(err as Error).message}`);
    }
    process.stderr.write(`dropmon: report written to ${v.output}\n`);
  } else process.stdout.write(text);
  return 0;
}
