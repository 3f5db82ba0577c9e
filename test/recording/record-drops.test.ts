/**
 * `dropmon record` and `dropmon report` end to end, with real drops caused in
 * network namespaces created here: the recording and the report count
 * exactly the drops the kernel counted.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason, kernelTest } from '../helpers/env.js';
import { bpfUnavailableReason } from '../../src/sources/bpf/availability.js';
import { runDropgen } from '../helpers/dropgen.js';
import { TestNetns } from '../helpers/netns.js';
import { Cli } from './cli.js';
import { openRecording } from '../../src/recording/recording.js';
import type { RecordingReport } from '../../src/recording/report.js';

const dir = mkdtempSync(join(tmpdir(), 'dropmon-record-'));
after(() => {
  TestNetns.cleanupAll();
  rmSync(dir, { recursive: true, force: true });
});

const sumWhere = (points: { count: number; reason: string; symbol: string }[], reason: string, fn: RegExp) =>
  points.filter((p) => p.reason === reason && fn.test(p.symbol)).reduce((s, p) => s + p.count, 0);

describe('record and report real drops', kernelTest(), () => {
  test('NO_SOCKET and NETFILTER_DROP: the recording and every report format count what the kernel counted', async () => {
    const ns = new TestNetns('rec');
    ns.exec('nft', ['-f', '-'], ['table inet dropmon_rec {', '  chain input { type filter hook input priority 0; udp dport 47003 counter drop; }', '}'].join('\n'));
    const file = join(dir, 'drops.db');
    const noPortsBefore = ns.snmp('Udp', 'NoPorts');
    // Only our own traffic: the counters of the test's namespace and, where BPF runs, only its drops
    // (tracefs sees every namespace's, so other programs' drops of the same reasons would count too).
    const source = bpfUnavailableReason() ? ['--source', 'tracefs'] : ['--source', 'bpf', '--netns', ns.name];
    const rec = new Cli(['record', '-o', file, '--interval', '0.5', ...source, '--reason', 'NO_SOCKET,NETFILTER_DROP', '--counters-netns', ns.name]);
    try {
      await rec.ready();
      assert.equal(runDropgen(['-m', 'noport', '-n', '250', '-a', '127.0.0.1', '-p', '9'], ns.name).sent, 250);
      await new Promise((r) => setTimeout(r, 600)); // another interval
      assert.equal(runDropgen(['-m', 'udp', '-n', '300', '-a', '127.0.0.1', '-p', '47003'], ns.name).sent, 300);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      assert.equal(await rec.stop(), 0, rec.stderr);
    }
    const noPorts = ns.snmp('Udp', 'NoPorts') - noPortsBefore;
    const rule = ns.exec('nft', ['list', 'chain', 'inet', 'dropmon_rec', 'input']);
    ns.delete();
    assert.equal(noPorts, 250, 'the kernel counted every datagram to the closed port');
    assert.match(rule, /counter packets 300 /, 'the nft rule counted every datagram');
    assert.match(rec.stderr, /recording to .*drops\.db/);

    const r = openRecording(file);
    try {
      const points = r.topPoints(undefined, 100);
      const listed = JSON.stringify(points.map((p) => [p.symbol, p.reason, p.count]));
      assert.equal(sumWhere(points, 'NO_SOCKET', /^__udp4_lib_rcv\+/), 250, listed);
      assert.equal(sumWhere(points, 'NETFILTER_DROP', /^nft_do_chain/), 300, listed);
      assert.equal(r.totals().drops, 550, listed);
      assert.equal(r.totals().lost, 0);
      assert.ok(r.totals().intervals >= 2, 'the two bursts are in different intervals');
      assert.equal(r.meta().source, source[1]);
      const noPortsRecorded = r.countersMoved(undefined, 1000).find((c) => c.name === 'Udp:NoPorts' && c.scope === '');
      assert.equal(noPortsRecorded?.delta, 250, 'the namespace\'s Udp:NoPorts moved by the datagrams sent');
    } finally {
      r.close();
    }
    assert.match(rec.stderr, /recorded \d+ intervals \(550 drops, 0 events lost\)/);

    const json = new Cli(['report', file, '--json']);
    assert.equal(await json.done, 0, json.stderr);
    const rep = JSON.parse(json.stdout) as RecordingReport;
    assert.equal(rep.totals.drops, 550);
    assert.deepEqual(
      rep.reasons.map((x) => [x.reason, x.count]),
      [
        ['NETFILTER_DROP', 300],
        ['NO_SOCKET', 250],
      ],
    );
    assert.equal(rep.top_points[0].reason, 'NETFILTER_DROP');
    assert.equal(rep.top_points[0].count, 300);
    assert.equal(rep.reasons_over_time.buckets.reduce((s, b) => s + b.total, 0), 550);

    const text = new Cli(['report', file]);
    assert.equal(await text.done, 0, text.stderr);
    assert.match(text.stdout, /550 drops/);
    assert.match(text.stdout, /\s300\s+54\.5%\s+NETFILTER_DROP\s+ipv4\s+nft_do_chain/);
    assert.match(text.stdout, /\s250\s+45\.5%\s+NO_SOCKET\s+ipv4\s+__udp4_lib_rcv\+/);
    assert.match(text.stdout, /\+250\s+\S+\s+udp\s+Udp:NoPorts\s/);

    const html = join(dir, 'drops.html');
    const page = new Cli(['report', file, '--html', '-o', html]);
    assert.equal(await page.done, 0, page.stderr);
    const doc = readFileSync(html, 'utf8');
    assert.equal(doc.match(/<svg /g)?.length, 2);
    assert.match(doc, /NETFILTER_DROP/);
    assert.doesNotMatch(doc, /https?:|<script|<link|<img/i);
  });

  test('--duration ends the recording by itself; an existing file is refused without --append, added to with it', async () => {
    const file = join(dir, 'twice.db');
    const first = new Cli(['record', '-o', file, '--duration', '0.5', '--source', 'tracefs']);
    assert.equal(await first.done, 0, first.stderr);
    assert.ok(existsSync(file));
    const again = new Cli(['record', '-o', file, '--duration', '0.5', '--source', 'tracefs']);
    assert.equal(await again.done, 2);
    assert.match(again.stderr, /twice\.db exists/);
    assert.doesNotMatch(again.stderr, /watching/, 'refused before tracing started');
    const append = new Cli(['record', '-o', file, '--append', '--duration', '0.5', '--source', 'tracefs']);
    assert.equal(await append.done, 0, append.stderr);
    const r = openRecording(file);
    try {
      assert.equal(r.meta().sessions.length, 2);
      assert.ok(r.meta().sessions.every((s) => s.endedMs !== null));
    } finally {
      r.close();
    }
  });
});

function bpfSkip(): { skip: string | false } {
  const why = kernelSkipReason() ?? bpfUnavailableReason();
  if (why) process.stderr.write(`# skipping the recording storm test: ${why}\n`);
  return { skip: why ?? false };
}

describe('a drop storm', bpfSkip(), () => {
  test('the recording stays small and complete: every drop counted, bounded rows per interval', async () => {
    const ns = new TestNetns('storm');
    const file = join(dir, 'storm.db');
    // BPF counts in the kernel, and --netns keeps other namespaces' drops out: exact totals.
    const rec = new Cli(['record', '-o', file, '--source', 'bpf', '--netns', ns.name, '--interval', '0.2', '--no-counters', '--max-size', '1M']);
    let sent: number;
    try {
      await rec.ready();
      sent = runDropgen(['-m', 'ethproto', '-d', '2', '-i', 'lo'], ns.name).sent;
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      assert.equal(await rec.stop(), 0, rec.stderr);
      ns.delete();
    }
    assert.ok(sent > 10_000, `a storm (${sent} frames)`);
    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.equal(t.drops + t.lost, sent, `recorded ${t.drops} + lost ${t.lost} = sent ${sent}`);
      assert.equal(t.intervalsUnwritten, 0);
      // Several intervals (how many depends on the machine's speed: timers run late under load), not one.
      assert.ok(t.intervals >= 3, `${t.intervals} intervals`);
      const points = r.topPoints(undefined, 100);
      assert.ok(points.length <= 3, `one drop point, not one row per drop (${points.length})`);
      assert.equal(points[0].reason, 'UNHANDLED_PROTO');
    } finally {
      r.close();
    }
    assert.ok(statSync(file).size < 256 * 1024, `file ${statSync(file).size} bytes for ${sent} drops`);
  });
});
