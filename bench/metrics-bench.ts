/**
 * /metrics scrape time with about 1,000 series (the target: <= 50 ms).
 * Builds the service's metrics as a busy host would fill them: drops over
 * many reasons, kernel functions and protocols (up to the label bounds), and
 * hundreds of kernel drop counters, then scrapes them over HTTP several times
 * and prints the median. No kernel needed: the series are what matters.
 *
 *   npm run bench:metrics [-- --runs 20 --series 1000]
 */
import { createServer, request } from 'node:http';
import { parseArgs } from 'node:util';
import type { IntervalReport, DropPoint } from '../src/core/interval.js';
import type { CounterReading } from '../src/core/counter.js';
import { loadKnowledge } from '../src/knowledge/load.js';
import { ServiceMetrics } from '../src/service/metrics.js';
import { KallsymsTable, Symbolizer } from '../src/kernel/kallsyms.js';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '20' }, series: { type: 'string', default: '1000' } } });
const RUNS = Number(opt.runs);
const SERIES = Number(opt.series);

const kb = loadKnowledge();
const reasons = kb.all('reason').slice(0, 20).map((e) => e.name);
const protocols = [0x0800, 0x86dd, 0x0806, 0x88b5];
// Half the series are drops (reason x location x protocol), half kernel counters.
const dropSeries = Math.floor(SERIES / 2);
const counterSeries = SERIES - dropSeries;
const locations = Math.ceil(dropSeries / (reasons.length * protocols.length));
// One kernel function per location: /metrics labels drops with function names, never addresses.
const symbols = new Symbolizer(
  KallsymsTable.parse(Array.from({ length: locations + 1 }, (_, l) => `${(0xffffffff81000000n + BigInt(l * 0x100)).toString(16)} t bench_fn${l}`).join('\n') + '\n'),
);
const metrics = new ServiceMetrics({ topLocations: locations, maxCounterSeries: counterSeries }, kb, symbols, undefined);

const points: DropPoint[] = [];
let n = 0;
for (let l = 0; l < locations && n < dropSeries; l++)
  for (const reasonName of reasons)
    for (const protocol of protocols) {
      if (n++ >= dropSeries) break;
      points.push({ location: 0xffffffff81000000n + BigInt(l * 0x100), reason: 2, reasonName, protocol, origin: 'software', count: 1 + (n % 97) });
    }
const report: IntervalReport = {
  start: Date.now() - 1000,
  end: Date.now(),
  seq: 1,
  points,
  overflow: { drops: 0, points: 0, pointsCapped: false },
  drops: points.reduce((s, p) => s + p.count, 0),
  lost: new Map([['ring-buffer overrun cpu0', 3]]),
  lostTotal: 3,
};
for (let i = 0; i < 10; i++) metrics.interval(report);
const readings: CounterReading[] = Array.from({ length: counterSeries }, (_, i) => ({
  name: 'link:rx_dropped',
  scope: `veth${i}`,
  layer: 'nic',
  value: 1000 + i,
  source: 'bench',
}));
metrics.setCounters(readings);
metrics.setSourceUp(true);

const server = createServer((_req, res) => {
  void metrics.scrape().then((m) => {
    res.writeHead(200, { 'content-type': m.contentType });
    res.end(m.body);
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;

function scrape(): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ ms: performance.now() - t0, body }));
    })
      .on('error', reject)
      .end();
  });
}

const times: number[] = [];
let series = 0;
await scrape(); // warm-up
for (let i = 0; i < RUNS; i++) {
  const r = await scrape();
  times.push(r.ms);
  series = r.body.split('\n').filter((l) => l && !l.startsWith('#')).length;
}
server.close();
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
const dropmonSeries = (await metrics.scrape()).body.split('\n').filter((l) => l.startsWith('dropmon_')).length;
process.stdout.write(
  `/metrics over HTTP: ${series} series (${dropmonSeries} dropmon_*, the rest process/nodejs), ${RUNS} scrapes: ` +
    `median ${median.toFixed(2)} ms, min ${times[0].toFixed(2)} ms, max ${times[times.length - 1].toFixed(2)} ms (target <= 50 ms)\n`,
);
