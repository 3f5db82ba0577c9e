/**
 * Soak of `dropmon serve`: the service recording under a full drop storm
 * (dropgen in a network namespace it creates) while clients hammer the API
 * (every GET endpoint, event streams, /metrics), for N minutes. Samples the
 * service's RSS and heap, checks that intervals are complete (no gap in
 * sequence numbers or times, in memory, on the event streams and in the
 * recording), that the recording stays within its age and size limits and
 * that the API keeps answering; prints a summary and exits 1 on a failure.
 * Everything it creates (namespace, processes, files) goes at exit, also on
 * Ctrl-C. As root, from the project folder after `npm run build`:
 *
 *   node dist/scripts/soak-service.js                 # 10 minutes
 *   node dist/scripts/soak-service.js --minutes 1 --source tracefs
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openRecording } from '../src/recording/recording.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HELP = `usage: node dist/scripts/soak-service.js [options]
  --minutes N       how long (default 10)
  --source NAME     auto, bpf, tracefs or netdm (default auto)
  --interval S      the service's interval in seconds (default 1)
  --max-age DUR     recording retention by age (default 2m: it must delete during the soak)
  --max-size SIZE   recording retention by size (default 8MiB)
  --clients N       API clients hammering GET endpoints (default 4)
  --streams N       event streams kept open (default 4)
  --storm-procs N   dropgen processes (default 1)
  --samples FILE    write the 5-second samples there as CSV (memory in MB)
  --keep            keep the temporary folder (recording, logs)
`;

const { values: v } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    source: { type: 'string', default: 'auto' },
    interval: { type: 'string', default: '1' },
    'max-age': { type: 'string', default: '2m' },
    'max-size': { type: 'string', default: '8MiB' },
    clients: { type: 'string', default: '4' },
    streams: { type: 'string', default: '4' },
    'storm-procs': { type: 'string', default: '1' },
    samples: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (v.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const MINUTES = Number(v.minutes);
const INTERVAL_S = Number(v.interval);
if (!(MINUTES > 0) || !(INTERVAL_S >= 0.1)) throw new Error('--minutes must be > 0 and --interval >= 0.1');
if (process.getuid?.() !== 0) {
  process.stderr.write('soak: run as root (a drop source, a network namespace)\n');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'dropmon-soak-'));
chmodSync(dir, 0o711); // the API process (another user) reads the recording here, as it would in /var/lib/dropmon
const ns = `dropmon-soak-${process.pid}`;
const db = join(dir, 'soak.db');
const children: ChildProcess[] = [];
let serve: ChildProcess | undefined;
let serveErr = '';
let cleaned = false;

/** Undo everything: processes, the namespace, the folder. Safe to call twice. */
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (serve && serve.exitCode === null && serve.signalCode === null) {
    const gone = new Promise((r) => serve!.once('exit', r));
    serve.kill('SIGTERM');
    const t = setTimeout(() => serve!.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(t);
  }
  try {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
  } catch {
    /* not created, or gone */
  }
  if (v.keep) process.stderr.write(`soak: kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    process.stderr.write(`soak: ${sig}: cleaning up\n`);
    void cleanup().then(() => process.exit(130));
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);

let port = 0;
let token = '';

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function get(path: string, timeoutMs = 30_000): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - t0 }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e), ms: performance.now() - t0 }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** The recording's size on disk: the database and its write-ahead log. */
function recordingBytes(): number {
  let n = 0;
  for (const f of [db, `${db}-wal`]) if (existsSync(f)) n += statSync(f).size;
  return n;
}

const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
};

async function main(): Promise<void> {
  // The storm's generator, built from the project's source.
  const dropgen = join(dir, 'dropgen');
  execFileSync('cc', ['-O2', '-Wall', '-o', dropgen, join(ROOT, 'bench', 'dropgen.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);

  const args = [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve', '--listen', '127.0.0.1:0', '--state-dir', dir, '--record', db, '--max-age', v['max-age']!, '--max-size', v['max-size']!];
  args.push('--interval', String(INTERVAL_S), '--source', v.source!, '--netns', ns);
  serve = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  serve.stderr!.on('data', (d: Buffer) => (serveErr += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!/serving on http:\/\/[^ ]*:(\d+)\//.test(serveErr)) {
    if (serve.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${serveErr}`);
    await sleep(100);
  }
  port = Number(/serving on http:\/\/[^ ]*:(\d+)\//.exec(serveErr)![1]);
  token = readFileSync(join(dir, 'token'), 'utf8').trim();
  const pid = serve.pid!;
  const status0 = JSON.parse((await get('/api/v1/status')).body) as { source: string };
  const seconds = Math.round(MINUTES * 60);
  process.stderr.write(`soak: ${seconds} s, source ${status0.source}, port ${port}, folder ${dir}\n`);

  // dropgen runs at most 600 s: a longer soak chains runs, each until the soak's end.
  const stormOut: string[] = [];
  const stormEnd = Date.now() + seconds * 1000;
  // A storm that fails ends the soak early (the clients stop) and is its failure; one ended by cleanup is not.
  let stormFailed = '';
  const storms = Array.from({ length: Number(v['storm-procs']) }, async () => {
    for (let left = seconds; left >= 1 && !cleaned && !stormFailed; left = Math.round((stormEnd - Date.now()) / 1000)) {
      const c = spawn('ip', ['netns', 'exec', ns, dropgen, '-m', 'ethproto', '-d', String(Math.min(600, left)), '-c', '-1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      c.stdout!.on('data', (d: Buffer) => stormOut.push(d.toString()));
      children.push(c);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => c.once('exit', (co, si) => r([co, si])));
      if (code !== 0 && !cleaned) stormFailed ||= `the storm's dropgen exited with ${code ?? signal}`;
    }
  });

  const t0 = Date.now();
  let end = t0 + seconds * 1000;
  void Promise.all(storms).then(() => {
    if (stormFailed) end = Date.now();
  });
  const answers = new Map<number, number>();
  const latencies: number[] = [];
  let slowest = { ms: 0, path: '' };

  // Clients: every GET endpoint in turn, as fast as answers come.
  const paths = ['/api/v1/status', '/api/v1/config', '/api/v1/intervals?limit=300', '/api/v1/points?from=-5m&top=50', '/api/v1/series?from=-5m&buckets=60', '/api/v1/counters', '/api/v1/diagnosis?from=-5m', '/api/v1/explain/UNHANDLED_PROTO', '/metrics', '/'];
  const clients = Array.from({ length: Number(v.clients) }, async (_, k) => {
    for (let i = k; Date.now() < end; i++) {
      const path = paths[i % paths.length];
      const a = await get(path);
      answers.set(a.status, (answers.get(a.status) ?? 0) + 1);
      latencies.push(a.ms);
      if (a.ms > slowest.ms) slowest = { ms: a.ms, path };
    }
  });

  // Event streams: each checks that the intervals it is sent follow each other; reconnects if closed.
  let streamed = 0, streamGaps = 0, streamOpens = 0;
  const streams = Array.from({ length: Number(v.streams) }, async () => {
    while (Date.now() < end) {
      streamOpens++;
      await new Promise<void>((resolve) => {
        let last = -1;
        let buf = '';
        const req = request({ host: '127.0.0.1', port, path: '/api/v1/events', headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            buf += d;
            let i: number;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              if (!block.startsWith('event: interval')) continue;
              const seq = (JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { seq: number }).seq;
              if (last >= 0 && seq !== last + 1) streamGaps++;
              last = seq;
              streamed++;
            }
          });
          res.on('end', resolve);
          res.on('error', () => resolve());
        });
        req.on('error', () => resolve());
        const timer = setInterval(() => {
          if (Date.now() >= end) req.destroy();
        }, 500);
        req.on('close', () => {
          clearInterval(timer);
          resolve();
        });
        req.end();
      });
    }
  });

  // Samples every 5 s: memory, recording size, the service's own totals.
  // The API process (another pid, without root) is sampled too; a new pid means it died and was replaced.
  const samples: { t: number; rss: number; heap: number; bytes: number; apiRss: number; apiHeap: number; apiPid: number }[] = [];
  const sampler = (async () => {
    while (Date.now() < end) {
      await sleep(5000);
      const m = await get('/metrics');
      const api = (JSON.parse((await get('/api/v1/status')).body) as { api: { pid: number } }).api;
      samples.push({ t: (Date.now() - t0) / 1000, rss: rssMb(pid), heap: metric(m.body, 'nodejs_heap_size_used_bytes') / 2 ** 20, bytes: recordingBytes(), apiRss: rssMb(api.pid), apiHeap: metric(m.body, 'dropmon_api_process_heap_used_bytes') / 2 ** 20, apiPid: api.pid });
    }
  })();

  await Promise.all([...clients, ...streams, sampler]);
  const elapsed = (Date.now() - t0) / 1000;
  await Promise.all(storms);
  if (stormFailed) throw new Error(stormFailed);
  const sent = stormOut.join('').match(/\bsent=(\d+)/g)?.reduce((n, s) => n + Number(s.slice(5)), 0) ?? NaN;
  await sleep(INTERVAL_S * 2000); // the last intervals reach memory and the recording

  const st = JSON.parse((await get('/api/v1/status')).body) as { intervals: number; drops: number; lost: number; recording: { unwritten: number; bytes: number } };
  const mem = (JSON.parse((await get('/api/v1/intervals?limit=100000')).body) as { intervals: { seq: number; start: number; end: number }[] }).intervals;
  let memGaps = 0;
  for (let i = 1; i < mem.length; i++) if (mem[i].seq !== mem[i - 1].seq + 1 || mem[i].start !== mem[i - 1].end) memGaps++;

  // The recording: every interval of this session follows the one before (retention cuts only the oldest).
  const rec = openRecording(db);
  let recGaps = 0, recIntervals: number, spanS = NaN;
  try {
    const rows = rec.intervals(undefined, 1_000_000);
    recIntervals = rows.length;
    for (let i = 1; i < rows.length; i++) if (rows[i].seq !== rows[i - 1].seq + 1 || rows[i].startMs !== rows[i - 1].endMs || rows[i].gapBefore) recGaps++;
    if (rows.length) spanS = (rows[rows.length - 1].endMs - rows[0].startMs) / 1000;
  } finally {
    rec.close();
  }

  // Memory: the last third of the samples against the second (the first is warm-up).
  const third = Math.floor(samples.length / 3);
  const mid = (k: 'rss' | 'heap' | 'apiRss') => median(samples.slice(third, 2 * third).map((x) => x[k]));
  const last = (k: 'rss' | 'heap' | 'apiRss') => median(samples.slice(2 * third).map((x) => x[k]));
  // The heap saws up and down with collections: a leak shows in its floor, the lowest sample.
  const floor = (from: number, to: number, k: 'heap' | 'apiHeap' = 'heap') => Math.min(...samples.slice(from, to).map((x) => x[k]));
  const peak = (k: 'rss' | 'heap' | 'bytes' | 'apiRss') => Math.max(...samples.map((x) => x[k]));
  const maxAgeS = Number(/^(\d+)m$/.exec(v['max-age']!)?.[1] ?? NaN) * 60 || Number(/^(\d+)s$/.exec(v['max-age']!)?.[1] ?? NaN);
  const maxBytes = Number(/^(\d+)MiB$/.exec(v['max-size']!)?.[1] ?? NaN) * 2 ** 20;
  const non2xx = [...answers].filter(([s]) => s < 200 || s >= 300).reduce((n, [, c]) => n + c, 0);

  check(serve.exitCode === null, 'the service is still running');
  const apiPids = new Set(samples.map((x) => x.apiPid));
  check(apiPids.size <= 1, `the API process was replaced ${apiPids.size - 1} time(s)`);
  check(st.intervals >= (elapsed / INTERVAL_S) * 0.9, `${st.intervals} intervals in ${elapsed.toFixed(0)} s`);
  check(memGaps === 0, `${memGaps} gaps among the intervals in memory`);
  check(recGaps === 0, `${recGaps} gaps in the recording`);
  check(streamGaps === 0, `${streamGaps} gaps on the event streams`);
  check(st.recording.unwritten === 0, `${st.recording.unwritten} intervals not written`);
  check(!(sent > 0) || st.drops >= sent * 0.99, `drops counted ${st.drops} of ${sent} sent`);
  check(non2xx === 0, `${non2xx} API answers were not 2xx (${JSON.stringify(Object.fromEntries(answers))})`);
  if (samples.length >= 6) {
    check(last('rss') - mid('rss') < 15, `RSS grew from ${mid('rss').toFixed(0)} to ${last('rss').toFixed(0)} MB`);
    check(last('apiRss') - mid('apiRss') < 15, `the API process's RSS grew from ${mid('apiRss').toFixed(0)} to ${last('apiRss').toFixed(0)} MB`);
    check(floor(2 * third, samples.length) - floor(third, 2 * third) < 10, `the heap's floor grew from ${floor(third, 2 * third).toFixed(0)} to ${floor(2 * third, samples.length).toFixed(0)} MB`);
    if (samples.every((x) => x.apiHeap >= 0))
      check(floor(2 * third, samples.length, 'apiHeap') - floor(third, 2 * third, 'apiHeap') < 10, `the API process's heap floor grew from ${floor(third, 2 * third, 'apiHeap').toFixed(0)} to ${floor(2 * third, samples.length, 'apiHeap').toFixed(0)} MB`);
  }
  if (elapsed > maxAgeS * 1.5) check(spanS <= maxAgeS + 3 * INTERVAL_S, `the recording spans ${spanS.toFixed(0)} s (max age ${maxAgeS} s)`);
  if (maxBytes > 0) check(peak('bytes') <= maxBytes * 1.1, `the recording reached ${peak('bytes')} bytes (max ${maxBytes})`);

  if (v.samples) {
    const cols = ['t', 'rss', 'heap', 'apiRss', 'apiHeap', 'bytes', 'apiPid'] as const;
    writeFileSync(v.samples, [cols.join(','), ...samples.map((x) => cols.map((c) => (c === 't' || c === 'bytes' || c === 'apiPid' ? String(Math.round(x[c])) : x[c].toFixed(2))).join(','))].join('\n') + '\n');
  }
  const line = (k: string, x: string) => process.stdout.write(`${k.padEnd(22)} ${x}\n`);
  line('duration', `${elapsed.toFixed(0)} s, source ${status0.source}, interval ${INTERVAL_S} s`);
  line('storm', `${sent} drops sent (${(sent / elapsed / 1e6).toFixed(2)} M/s), ${st.drops} counted, ${st.lost} events lost`);
  line('intervals', `${st.intervals} closed; memory ${mem.length} (${memGaps} gaps); recording ${recIntervals} (${recGaps} gaps), spans ${spanS.toFixed(0)} s`);
  line('event streams', `${streamed} intervals received on ${Number(v.streams)} streams (${streamOpens} opened), ${streamGaps} gaps`);
  line('API', `${latencies.length} answers ${JSON.stringify(Object.fromEntries(answers))}; median ${median(latencies).toFixed(1)} ms, slowest ${slowest.ms.toFixed(0)} ms (${slowest.path})`);
  line('RSS (MB)', `middle ${mid('rss').toFixed(1)}, end ${last('rss').toFixed(1)}, peak ${peak('rss').toFixed(1)} (${samples.length} samples)`);
  line('API process RSS (MB)', `middle ${mid('apiRss').toFixed(1)}, end ${last('apiRss').toFixed(1)}, peak ${peak('apiRss').toFixed(1)}; pid ${[...apiPids].join(', ')}`);
  line('API heap used (MB)', `floor: middle ${floor(third, 2 * third, 'apiHeap').toFixed(1)}, end ${floor(2 * third, samples.length, 'apiHeap').toFixed(1)}; peak ${Math.max(...samples.map((x) => x.apiHeap)).toFixed(1)}`);
  line('heap used (MB)', `floor: middle ${floor(third, 2 * third).toFixed(1)}, end ${floor(2 * third, samples.length).toFixed(1)}; median: middle ${mid('heap').toFixed(1)}, end ${last('heap').toFixed(1)}; peak ${peak('heap').toFixed(1)}`);
  line('recording', `peak ${(peak('bytes') / 2 ** 20).toFixed(2)} MiB of ${v['max-size']}, now ${(recordingBytes() / 2 ** 20).toFixed(2)} MiB; max age ${v['max-age']}`);
  line('result', failures.length ? `FAIL\n  ${failures.join('\n  ')}` : 'PASS');
}

let code = 0;
try {
  await main();
  code = failures.length ? 1 : 0;
} catch (err) {
  process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
  code = 1;
} finally {
  await cleanup();
  if (code && serveErr) process.stderr.write(`soak: the service said:\n${serveErr.split('\n').slice(-30).join('\n')}\n`);
}
process.exit(code);
