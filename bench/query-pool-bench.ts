/**
 * What replacing the API's query threads costs, and what it saves: the same
 * stream of range questions (points, series, diagnosis in turn, two at a
 * time, as the soak's clients ask them) answered by threads kept for good
 * (the baseline), by threads replaced after the default share of questions,
 * and by a new thread for every question (the start's cost, laid bare).
 * Each configuration runs in a fresh process so that its memory is its own:
 * time per question and resident memory at the end, medians of several runs,
 * ratios against the baseline of the same run. No kernel needed.
 *
 *   npm run bench:queries [-- --runs 5 --questions 6000]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Recorder } from '../src/recording/recorder.js';
import { QueryPool } from '../src/service/query-pool.js';
import type { RecordingQuery } from '../src/service/recording-queries.js';
import { syntheticInterval } from '../test/recording/synthetic.js';

const { values: opt } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, questions: { type: 'string', default: '6000' }, child: { type: 'string' }, file: { type: 'string' } },
});
const QUESTIONS = Number(opt.questions);

/** One configuration in this (fresh) process: prints "msPerQuestion rssMb threadsStarted cpuMsPerQuestion". */
async function child(perThread: number, file: string): Promise<void> {
  const pool = new QueryPool(() => ({ workers: 2, queue: 16, timeoutMs: 20_000 }), { questionsPerThread: perThread });
  const range = { from: 0, to: Number.MAX_SAFE_INTEGER };
  const questions: RecordingQuery[] = [{ kind: 'points', range, top: 50 }, { kind: 'series', range, buckets: 60 }, { kind: 'diagnosis', range, rows: 200 }];
  let asked = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async () => {
    while (asked < QUESTIONS) await pool.ask(file, questions[asked++ % questions.length]);
  };
  await Promise.all([loop(), loop()]);
  const ms = (performance.now() - t0) / QUESTIONS;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000 / QUESTIONS;
  const rss = process.memoryUsage().rss / 2 ** 20;
  const started = pool.started;
  await pool.close();
  process.stdout.write(`${ms} ${rss} ${started} ${cpuMs}\n`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-bench-queries-'));
  try {
    // Two minutes of one-second intervals over 50 drop points: the size the soak's recording keeps.
    const file = join(dir, 'rec.db');
    const w = new Recorder(file, { source: 'bpf' });
    const t0 = Date.now() - 120_000;
    for (let s = 1; s <= 120; s++) w.record({ interval: syntheticInterval(s, t0, 1000, { points: 50, reasons: ['NO_SOCKET', 'NETFILTER_DROP', 'SOCKET_RCVBUFF'] }) });
    w.close();
    const self = fileURLToPath(import.meta.url);
    const configs: [string, number][] = [['kept (baseline)', Number.MAX_SAFE_INTEGER], ['replaced per 1000 (default)', 1000], ['new per question', 1]];
    const results = new Map<string, { ms: number[]; rss: number[]; cpu: number[]; started: number }>(configs.map(([n]) => [n, { ms: [], rss: [], cpu: [], started: 0 }]));
    for (let r = 0; r < Number(opt.runs); r++)
      for (const [name, perThread] of configs) {
        const n = name === 'new per question' ? Math.min(QUESTIONS, 600) : QUESTIONS;
        const out = spawnSync(process.execPath, [self, '--child', String(perThread), '--file', file, '--questions', String(n)], { encoding: 'utf8' });
        if (out.status !== 0) throw new Error(`${name}: ${out.stderr}`);
        const [ms, rss, started, cpu] = out.stdout.trim().split(' ').map(Number);
        const res = results.get(name)!;
        res.ms.push(ms);
        res.cpu.push(cpu);
        res.rss.push(rss);
        res.started = started;
      }
    const base = results.get(configs[0][0])!;
    process.stdout.write(`query threads: ${QUESTIONS} range questions, 2 at a time, median of ${opt.runs} runs (fresh process each)\n`);
    process.stdout.write(`${'threads'.padEnd(28)} ${'ms/question'.padStart(11)} ${'ratio'.padStart(6)} ${'CPU ms/q'.padStart(9)} ${'ratio'.padStart(6)} ${'RSS MB'.padStart(7)} ${'ratio'.padStart(6)} ${'started'.padStart(8)}\n`);
    for (const [name] of configs) {
      const x = results.get(name)!;
      process.stdout.write(
        `${name.padEnd(28)} ${median(x.ms).toFixed(3).padStart(11)} ${(median(x.ms) / median(base.ms)).toFixed(2).padStart(6)} ${median(x.cpu).toFixed(3).padStart(9)} ${(median(x.cpu) / median(base.cpu)).toFixed(2).padStart(6)} ${median(x.rss).toFixed(1).padStart(7)} ${(median(x.rss) / median(base.rss)).toFixed(2).padStart(6)} ${String(x.started).padStart(8)}\n`,
      );
    }
    // Per thread started beyond the baseline's: the extra CPU, and the extra wall time of the whole stream (two questions at a time).
    const fresh = results.get('new per question')!;
    const extra = fresh.started - base.started;
    const n = Math.min(QUESTIONS, 600);
    const cpuPerStart = ((median(fresh.cpu) - median(base.cpu)) * n) / extra;
    const wallPerStart = ((median(fresh.ms) - median(base.ms)) * n) / extra;
    process.stdout.write(`a thread started and ended: ${cpuPerStart.toFixed(1)} ms of CPU, ${wallPerStart.toFixed(1)} ms more for the stream to be answered (new per question against the baseline)\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (opt.child) await child(Number(opt.child), opt.file!);
else await main();
