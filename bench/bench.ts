/**
 * `npm run bench`: what dropmon costs on a drop storm, against baselines
 * measured in the same run.
 *
 * Configurations, interleaved in every repetition so drift hits all of them:
 *   baseline  no tracing: the physical cost of a drop
 *   enabled   skb:kfree_skb enabled in an instance, nobody reading (the tracepoint's own cost)
 *   dropmon     `dropmon watch --json --source tracefs` reading that event live
 *   bpf-counts  the BPF source's program keyed by (location, reason, protocol) only,
 *               loaded in this process (the cheapest in-kernel counting)
 *   bpf         `dropmon watch --json --source bpf --no-counters`: keyed by
 *               interface and network namespace too (what users run; without
 *               the counter sampling, so the CPU measured is the source's)
 *   bpf-hash    the same program and filters without the per-CPU slots (every
 *               drop looked up in the hash map), loaded in this process
 *   bpf-nop     an empty program on the tracepoint: the floor any BPF program pays
 *   bpftrace    bpftrace's tracepoint + count() map, for comparison
 * Senders are pinned from cpu0 up (1 sender: dropmon has the other core).
 * Main metric: sender CPU ns per drop (on loopback the receive path and the drop
 * run in the sender's context, so this is the cost of one drop). The machine is
 * small and may be shared: medians of several runs, ratios within one run.
 */
import { spawn, execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { TracefsInstance } from '../src/sources/tracefs/instance.js';
import { findTracefs } from '../src/sources/tracefs/tracefs.js';
import { KFREE_SKB } from '../src/sources/tracefs/source.js';
import { dropgenBinary, parseDropgen, PROJECT_ROOT } from '../test/helpers/dropgen.js';
import { BpfDropSource } from '../src/sources/bpf/source.js';
import { vmlinuxBtf } from '../src/sources/bpf/availability.js';
import { checkKfreeSkbPrototype } from '../src/sources/bpf/layout.js';
import { AttachType, ProgType, attachTracing, closeFd, loadProgram } from '../src/kernel/bpf/syscall.js';
import { Asm, R0 } from '../src/kernel/bpf/asm.js';
import { currentNetnsInode } from '../src/kernel/setns.js';

const ALL_CONFIGS = 'baseline,enabled,dropmon,bpf-nop,bpf-counts,bpf-hash,bpf,bpftrace';
const DEFAULT_CONFIGS = 'baseline,enabled,dropmon,bpf-counts,bpf,bpftrace';
const HELP = `Usage: npm run bench -- [--reps N] [--duration SEC] [--senders 1,2] [--configs LIST]
LIST: comma-separated, from ${ALL_CONFIGS}
(default ${DEFAULT_CONFIGS}).
As root. Prints a table of medians and dropmon's ratios against the baselines; with
baseline and enabled, each config's added cost paired per repetition, e.g. for the
BPF source's target:
  npm run bench -- --reps 9 --duration 3 --configs baseline,enabled,bpf-nop,bpf-hash,bpf`;

const { values: opt } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    senders: { type: 'string', default: '1,2' },
    configs: { type: 'string', default: DEFAULT_CONFIGS },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  console.error('bench: run as root (tracefs instances and raw sockets)');
  process.exit(1);
}

const REPS = Number(opt.reps), DUR = Number(opt.duration);
const SENDERS = opt.senders!.split(',').map(Number);
const CONFIGS = opt.configs!.split(',') as Config[];
type Config = 'baseline' | 'enabled' | 'dropmon' | 'bpf-nop' | 'bpf-counts' | 'bpf-hash' | 'bpf' | 'bpftrace';
const KNOWN = new Set(ALL_CONFIGS.split(','));
for (const c of CONFIGS) if (!KNOWN.has(c)) {
  console.error(`bench: unknown config ${c}\n${HELP}`);
  process.exit(2);
}
if (!(REPS >= 1) || !(DUR > 0) || SENDERS.some((n) => !(n >= 1))) {
  console.error(`bench: bad --reps, --duration or --senders\n${HELP}`);
  process.exit(2);
}
/** Configs that run a dropmon CLI process (its CPU, memory and start-up are measured). */
const CLI_ARGS: Partial<Record<Config, string[]>> = {
  dropmon: ['--source', 'tracefs', '--protocol', '0x88b5'],
  // counters off: the user CPU measured is the BPF source's own (the counter sampling costs the same with any source);
  // --interface lo (compared in the kernel): other tenants' storms in other namespaces are not counted
  bpf: ['--source', 'bpf', '--protocol', '0x88b5', '--interface', 'lo', '--no-counters'],
};
const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const HZ = 100; // USER_HZ of /proc/PID/stat on Linux
const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = findTracefs();
const gen = dropgenBinary();
const work = mkdtempSync(join(tmpdir(), 'dropmon-bench-'));

interface Run {
  config: Config;
  senders: number;
  rep: number;
  /** Whole-machine busy and steal time during the generator, in cores (other tenants show here). */
  busyCores: number;
  stealCores: number;
  nsPerDrop: number;
  sent: number;
  recorded?: number;
  lost?: number;
  cpuS?: number;
  rssMb?: number;
  firstIntervalS?: number;
  /** BTF parse + load + attach, as the BPF source reports it. */
  startupMs?: number;
}

function procTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /, '').split(' ');
  return Number(f[11]) + Number(f[12]);
}

function hwmMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** [busy, steal] jiffies of the whole machine from /proc/stat. */
function machineTicks(): [number, number] {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return [f[0] + f[1] + f[2] + f[5] + f[6], f[7] ?? 0];
}

let lastLoad = { busyCores: 0, stealCores: 0 };

async function generate(senders: number) {
  const [b0, s0] = machineTicks();
  const t0 = Date.now();
  const result = await generateOnly(senders);
  const [b1, s1] = machineTicks();
  const secs = (Date.now() - t0) / 1000;
  lastLoad = { busyCores: (b1 - b0) / HZ / secs, stealCores: (s1 - s0) / HZ / secs };
  return result;
}

async function generateOnly(senders: number) {
  const { stdout } = await exec(gen, ['-m', 'ethproto', '-d', String(DUR), '-P', String(senders), '-c', '0'], { timeout: (DUR + 60) * 1000 });
  return parseDropgen(stdout);
}

async function runOne(config: Config, senders: number, rep: number): Promise<Run> {
  const r = await measure(config, senders);
  return { ...r, rep, ...lastLoad };
}

type Measured = Omit<Run, 'rep' | 'busyCores' | 'stealCores'>;

async function measure(config: Config, senders: number): Promise<Measured> {
  if (config === 'baseline') {
    const g = await generate(senders);
    return { config, senders, nsPerDrop: g.nsPerPkt, sent: g.sent };
  }
  if (config === 'enabled') {
    const inst = TracefsInstance.create(root, `dropmon-bench-${process.pid}`);
    try {
      inst.setBufferKb(8192);
      inst.enableEvent(KFREE_SKB);
      const g = await generate(senders);
      return { config, senders, nsPerDrop: g.nsPerPkt, sent: g.sent };
    } finally {
      inst.remove();
    }
  }
  if (config === 'bpf-nop') return bpfNop(senders);
  if (config === 'bpf-counts' || config === 'bpf-hash') {
    let recorded = 0, lost = 0;
    // bpf-hash: the `bpf` config's program and filters (--interface lo), without the slots
    const src = new BpfDropSource(config === 'bpf-counts' ? { attribution: false } : { slots: false, netns: currentNetnsInode(), ifindex: 1 });
    await src.start({
      drops: (ss) => {
        for (const x of ss) if (x.reasonName === 'UNHANDLED_PROTO' && x.protocol === 0x88b5) recorded += x.count;
      },
      loss: (l) => (lost += l.lost),
    });
    try {
      const g = await generate(senders);
      src.drain();
      const t = src.startup;
      return { config, senders, nsPerDrop: g.nsPerPkt, sent: g.sent, recorded, lost, startupMs: t.btfMs + t.loadMs + t.attachMs };
    } finally {
      src.close();
    }
  }
  if (config === 'bpftrace') return bpftrace(senders);
  // a dropmon process: output to a file, so a slow bench never back-pressures it
  const outFile = join(work, 'dropmon.jsonl');
  const out = openSync(outFile, 'w');
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, 'watch', '--json', ...(CLI_ARGS[config] ?? [])], { stdio: ['ignore', out, 'pipe'] });
  closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  const pid = child.pid!;
  let firstIntervalS = NaN;
  for (let i = 0; i < 500; i++) {
    if (readFileSync(outFile, 'latin1').includes('"type":"interval"')) {
      firstIntervalS = (Date.now() - t0) / 1000;
      break;
    }
    if (child.exitCode !== null) throw new Error(`dropmon exited: ${stderr}`);
    await sleep(10);
  }
  const c0 = procTicks(pid);
  const g = await generate(senders);
  // let it drain what is buffered: until its CPU stops growing (or 10 s)
  let last = procTicks(pid);
  for (let i = 0; i < 40; i++) {
    await sleep(250);
    const now = procTicks(pid);
    if (now - last <= 1) break;
    last = now;
  }
  const cpuS = (procTicks(pid) - c0) / HZ;
  await sleep(1100); // one more interval line
  const rssMb = hwmMb(pid);
  child.kill('SIGINT');
  const code = await exited;
  if (code !== 0) throw new Error(`dropmon exit ${code}: ${stderr}`);
  let recorded = 0, lost = 0;
  for (const line of readFileSync(outFile, 'utf8').split('\n')) {
    if (!line) continue;
    const o = JSON.parse(line) as { type: string; count?: number; reason?: string; lost_events?: number };
    if (o.type === 'drop' && o.reason === 'UNHANDLED_PROTO') recorded += o.count ?? 0;
    if (o.type === 'interval') lost += o.lost_events ?? 0;
  }
  const startup = /start-up (\d+) ms/.exec(stderr);
  return { config, senders, nsPerDrop: g.nsPerPkt, sent: g.sent, recorded, lost, cpuS, rssMb, firstIntervalS, ...(startup ? { startupMs: Number(startup[1]) } : {}) };
}

/** An empty tp_btf program on kfree_skb (r0 = 0; exit): the tracepoint's dispatch to BPF, nothing else. */
async function bpfNop(senders: number): Promise<Measured> {
  const { id } = checkKfreeSkbPrototype(vmlinuxBtf());
  const prog = loadProgram({ type: ProgType.TRACING, insns: new Asm().movImm(R0, 0).exit().assemble(), name: 'dropmon_nop', expectedAttachType: AttachType.TRACE_RAW_TP, attachBtfId: id });
  try {
    const link = attachTracing(prog);
    try {
      const g = await generate(senders);
      return { config: 'bpf-nop', senders, nsPerDrop: g.nsPerPkt, sent: g.sent };
    } finally {
      closeFd(link.fd);
    }
  } finally {
    closeFd(prog);
  }
}

/** bpftrace counting by (location, reason) in a map, as the research campaign ran it. */
async function bpftrace(senders: number): Promise<Measured> {
  const child = spawn('bpftrace', ['-e', 'tracepoint:skb:kfree_skb { @[args->location, args->reason] = count(); }'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => {
    child.on('close', (c) => r(c));
    child.on('error', () => r(-1));
  });
  for (let i = 0; i < 600 && !/Attaching/.test(stdout); i++) {
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  if (!/Attaching/.test(stdout)) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`bpftrace did not start (is it installed? apt-get install bpftrace): ${stderr.trim().split('\n').pop() ?? ''}`);
  }
  const pid = child.pid!;
  const c0 = procTicks(pid);
  const g = await generate(senders);
  const cpuS = (procTicks(pid) - c0) / HZ;
  child.kill('SIGINT');
  await exited;
  // "@[0xffffffff81abcdef, 74]: 12345" (all drops of the host in the window)
  let recorded = 0;
  for (const m of stdout.matchAll(/^@\[.*\]: (\d+)$/gm)) recorded += Number(m[1]);
  return { config: 'bpftrace', senders, nsPerDrop: g.nsPerPkt, sent: g.sent, recorded, lost: 0, cpuS };
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main() {
  const runs: Run[] = [];
  const total = REPS * SENDERS.length * CONFIGS.length;
  let n = 0;
  console.error(`bench: ${total} runs of ${DUR} s (ethproto drop storm on lo), configs ${CONFIGS.join(', ')}`);
  for (let rep = 1; rep <= REPS; rep++) {
    for (const senders of SENDERS) {
      // Rotated each repetition: no config always runs right after another (order effects cancel too).
      const order = CONFIGS.map((_, i) => CONFIGS[(i + rep - 1) % CONFIGS.length]);
      for (const config of order) {
        const r = await runOne(config, senders, rep);
        runs.push(r);
        console.error(
          `bench: [${++n}/${total}] rep ${rep} senders ${senders} ${config.padEnd(8)} ${f(r.nsPerDrop)} ns/drop, machine busy ${f(r.busyCores, 2)} steal ${f(r.stealCores, 2)} cores` +
            (r.recorded !== undefined ? `, recorded ${r.recorded}/${r.sent}, lost ${r.lost}, cpu ${f(r.cpuS!, 2)} s` : ''),
        );
      }
    }
  }
  console.log(`\nmedians of ${REPS} runs, ${DUR} s each; sender CPU ns per drop is the cost of one drop`);
  const steal = median(runs.map((r) => r.stealCores));
  const busiest = Math.max(...runs.map((r) => r.busyCores - r.senders));
  console.log(`machine: median steal ${f(steal, 2)} cores; most load beyond the senders in a run ${f(busiest, 2)} cores (other tenants make ns/drop noisy)`);
  console.log('senders  config       ns/drop  +ns vs baseline  drops/s    recorded/caused  lost  user cores  ns/event  RSS MB  first interval s  start-up ms');
  for (const senders of SENDERS) {
    const med = (c: Config, k: keyof Run) => median(runs.filter((r) => r.senders === senders && r.config === c).map((r) => Number(r[k])));
    const base = med('baseline', 'nsPerDrop');
    for (const c of CONFIGS) {
      const rs = runs.filter((r) => r.senders === senders && r.config === c);
      const ns = med(c, 'nsPerDrop');
      const rate = med(c, 'sent') / DUR;
      const line = [
        String(senders).padEnd(8),
        c.padEnd(12),
        f(ns).padStart(7),
        (c === 'baseline' ? '' : `+${f(ns - base)}`).padStart(15),
        `${f(rate / 1e6, 2)}M`.padStart(9),
      ];
      if (c !== 'baseline' && c !== 'enabled' && c !== 'bpf-nop') {
        const rec = rs.reduce((s, r) => s + (r.recorded ?? 0), 0), sent = rs.reduce((s, r) => s + r.sent, 0);
        const cores = median(rs.map((r) => (r.cpuS ?? NaN) / DUR));
        const nsEv = median(rs.map((r) => ((r.cpuS ?? NaN) * 1e9) / Math.max(1, r.recorded!)));
        line.push(`${f((100 * rec) / sent, 3)} %`.padStart(17), f(rs.reduce((s, r) => s + (r.lost ?? 0), 0)).padStart(5),
          f(cores, 4).padStart(11), f(nsEv).padStart(9), f(med(c, 'rssMb'), 1).padStart(7), f(med(c, 'firstIntervalS'), 2).padStart(17),
          f(med(c, 'startupMs')).padStart(12));
      }
      console.log(line.join('  '));
    }
    if (CONFIGS.includes('enabled') && CONFIGS.includes('dropmon') && CONFIGS.includes('baseline')) {
      const en = med('enabled', 'nsPerDrop') - base, dm = med('dropmon', 'nsPerDrop') - base;
      console.log(`${senders} sender(s): dropmon added ${f(dm)} ns/drop vs ${f(en)} for "enabled, nobody reading": ratio ${f(dm / en, 2)} (target <= 1.10)`);
      // Paired within each repetition (the three runs of a rep are seconds apart, so
      // slow drift from other tenants cancels); the median of those is the robust figure.
      const pairs: number[] = [], diffs: number[] = [];
      for (let rep = 1; rep <= REPS; rep++) {
        const get = (c: Config) => runs.find((r) => r.rep === rep && r.senders === senders && r.config === c)?.nsPerDrop ?? NaN;
        const b = get('baseline'), e = get('enabled'), d = get('dropmon');
        pairs.push((d - b) / (e - b));
        diffs.push(d - e);
      }
      console.log(`${senders} sender(s), paired per repetition: dropmon - enabled = ${diffs.map((x) => f(x)).join(', ')} ns/drop (median ${f(median(diffs))}); added-cost ratio median ${f(median(pairs), 2)}`);
    }
    // The BPF targets: added cost per drop <= 0.35x the bare ftrace event's, user-space CPU <= 1 % of a core, start-up <= 300 ms.
    if (CONFIGS.includes('bpf')) {
      const extra = `dropmon user CPU ${f(100 * med('bpf', 'cpuS') / DUR, 2)} % of a core (target <= 1 %); start-up ${f(med('bpf', 'startupMs'))} ms (target <= 300)`;
      console.log(`${senders} sender(s), bpf: ${extra}`);
    }
  }
  if (CONFIGS.includes('baseline') && CONFIGS.includes('enabled')) pairedTable(runs);
}

/**
 * Each config's added cost, paired per repetition: (config - baseline) of the
 * same repetition, and its ratio to (enabled - baseline) of that repetition;
 * medians over the repetitions. Drift that moves a whole repetition cancels.
 */
function pairedTable(runs: Run[]) {
  console.log(`\npaired per repetition, medians over ${REPS} reps: added ns/drop vs baseline, and that as a ratio of the bare ftrace event's ("enabled")`);
  console.log('senders  config       +ns/drop  ratio to enabled  ratio of medians  recorded/caused  lost');
  for (const senders of SENDERS) {
    const get = (rep: number, c: Config) => runs.find((r) => r.rep === rep && r.senders === senders && r.config === c);
    const added = (c: Config) => {
      const out: number[] = [];
      for (let rep = 1; rep <= REPS; rep++) out.push((get(rep, c)?.nsPerDrop ?? NaN) - (get(rep, 'baseline')?.nsPerDrop ?? NaN));
      return out;
    };
    const en = added('enabled');
    for (const c of CONFIGS) {
      if (c === 'baseline') continue;
      const a = added(c);
      const ratios = a.map((x, i) => x / en[i]);
      const rs = runs.filter((r) => r.senders === senders && r.config === c);
      const counted = rs.every((r) => r.recorded !== undefined);
      const rec = rs.reduce((s, r) => s + (r.recorded ?? 0), 0), sent = rs.reduce((s, r) => s + r.sent, 0);
      console.log([
        String(senders).padEnd(8),
        c.padEnd(12),
        `+${f(median(a))}`.padStart(8),
        f(median(ratios), 2).padStart(16),
        f(median(a) / median(en), 2).padStart(16),
        (counted ? `${rec}/${sent}` : '-').padStart(15),
        (counted ? f(rs.reduce((s, r) => s + (r.lost ?? 0), 0)) : '-').padStart(5),
      ].join('  '));
    }
  }
}

main()
  .catch((e: unknown) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
