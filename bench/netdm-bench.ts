/**
 * NET_DM summary vs packet mode vs the tracefs source on the same drop storm,
 * inside the test VM (`npm run bench:netdm` runs it there through
 * scripts/kernel-vm.sh). The VM is emulated: absolute times mean nothing,
 * only ratios within one run do. Sender CPU ns per drop is the cost of a
 * drop; "recorded" is what dropmon reported of the drops caused.
 */
import { spawn, execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { dropgenBinary, parseDropgen, PROJECT_ROOT } from '../test/helpers/dropgen.js';

const { values: opt } = parseArgs({ options: { reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '3' } } });
const REPS = Number(opt.reps), DUR = Number(opt.duration);
const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'dropmon-netdm-bench-'));
type Config = 'baseline' | 'tracefs' | 'netdm-summary' | 'netdm-packet';
const CONFIGS: Config[] = ['baseline', 'tracefs', 'netdm-summary', 'netdm-packet'];

async function run(config: Config) {
  let child;
  const file = join(work, 'out.jsonl');
  if (config !== 'baseline') {
    const args = config === 'tracefs' ? ['--source', 'tracefs', '--protocol', '0x88b5'] : ['--source', 'netdm', '--mode', config === 'netdm-packet' ? 'packet' : 'summary', ...(config === 'netdm-packet' ? ['--trunc', '64'] : [])];
    const fd = openSync(file, 'w');
    child = spawn(process.execPath, [CLI, 'watch', '--json', ...args], { stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 600 && !err.includes('watching'); i++) await sleep(50);
    if (!err.includes('watching')) throw new Error(`${config}: dropmon did not start: ${err}`);
  }
  const { stdout } = await exec(dropgenBinary(), ['-m', 'ethproto', '-d', String(DUR), '-c', '0']);
  const g = parseDropgen(stdout);
  let recorded = NaN, lost = NaN;
  if (child) {
    await sleep(3000); // the last summary alert comes ~1 s after the last new drop point
    const closed = new Promise((r) => child.on('close', r));
    child.kill('SIGINT');
    await closed;
    const out = readFileSync(file, 'utf8');
    recorded = 0;
    lost = 0;
    for (const l of out.split('\n')) {
      if (!l) continue;
      const o = JSON.parse(l) as { type: string; count?: number; function?: string | null; lost_events?: number };
      if (o.type === 'drop' && o.function?.startsWith('__netif_receive_skb_core')) recorded += o.count ?? 0;
      if (o.type === 'interval') lost += o.lost_events ?? 0;
    }
  }
  return { config, ns: g.nsPerPkt, sent: g.sent, recorded, lost };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const rows: Awaited<ReturnType<typeof run>>[] = [];
try {
  for (let r = 1; r <= REPS; r++)
    for (const c of CONFIGS) {
      const x = await run(c);
      rows.push(x);
      console.error(`netdm-bench: rep ${r} ${c}: ${x.ns.toFixed(0)} ns/drop, recorded ${x.recorded}/${x.sent}, lost ${x.lost}`);
    }
  const base = median(rows.filter((x) => x.config === 'baseline').map((x) => x.ns));
  console.log(`\nmedians of ${REPS} runs of ${DUR} s in the VM (emulated: compare ratios only)`);
  console.log('config          ns/drop  x baseline  added ns vs tracefs-added  recorded/caused  lost');
  const tr = median(rows.filter((x) => x.config === 'tracefs').map((x) => x.ns)) - base;
  for (const c of CONFIGS) {
    const rs = rows.filter((x) => x.config === c);
    const ns = median(rs.map((x) => x.ns));
    const rec = rs.reduce((s, x) => s + (x.recorded || 0), 0), sent = rs.reduce((s, x) => s + x.sent, 0);
    console.log(
      `${c.padEnd(14)}  ${ns.toFixed(0).padStart(7)}  ${(ns / base).toFixed(2).padStart(10)}  ${c === 'baseline' ? '' : ((ns - base) / tr).toFixed(2).padStart(24)}` +
        `  ${c === 'baseline' ? '' : `${((100 * rec) / sent).toFixed(2)} %`.padStart(15)}  ${c === 'baseline' ? '' : rs.reduce((s, x) => s + (x.lost || 0), 0)}`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
