/** Builds bench/dropgen.c once per test run and runs it, optionally inside a network namespace. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCE = join(PROJECT_ROOT, 'bench', 'dropgen.c');
let binary: string | undefined;

export function dropgenBinary(): string {
  // In the test VM there is no compiler: the host builds it and says where.
  if (process.env.DROPMON_DROPGEN) return process.env.DROPMON_DROPGEN;
  if (binary && existsSync(binary)) return binary;
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-dropgen-'));
  // One build per test process (each test file runs in its own): it goes with the process.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'dropgen');
  execFileSync('cc', ['-O2', '-Wall', '-o', out, SOURCE], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!statSync(out).isFile()) throw new Error('dropgen build failed');
  binary = out;
  return out;
}

export interface DropgenResult {
  sent: number;
  nsPerPkt: number;
  cpuS: number;
  line: string;
}

export function parseDropgen(line: string): DropgenResult {
  const get = (k: string) => Number(new RegExp(`\\b${k}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
  return { sent: get('sent'), nsPerPkt: get('ns_per_pkt'), cpuS: get('cpu_s'), line: line.trim() };
}

/** Run dropgen with ARGS, inside namespace NETNS when given; returns its parsed output. */
export function runDropgen(args: string[], netns?: string): DropgenResult {
  const bin = dropgenBinary();
  const cmd = netns ? ['ip', ['netns', 'exec', netns, bin, ...args]] as const : [bin, args] as const;
  const out = execFileSync(cmd[0], [...cmd[1]], { encoding: 'utf8', timeout: 60_000 });
  return parseDropgen(out);
}
