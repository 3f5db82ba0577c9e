/**
 * What the API's own process costs the monitor per interval: the interval
 * message (its JSON form, the report, status and config) serialized and
 * framed for the channel, against the baseline every interval already paid
 * before the split (the JSON text of the interval for the event streams),
 * measured in the same run. Also what the API process pays to read it. From
 * 20 points (a quiet host) to 1,000 (the default maxPoints: a storm over
 * many places). No kernel needed.
 *
 *   npm run bench:api [-- --runs 7]
 */
import { parseArgs } from 'node:util';
import { deserialize, serialize } from 'node:v8';
import { encodeFrame } from '../src/service/api-frames.js';
import { configForApi } from '../src/service/api-process.js';
import { DEFAULT_CONFIG } from '../src/service/config.js';
import { intervalJson } from '../src/service/interval-json.js';
import { loadKnowledge } from '../src/knowledge/load.js';
import { Symbolizer } from '../src/kernel/kallsyms.js';
import type { Attribution } from '../src/core/attribution.js';
import { syntheticInterval } from '../test/recording/synthetic.js';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const RUNS = Number(opt.runs);
const REPEAT = 200;

const kb = loadKnowledge();
const symbols = new Symbolizer();
const attribution: Attribution = { netns: () => ({ name: 'web-1' }), ifname: () => 'eth0', initInode: 4026531840, ownInode: 4026531840 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median microseconds of one `fn()` over RUNS runs of REPEAT calls. */
function time(fn: () => unknown): number {
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < REPEAT; i++) fn();
    runs.push(Number(process.hrtime.bigint() - t0) / REPEAT / 1000);
  }
  return median(runs);
}

process.stdout.write(`api channel: per interval message, median of ${RUNS} runs of ${REPEAT}\n`);
process.stdout.write(`${'points'.padStart(7)} ${'bytes'.padStart(9)} ${'baseline us'.padStart(12)} ${'monitor us'.padStart(11)} ${'ratio'.padStart(6)} ${'api us'.padStart(8)}\n`);
for (const points of [20, 200, 1000]) {
  const report = syntheticInterval(1, Date.now(), 1000, { points, reasons: ['NO_SOCKET', 'NETFILTER_DROP', 'SOCKET_RCVBUFF'] });
  const json = intervalJson(report, symbols, attribution, kb);
  const shown = { config: configForApi(DEFAULT_CONFIG), status: { state: 'running', drops: 1, intervals: 1 } };
  const message = { t: 'interval', json, report, shown, names: { netns: [[4026532000, { name: 'web-1' }]], ifnames: [] } };
  const baseline = time(() => JSON.stringify(json));
  const monitor = time(() => encodeFrame(serialize(message)));
  const frame = serialize(message);
  const api = time(() => deserialize(frame));
  process.stdout.write(
    `${String(points).padStart(7)} ${String(frame.length).padStart(9)} ${baseline.toFixed(1).padStart(12)} ${monitor.toFixed(1).padStart(11)} ${(monitor / baseline).toFixed(2).padStart(6)} ${api.toFixed(1).padStart(8)}\n`,
  );
}
