/**
 * Soak: `dropmon serve` for a few minutes under a drop storm (dropgen
 * ethproto frames on lo in a namespace, as fast as one process can send).
 * Checks: memory stays flat, the recording stays within its retention (age
 * and size), no interval is missing or unwritten, and the API keeps answering
 * quickly. Prints the service's CPU and RSS (targets of the issue).
 *
 * DROPMON_SOAK_SECONDS sets the storm's length (default 150).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { kernelSkipReason } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { dropgenBinary } from '../helpers/dropgen.js';
import { openRecording } from '../../src/recording/recording.js';
import { Served } from './serve-helper.js';

const SKIP = kernelSkipReason();
const SECONDS = Number(process.env.DROPMON_SOAK_SECONDS ?? 150);
const MAX_AGE_S = 60;
const MAX_SIZE = 1024 * 1024;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds (user + system) of a process so far. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test(`soak: ${SECONDS} s of drop storm`, { skip: SKIP, timeout: (SECONDS + 120) * 1000 }, async () => {
  const ns = new TestNetns('soak');
  const s = await new Served(['--interval', '1', '--max-age', `${MAX_AGE_S}s`, '--max-size', String(MAX_SIZE), '--netns', ns.name]).ready();
  const pid = s.proc.pid;
  const storm = spawn('ip', ['netns', 'exec', ns.name, dropgenBinary(), '-m', 'ethproto', '-d', String(SECONDS), '-c', '-1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stormOut = '';
  storm.stdout.on('data', (d: Buffer) => (stormOut += d.toString()));
  const stormDone = new Promise<number | null>((r) => storm.on('close', r));
  const samples: { t: number; rss: number; statusMs: number; metricsMs: number }[] = [];
  const t0 = Date.now();
  const cpu0 = cpuSeconds(pid);
  try {
    while (Date.now() - t0 < SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, 5000));
      const a = performance.now();
      const st = await s.get('/api/v1/status');
      const b = performance.now();
      const m = await s.get('/metrics');
      const c = performance.now();
      assert.equal(st.status, 200);
      assert.equal(st.json.state, 'running');
      assert.equal(m.status, 200);
      samples.push({ t: (Date.now() - t0) / 1000, rss: rssMb(pid), statusMs: b - a, metricsMs: c - b });
    }
    const cpu = (cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000);
    assert.equal(await stormDone, 0, 'dropgen ran');
    const sent = Number(/\bsent=(\d+)/.exec(stormOut)?.[1] ?? NaN);

    const st = (await s.get('/api/v1/status')).json;
    const intervals = (await s.get('/api/v1/intervals?limit=300')).json.intervals as { seq: number; drops: number; start: number; end: number }[];
    // No interval missing: consecutive sequence numbers, contiguous in time.
    for (let i = 1; i < intervals.length; i++) {
      assert.equal(intervals[i].seq, intervals[i - 1].seq + 1, 'consecutive intervals');
      assert.equal(intervals[i].start, intervals[i - 1].end, 'contiguous intervals');
    }
    const elapsed = (Date.now() - t0) / 1000;
    assert.ok(st.intervals >= elapsed * 0.9, `${st.intervals} intervals in ${elapsed.toFixed(0)} s`);
    assert.equal(st.recording.unwritten, 0, 'every interval was written');
    assert.ok(st.drops >= sent * 0.99, `drops counted ${st.drops} of ${sent} sent`);

    // Memory flat: the last third against the second third (the first is warm-up).
    const third = Math.floor(samples.length / 3);
    const mid = median(samples.slice(third, 2 * third).map((x) => x.rss));
    const end = median(samples.slice(2 * third).map((x) => x.rss));
    const peak = Math.max(...samples.map((x) => x.rss));
    assert.ok(end - mid < 15, `RSS grew from ${mid.toFixed(0)} to ${end.toFixed(0)} MB`);
    assert.ok(peak < 250, `peak RSS ${peak.toFixed(0)} MB`);

    // The API stayed responsive.
    const worstStatus = Math.max(...samples.map((x) => x.statusMs));
    const worstMetrics = Math.max(...samples.map((x) => x.metricsMs));
    assert.ok(worstStatus < 2000 && worstMetrics < 2000, `worst status ${worstStatus.toFixed(0)} ms, metrics ${worstMetrics.toFixed(0)} ms`);

    // The recording within retention: age and size.
    const rec = openRecording(s.db);
    let span: number;
    try {
      const t = rec.totals();
      span = (t.lastMs! - t.firstMs!) / 1000;
    } finally {
      rec.close();
    }
    assert.ok(span <= MAX_AGE_S + 3, `the recording spans ${span.toFixed(0)} s (max age ${MAX_AGE_S} s)`);
    const bytes = statSync(s.db).size;
    assert.ok(bytes <= MAX_SIZE * 1.1, `the database is ${bytes} bytes (max ${MAX_SIZE})`);

    process.stderr.write(
      `# soak ${elapsed.toFixed(0)} s: ${sent} drops sent (${(sent / SECONDS / 1e6).toFixed(2)} M/s), ${st.drops} counted, ${st.lost} events lost, ` +
        `${st.intervals} intervals; service CPU ${cpu.toFixed(3)} cores (${st.source}); RSS ${mid.toFixed(0)} -> ${end.toFixed(0)} MB (peak ${peak.toFixed(0)}); ` +
        `status median ${median(samples.map((x) => x.statusMs)).toFixed(1)} ms (worst ${worstStatus.toFixed(0)}), metrics median ${median(samples.map((x) => x.metricsMs)).toFixed(1)} ms; ` +
        `recording ${bytes} bytes, ${span.toFixed(0)} s\n`,
    );
  } finally {
    storm.kill('SIGKILL');
    const fin = await s.stop();
    ns.delete();
    assert.equal(fin.code, 0, fin.stderr);
  }
});
