/**
 * The report of a recording: the JSON shape, the text, and the HTML page
 * (self-contained, well-formed, escaped, two SVG charts, no horizontal
 * scrolling at phone width in a real Chromium when one is installed). Also
 * the command-line parsing of record and report.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/core/errors.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording, type Recording } from '../../src/recording/recording.js';
import { buildReport, OTHER_REASONS, type DiagnosisInput, type RecordingReport } from '../../src/recording/report.js';
import { formatReportText } from '../../src/recording/report-text.js';
import { escapeHtml, formatReportHtml } from '../../src/recording/report-html.js';
import { parseTime, reportCommand } from '../../src/cli/report.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { counterClassifier } from '../../src/knowledge/views.js';
import { diagnoseRecorded, recordingDiagnosis } from '../../src/recording/diagnosis.js';
import type { Attribution } from '../../src/core/attribution.js';
import { parseAge, parseRecordFlags, parseSize } from '../../src/cli/record.js';
import { syntheticInterval } from './synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'dropmon-report-'));
const file = join(dir, 'rec.db');
const T0 = Date.UTC(2026, 10, 25, 20, 0, 0);
const HOSTILE = '<img src=x onerror=alert(1)>';
/** 12 reasons, so the series folds the smallest into OTHER_REASONS; one hostile name to check escaping. */
const REASONS = ['NO_SOCKET', 'NETFILTER_DROP', 'SOCKET_RCVBUFF', 'TCP_CSUM', 'IP_NOPROTO', 'PKT_TOO_SMALL', 'OTHERHOST', 'QDISC_DROP', 'NEIGH_FAILED', 'SOCKET_FILTER', 'UNHANDLED_PROTO', HOSTILE];
let rec: Recording;

before(() => {
  const w = new Recorder(file, { source: 'tracefs', intervalMs: 1000 });
  for (let s = 1; s <= 120; s++)
    w.record({
      interval: syntheticInterval(s, T0, 1000, {
        points: 12,
        reasons: REASONS,
        countPerPoint: s <= 60 ? 1 : 5,
        lost: s === 90 ? new Map([['ring-buffer overrun cpu1', 7]]) : new Map(),
        overflowDrops: s === 100 ? 40 : 0,
      }),
      counters: [{ name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: s <= 60 ? 1 : 5, value: s, rate: 1 }],
    });
  w.close();
  rec = openRecording(file);
});
after(() => {
  rec.close();
  rmSync(dir, { recursive: true, force: true });
});

const TOTAL = 60 * 12 + 60 * 60 + 40;

describe('report model (JSON)', () => {
  test('shape, totals, shares and the folded reasons-over-time series', () => {
    const r = buildReport(rec, { top: 5, buckets: 12, now: T0 });
    assert.deepEqual(Object.keys(r), ['format', 'version', 'file', 'generated_at', 'recording', 'range', 'totals', 'top_points', 'reasons', 'reasons_over_time', 'counters', 'losses', 'packets', 'diagnosis']);
    assert.equal(r.format, 'dropmon-report');
    assert.equal(r.totals.drops, TOTAL);
    assert.equal(r.totals.overflow_drops, 40);
    assert.equal(r.totals.lost_events, 7);
    assert.equal(r.range.seconds, 120);
    assert.equal(r.top_points.length, 5);
    assert.equal(r.top_points[0].count, 360);
    assert.equal(r.top_points[0].share, Math.round((360 / TOTAL) * 10000) / 10000);
    const s = r.reasons_over_time;
    assert.equal(s.series.length, 8);
    assert.equal(s.series[7], OTHER_REASONS);
    assert.equal(s.bucket_seconds, 10);
    assert.equal(s.buckets.length, 12);
    for (const b of s.buckets) assert.equal(b.counts.reduce((a, c) => a + c, 0), b.total, 'the series adds up in every bucket');
    assert.equal(s.buckets.reduce((a, b) => a + b.total, 0), TOTAL);
    assert.deepEqual(r.counters.map((c) => [c.name, c.delta]), [['Udp:NoPorts', 360]]);
    assert.deepEqual(r.losses, { total: 7, by_cause: [{ cause: 'ring-buffer overrun cpu1', lost: 7, intervals: 1 }] });
    assert.equal(r.diagnosis, null);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'plain JSON data');
  });

  test('a time range selects the intervals that ended in it', () => {
    const r = buildReport(rec, { range: { from: T0 + 60_000, to: T0 + 70_000 } });
    assert.equal(r.totals.intervals, 10);
    assert.equal(r.totals.drops, 10 * 60);
    assert.equal(r.counters[0].delta, 50);
  });

  test('the diagnosis hook gets the points and counters and its findings are shown', () => {
    let input: DiagnosisInput | undefined;
    const r = buildReport(rec, {
      diagnose: (i) => {
        input = i;
        return [{ rank: 1, key: 'NO_SOCKET', cause: 'nothing listens on the port', packets: 360, benign: 'no', known: true, blindSpot: false, evidence: ['360 drops at x'], check: ['ss -lun'], fix: ['start the service'] }];
      },
    });
    assert.equal(input?.points.length, 12);
    assert.equal(input?.counters[0].name, 'Udp:NoPorts');
    assert.equal(input?.seconds, 120);
    assert.equal(r.diagnosis?.findings[0].cause, 'nothing listens on the port');
    assert.match(formatReportText(r), /1\. nothing listens on the port \(360 packets\)\n\s+evidence: 360 drops at x\n\s+check: ss -lun\n\s+fix: start the service/);
    assert.match(formatReportHtml(r), /nothing listens on the port/);
  });
});

describe('with the knowledge base', () => {
  test('drop counters first, traffic counters only on request; the diagnosis names the cause', () => {
    const f = join(dir, 'kb.db');
    const w = new Recorder(f, { source: 'bpf' });
    for (let s = 1; s <= 5; s++)
      w.record({
        interval: syntheticInterval(s, T0, 1000, { points: 1, reasons: ['NO_SOCKET'], countPerPoint: 100 }),
        counters: [
          { name: 'IpExt:InOctets', scope: '', layer: 'ip', delta: 11600, value: 11600 * s, rate: 11600 },
          { name: 'Tcp:OutRsts', scope: '', layer: 'tcp', delta: 1, value: s, rate: 1 },
          { name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: 100, value: 100 * s, rate: 100 },
        ],
      });
    w.close();
    const kb = loadKnowledge();
    const r = openRecording(f);
    try {
      const rep = buildReport(r, { classifyCounter: counterClassifier(kb), diagnose: recordingDiagnosis(kb) });
      assert.deepEqual(rep.counters.map((c) => [c.name, c.class]), [['Udp:NoPorts', 'drop'], ['Tcp:OutRsts', 'related']]);
      assert.ok(rep.counters[0].meaning);
      const all = buildReport(r, { classifyCounter: counterClassifier(kb), allCounters: true });
      assert.deepEqual(all.counters.map((c) => c.name), ['Udp:NoPorts', 'Tcp:OutRsts', 'IpExt:InOctets']);
      const top = rep.diagnosis?.findings[0];
      assert.equal(top?.key, 'NO_SOCKET/udp-closed-port', 'Udp:NoPorts tells the UDP cause of NO_SOCKET');
      assert.equal(top?.packets, 500);
      assert.ok(top?.evidence.some((e) => /Udp:NoPorts \+500/.test(e)), JSON.stringify(top?.evidence));
      assert.ok((top?.fix.length ?? 0) > 0);
    } finally {
      r.close();
    }
  });
});

describe('where: findings per namespace', () => {
  test('recorded points of two namespaces with the same cause: two findings, each line says where; the service names them', () => {
    const WEB1 = 4026532871;
    const WEB2 = 4026532999;
    const f = join(dir, 'netns.db');
    const w = new Recorder(f, { source: 'bpf' });
    for (let s = 1; s <= 3; s++) {
      const iv = syntheticInterval(s, T0, 1000, { points: 2, reasons: ['NO_SOCKET'], countPerPoint: 10 });
      w.record({ interval: { ...iv, points: [{ ...iv.points[0], count: 30, netns: WEB1, ifindex: 2 }, { ...iv.points[1], netns: WEB2 }], drops: 40 } });
    }
    w.close();
    const kb = loadKnowledge();
    const r = openRecording(f);
    try {
      const rep = buildReport(r, { diagnose: recordingDiagnosis(kb) });
      const findings = rep.diagnosis?.findings ?? [];
      assert.deepEqual(
        findings.map((x) => [x.key, x.netns, x.packets, x.interfaces]),
        [
          ['NO_SOCKET', WEB1, 90, [{ ifindex: 2, count: 90 }]],
          ['NO_SOCKET', WEB2, 30, []],
        ],
      );
      const text = formatReportText(rep);
      assert.match(text, /1\. .* \(90 packets.*\)\n\s+where: netns 4026532871: 90 x NO_SOCKET at 0xffffffff81000000 dev ifindex 2\n/);
      assert.match(text, /2\. .* \(30 packets.*\)\n\s+where: netns 4026532999: 30 x NO_SOCKET at 0xffffffff81000010\n/);
      assert.match(formatReportHtml(rep), /<div class="where">netns 4026532871: 90 x NO_SOCKET/);

      // The service asks with the names of this host's namespaces.
      const names: Attribution = {
        initInode: undefined,
        netns: (i) => (i === WEB1 ? { name: 'web-1', container: 'docker 3f2a1b0c9d8e' } : undefined),
        ifname: (ns, i) => (ns === WEB1 && i === 2 ? 'eth0' : undefined),
      };
      const named = diagnoseRecorded(kb, { points: r.topPoints(undefined, 200), counters: r.countersMoved(undefined, 200), seconds: 3 }, names);
      assert.deepEqual([named[0].netnsName, named[0].container, named[0].interfaces], ['web-1', 'docker 3f2a1b0c9d8e', [{ name: 'eth0', ifindex: 2, count: 90 }]]);
    } finally {
      r.close();
    }
  });
});

describe('text', () => {
  test('sections, aligned columns, a compact time table', () => {
    const t = formatReportText(buildReport(rec));
    for (const h of ['Top drop points', 'Reasons', 'Reasons over time', 'Counters that moved', 'Lost events', 'Diagnosis']) assert.match(t, new RegExp(`^${h}`, 'm'));
    assert.match(t, new RegExp(`^${TOTAL} drops \\(`, 'm'));
    assert.match(t, /not available \(no diagnosis engine/);
    const rows = t.split('Reasons over time')[1].split('\n\n')[0].split('\n').slice(2);
    assert.ok(rows.length <= 15, `at most 15 time rows (${rows.length})`);
    assert.match(t, /\s7\s+1\s+ring-buffer overrun cpu1/);
  });
});

/** Check that every non-void element is closed in order; returns the problem or undefined. */
function unbalanced(html: string): string | undefined {
  const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link', 'area', 'base', 'col', 'embed', 'source', 'track', 'wbr']);
  const stack: string[] = [];
  const body = html.replace(/<!DOCTYPE[^>]*>/i, '').replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)\b[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    const tag = name.toLowerCase();
    if (closing) {
      if (stack.pop() !== tag) return `unexpected </${tag}> at ${m.index}`;
    } else if (!selfClosing && !VOID.has(tag)) stack.push(tag);
  }
  return stack.length ? `unclosed <${stack.join('> <')}>` : undefined;
}

describe('HTML', () => {
  let html = '';
  let report: RecordingReport;
  before(() => {
    report = buildReport(rec, { top: 10 });
    html = formatReportHtml(report);
  });

  test('self-contained: no scripts, no external reference of any kind', () => {
    assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
    assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    // (The escaped hostile reason name is text that reads "src=", not an attribute.)
    assert.doesNotMatch(html.split(escapeHtml(HOSTILE)).join(''), /<script|<link|<iframe|<object|<embed|<img|\b(?:src|href|srcset|action)\s*=|url\(|@import|https?:|\/\//i);
  });

  test('well-formed, with the two SVG charts and their data', () => {
    assert.equal(unbalanced(html), undefined);
    assert.equal(html.match(/<svg /g)?.length, 2);
    const [timeChart, pointsChart] = html.split('<svg ').slice(1);
    const columns = timeChart.split('</svg>')[0].match(/<rect /g)?.length ?? 0;
    assert.ok(columns >= report.reasons_over_time.buckets.length, `stacked columns drawn (${columns} rects)`);
    assert.equal(pointsChart.split('</svg>')[0].match(/<rect /g)?.length, 10, 'one bar per top point');
    for (const label of report.reasons_over_time.series) assert.ok(html.includes(escapeHtml(label)), `legend has ${label}`);
  });

  test('text from the recording is escaped', () => {
    assert.ok(!html.includes(HOSTILE));
    assert.ok(html.includes(escapeHtml(HOSTILE)));
  });

  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  test('at phone width in Chromium: no horizontal scrolling, charts drawn', { skip: chromium ? false : 'no chromium installed' }, async () => {
    const { chromium: pw } = await import('playwright-core');
    const browser = await pw.launch({ executablePath: chromium, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 360, height: 740 } });
      await page.setContent(html);
      // A string: it runs in the page, whose DOM types this project does not compile against.
      const m = (await page.evaluate(`({
        scrollWidth: document.documentElement.scrollWidth,
        charts: [...document.querySelectorAll('svg')].map((s) => s.getBoundingClientRect().width),
        rects: document.querySelectorAll('svg rect').length,
      })`)) as { scrollWidth: number; charts: number[]; rects: number };
      assert.ok(m.scrollWidth <= 360, `page fits 360 px (${m.scrollWidth})`);
      assert.equal(m.charts.length, 2);
      for (const w of m.charts) assert.ok(w > 300 && w <= 360, `chart spans the width (${w})`);
      assert.ok(m.rects > 20);
    } finally {
      await browser.close();
    }
  });
});

describe('command line', () => {
  test('report --json -o FILE with a relative range', async () => {
    const out = join(dir, 'r.json');
    assert.equal(await reportCommand([file, '--json', '-o', out, '--from', '+60s', '--to=-50s']), 0);
    const r = JSON.parse(readFileSync(out, 'utf8')) as RecordingReport;
    assert.equal(r.range.from, new Date(T0 + 60_000).toISOString());
    assert.equal(r.totals.intervals, 10);
  });

  test('report usage errors', async () => {
    await assert.rejects(reportCommand([]), UsageError);
    await assert.rejects(reportCommand([file, '--json', '--html']), UsageError);
    await assert.rejects(reportCommand([file, '--from=-10s', '--to', '+10s']), /--from is after --to/);
    await assert.rejects(reportCommand([file, '--from', 'yesterday']), UsageError);
    await assert.rejects(reportCommand([join(dir, 'missing.db')]), /no such file/);
  });

  test('times: ISO 8601, @unix seconds, offsets from the start and the end', () => {
    assert.equal(parseTime('--from', '2026-11-25T20:30:00Z', null, null), Date.UTC(2026, 10, 25, 20, 30));
    assert.equal(parseTime('--from', '2026-11-25 20:30Z', null, null), Date.UTC(2026, 10, 25, 20, 30));
    assert.equal(parseTime('--from', '@1795638502.5', null, null), 1795638502500);
    assert.equal(parseTime('--from', '+10m', 1000, 5000), 601_000);
    assert.equal(parseTime('--to', '-2s', 1000, 5000), 3000);
    assert.throws(() => parseTime('--from', 'Nov 25', 0, 0), UsageError);
    assert.throws(() => parseTime('--from', '+1m', null, null), /no intervals/);
  });

  test('record: its own flags are taken out, the rest goes to watch', () => {
    const f = parseRecordFlags(['-o', 'a.db', '--max-age', '7d', '--max-size=500M', '--reason', 'NO_SOCKET', '-d', '5', '--append', '--max-packets', '10']);
    assert.ok(f !== 'help');
    assert.deepEqual(f, { output: 'a.db', append: true, maxAgeMs: 7 * 86_400_000, maxBytes: 500 * 1024 ** 2, maxPackets: 10, watchArgv: ['--reason', 'NO_SOCKET', '-d', '5'] });
    assert.deepEqual(parseRecordFlags(['-ob.db']), { output: 'b.db', append: false, watchArgv: [] });
    assert.deepEqual(parseRecordFlags(['--output=c.db', '--stack']), { output: 'c.db', append: false, watchArgv: ['--stack'] });
    assert.equal(parseRecordFlags(['--help']), 'help');
    assert.throws(() => parseRecordFlags(['--duration', '5']), /needs -o FILE/);
    assert.throws(() => parseRecordFlags(['-o', 'x', '--json']), /record writes no lines/);
    assert.throws(() => parseRecordFlags(['-o']), /-o needs a value/);
    assert.equal(parseAge('--max-age', '90m'), 5_400_000);
    assert.equal(parseAge('--max-age', '3600'), 3_600_000);
    assert.throws(() => parseAge('--max-age', '0'), UsageError);
    assert.equal(parseSize('--max-size', '2G'), 2 * 1024 ** 3);
    assert.equal(parseSize('--max-size', '65536'), 65536);
    assert.throws(() => parseSize('--max-size', '10'), UsageError);
    assert.throws(() => parseSize('--max-size', 'lots'), UsageError);
  });
});
