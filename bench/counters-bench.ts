/**
 * Benchmark of the counters source (npm run bench:counters):
 *  1. a snapshot of every counter family in a namespace with 100 veth pairs
 *     (200 interfaces, a qdisc with a class on each), median of several runs,
 *     against a baseline measured in the same run: the usual tools reading the
 *     same families (ip -s link, tc -s qdisc/class, nstat, ethtool -S per
 *     interface, cat of the /proc files);
 *  2. `dropmon counters --watch` at a 1 s interval: its CPU use, from
 *     /proc/PID/stat, over a fixed window;
 *  3. host-wide reading (what diagnose, watch and serve do by default) with
 *     100 more namespaces (lo up in each): every namespace read in each 1 s
 *     interval, the CPU of the other namespaces' reads (the host-wide sampler
 *     minus dropmon's own namespace read alongside) as % of a core, median of
 *     several runs. ONLY=namespaces runs this case alone.
 * Root only; everything happens in namespaces created and deleted here.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveNetns } from '../src/kernel/setns.js';
import { CounterSampler, takeSnapshot } from '../src/sources/counters/snapshot.js';
import { HostCounterSampler } from '../src/sources/counters/host-sampler.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const PAIRS = Number(process.env.PAIRS ?? 100);
const RUNS = Number(process.env.RUNS ?? 9);
const WATCH_S = Number(process.env.WATCH_S ?? 20);
const NS = `dmbench-${process.pid}`;
const NAMESPACES = Number(process.env.NAMESPACES ?? 100);
const NS_RUNS = Number(process.env.NS_RUNS ?? 5);
const NS_WINDOW = Number(process.env.NS_WINDOW ?? 10);
const MANY = Array.from({ length: NAMESPACES }, (_, i) => `${NS}-n${i}`);

const sh = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function setup(): void {
  sh('ip', ['netns', 'add', NS]);
  // One batch for ip and one for tc: creating 200 interfaces one command at a time takes minutes.
  let ipBatch = 'link set lo up\n';
  let tcBatch = '';
  for (let i = 0; i < PAIRS; i++) {
    ipBatch += `link add bva${i} type veth peer name bvb${i}\nlink set bva${i} up\nlink set bvb${i} up\n`;
    tcBatch += `qdisc add dev bva${i} root handle 1: htb default 10\nclass add dev bva${i} parent 1: classid 1:10 htb rate 100mbit\n`;
  }
  sh('ip', ['-n', NS, '-batch', '-'], ipBatch);
  sh('ip', ['netns', 'exec', NS, 'tc', '-batch', '-'], tcBatch);
}

function cleanup(): void {
  for (const n of [NS, ...MANY]) {
    try {
      sh('ip', ['netns', 'delete', n]);
    } catch {
      /* gone */
    }
  }
}

/** The usual tools reading the same families, in the same namespace. */
function baselineOnce(): number {
  const t0 = performance.now();
  const inNs = (cmd: string, args: string[]) => sh('ip', ['netns', 'exec', NS, cmd, ...args]);
  inNs('ip', ['-s', '-s', 'link', 'show']);
  inNs('tc', ['-s', 'qdisc', 'show']);
  inNs('tc', ['-s', 'class', 'show', 'dev', 'bva0']);
  inNs('nstat', ['-az']);
  inNs('cat', ['/proc/net/softnet_stat', '/proc/net/stat/nf_conntrack', '/proc/net/udp', '/proc/net/udp6', '/proc/net/raw', '/proc/net/dev'].filter((f) => {
    try {
      readFileSync(f);
      return true;
    } catch {
      return false;
    }
  }));
  for (let i = 0; i < PAIRS; i++) inNs('ethtool', ['-S', `bva${i}`]);
  return performance.now() - t0;
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime
}

async function watchCost(): Promise<{ cores: number; samples: number }> {
  const child = spawn(process.execPath, [CLI, 'counters', '--watch', '--netns', NS, '--json', '-i', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lines = 0;
  child.stdout.on('data', (d: Buffer) => (lines += d.toString().split('\n').length - 1));
  await new Promise((r) => setTimeout(r, 3000)); // start-up (module loading) is not the steady cost
  const hz = 100;
  const t0 = cpuTicks(child.pid!);
  const w0 = Date.now();
  const l0 = lines;
  await new Promise((r) => setTimeout(r, WATCH_S * 1000));
  const t1 = cpuTicks(child.pid!);
  const w1 = Date.now();
  child.kill('SIGINT');
  await new Promise((r) => child.on('close', r));
  return { cores: (t1 - t0) / hz / ((w1 - w0) / 1000), samples: lines - l0 };
}

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/**
 * Host-wide: NAMESPACES idle namespaces besides whatever the host has. Each
 * run is NS_WINDOW intervals at the real 1 s pace (the registry looks at the
 * processes every few seconds); in each, the host-wide sampler reads every
 * namespace and a single-namespace sampler reads dropmon's own with the same
 * options, so that the difference is what the other namespaces cost.
 */
async function namespacesCost(): Promise<void> {
  sh('ip', ['-batch', '-'], MANY.map((n) => `netns add ${n}\n`).join(''));
  for (const n of MANY) sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  const own = { sockets: 'drops' as const };
  const host = new HostCounterSampler({ own });
  const alone = new CounterSampler(own);
  try {
    let t = cpuMs();
    const b = host.baseline();
    const baselineMs = cpuMs() - t;
    alone.baseline();
    console.log(`host-wide: ${b.skipped.of} namespaces besides dropmon's own (${NAMESPACES} made here); baseline read in ${baselineMs.toFixed(0)} ms of CPU, ${b.skipped.namespaces} left for later`);
    const percents: number[] = [];
    const ownPercents: number[] = [];
    let unread = 0;
    for (let run = 0; run < NS_RUNS; run++) {
      let hostMs = 0;
      let ownMs = 0;
      for (let i = 0; i < NS_WINDOW; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        t = cpuMs();
        const s = host.sample();
        hostMs += cpuMs() - t;
        t = cpuMs();
        alone.sample();
        ownMs += cpuMs() - t;
        unread += s.snapshot.skipped.namespaces;
      }
      // ms of CPU per 1000 ms interval, as % of a core.
      percents.push(((hostMs - ownMs) / NS_WINDOW / 1000) * 100);
      ownPercents.push((ownMs / NS_WINDOW / 1000) * 100);
    }
    const m = median(percents);
    console.log(
      `host-wide, ${b.skipped.of} other namespaces read every 1 s interval: median ${m.toFixed(2)} % of a core over ${NS_RUNS} runs of ${NS_WINDOW} intervals ` +
        `(runs: ${percents.map((p) => p.toFixed(2)).join(', ')}; namespaces left unread: ${unread}); dropmon's own namespace alone: median ${median(ownPercents).toFixed(2)} %; target <= 2 %`,
    );
  } finally {
    host.close();
    cleanup();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:counters needs root (network namespaces)');
    process.exit(1);
  }
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));
  if (process.env.ONLY === 'namespaces') {
    await namespacesCost();
    return;
  }
  setup();
  const target = resolveNetns(NS);
  try {
    const first = takeSnapshot({ netns: target });
    console.log(`namespace with ${PAIRS} veth pairs: ${first.readings.length} counter readings, ${first.links.size} links; errors: ${first.errors.length ? first.errors.join('; ') : 'none'}`);
    const ours: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      ours.push(takeSnapshot({ netns: target }).tookMs);
      if (i < 3) base.push(baselineOnce()); // the tools are slow: three runs suffice
    }
    const noDriver: number[] = [];
    for (let i = 0; i < RUNS; i++) noDriver.push(takeSnapshot({ netns: target, ethtoolDriver: false }).tookMs);
    const m = median(ours);
    console.log(`snapshot, all families:            median ${m.toFixed(1)} ms over ${RUNS} runs (min ${Math.min(...ours).toFixed(1)}, max ${Math.max(...ours).toFixed(1)}); target <= 200 ms`);
    console.log(`snapshot without ethtool -S:       median ${median(noDriver).toFixed(1)} ms`);
    console.log(`baseline (ip, tc, nstat, ethtool -S, cat): median ${median(base).toFixed(0)} ms over ${base.length} runs`);
    console.log(`ratio dropmon / baseline: ${(m / median(base)).toFixed(3)}`);
    const w = await watchCost();
    console.log(`counters --watch -i 1 on this namespace: ${(w.cores * 100).toFixed(2)} % of a core over ${WATCH_S} s (${w.samples} intervals); target <= 1 %`);
  } finally {
    cleanup();
  }
  await namespacesCost();
}

main().catch((err) => {
  console.error(err);
  cleanup();
  process.exit(1);
});
