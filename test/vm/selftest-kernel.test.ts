/**
 * The kernel's own drop-monitor selftest (tools/testing/selftests/net/
 * drop_monitor_tests.sh of the running kernel's linux-source, unmodified)
 * with dropmon as its dwdump, then dropmon's own view of the same traffic:
 * while the selftest runs, `dropmon watch --passive` listens to every NET_DM
 * alert its dwdump runs cause, and the BPF source counts the drops by
 * interface. Runs inside the VM (selftest-vm.test.ts boots it); skips, saying
 * why, where the kernel, the selftest or its tools are missing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { netdmPresent } from '../helpers/env.js';
import { DropmonProcess } from '../helpers/dropmon.js';

const SELFTEST_DIR = process.env.DROPMON_SELFTEST_DIR ?? '/usr/share/kselftest/net';
const SELFTEST = join(SELFTEST_DIR, 'drop_monitor_tests.sh');
const TOOLS = ['ip', 'tc', 'devlink', 'tshark', 'mausezahn', 'udevadm', 'timeout'];

function has(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'not root';
  if (!netdmPresent()) return 'this kernel has no NET_DM (run through scripts/kernel-vm.sh, see test/vm/selftest-vm.test.ts)';
  if (!existsSync(SELFTEST)) return `no ${SELFTEST} (scripts/kernel-vm.sh extracts it from the kernel's linux-source)`;
  if (!existsSync('/sys/bus/netdevsim/new_device')) return 'no netdevsim in this kernel: the selftest needs its devlink traps';
  const missing = TOOLS.filter((t) => !has(t));
  if (missing.length) return `the selftest needs ${missing.join(', ')}`;
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the kernel's drop_monitor selftest: ${SKIP}\n`);

/**
 * What each kernel names the software drop. tc's egress drop is freed in
 * __dev_queue_xmit, where sch_handle_egress is inlined, with the reason
 * TC_EGRESS (added in 5.18; numbered 44 in 6.1, 53 in 6.12, so compared by
 * name). The symbol is NET_DM's own %pS. NET_DM names no interface for it:
 * its "input port" is skb->skb_iif, which a packet on its way out (sent by
 * mausezahn through a packet socket) does not have; the BPF source, which
 * reads skb->dev, names dummy10.
 */
interface Pin {
  readonly reason: string;
  readonly symbol: RegExp;
}
const PINS: ReadonlyArray<[RegExp, Pin]> = [
  [/^6\.1\./, { reason: 'TC_EGRESS', symbol: /^__dev_queue_xmit\+0x/ }],
  [/^6\.12\./, { reason: 'TC_EGRESS', symbol: /^__dev_queue_xmit\+0x/ }],
];
const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
const pin = PINS.find(([re]) => re.test(release))?.[1];

/**
 * dropmon as the selftest finds it: the package's files copied out of the
 * shared folder when the host sends them (DROPMON_RUNTIME_TAR), so that
 * starting dwdump reads nothing through 9p, else this checkout.
 */
function runtimeRoot(): string {
  const tar = process.env.DROPMON_RUNTIME_TAR;
  if (!tar) return PROJECT_ROOT;
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-rt-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('tar', ['-xf', tar, '-C', dir]);
  return dir;
}

interface Packet {
  type: 'packet';
  origin: string;
  symbol?: string | null;
  reason?: string | null;
  trap?: string | null;
  trap_group?: string | null;
  ifindex?: number | null;
  ifname?: string | null;
  headers?: { dst?: string; l4?: string; dport?: number } | null;
}

interface BpfDrop {
  type: 'drop';
  count: number;
  reason: string | null;
  function: string | null;
  ifname: string | null;
  netns_name: string | null;
}

const lines = <T>(text: string, type: string): T[] =>
  text.split('\n').filter((l) => l.startsWith('{') && l.includes(`"type":"${type}"`)).map((l) => JSON.parse(l) as T);

test("the kernel's drop_monitor_tests.sh passes with dropmon as dwdump; dropmon names the same drops", { skip: SKIP, timeout: 600_000 }, async () => {
  const root = runtimeRoot();
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  // Listeners of the same traffic, started (and ready) before the selftest.
  const passive = new DropmonProcess(['watch', '--source', 'netdm', '--mode', 'packet', '--passive', '--json', '--no-counters'], [process.execPath, cli]);
  const bpf = new DropmonProcess(['watch', '--source', 'bpf', '--json', '--no-counters'], [process.execPath, cli]);
  after(() => {
    passive.child.kill('SIGKILL');
    bpf.child.kill('SIGKILL');
  });
  await passive.ready(120_000);
  await bpf.ready(120_000);

  const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn('bash', [SELFTEST], {
      cwd: SELFTEST_DIR,
      env: { ...process.env, PATH: `${join(root, 'contrib')}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 300_000);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
  const p = await passive.stop('SIGINT', 60_000);
  const b = await bpf.stop('SIGINT', 60_000);
  for (const l of run.out.split('\n')) process.stdout.write(`# selftest: ${l}\n`);

  // 1. the selftest itself, as the kernel's CI reads it
  const results = [...run.out.matchAll(/^\s*TEST: (.*?)\s+\[ ?(OK|FAIL) ?\]$/gm)].map(([, name, r]) => ({ name, r }));
  assert.equal(run.code, 0, `the selftest passed:\n${run.out}`);
  assert.deepEqual(results.map((x) => x.r), ['OK', 'OK', 'OK', 'OK'], run.out);
  assert.match(run.out, /Tests passed:\s+4\nTests failed:\s+0/);
  const status = execFileSync(process.execPath, [cli, 'netdm', 'status', '--json'], { encoding: 'utf8' });
  assert.equal(JSON.parse(status).monitoring, false, 'every dwdump run stopped NET_DM');

  // 2. the same traffic through dropmon: NET_DM alerts heard passively
  assert.equal(p.code, 0, p.stderr);
  const packets = lines<Packet>(p.stdout, 'packet');
  const sw = packets.filter((x) => x.origin === 'software' && x.headers?.dst === '192.0.2.10');
  process.stdout.write(`# software drops to 192.0.2.10: ${sw.length}, e.g. ${JSON.stringify(sw[0])}\n`);
  assert.ok(sw.length > 0, 'NET_DM reported the tc drops');
  assert.ok(pin, `no pinned software drop for kernel ${release}: add it to PINS`);
  for (const x of sw) {
    assert.equal(x.reason, pin.reason, JSON.stringify(x));
    assert.match(x.symbol ?? '', pin.symbol, JSON.stringify(x));
    assert.deepEqual({ l4: x.headers?.l4, dport: x.headers?.dport }, { l4: 'udp', dport: 54321 });
  }
  const hw = packets.filter((x) => x.origin === 'hardware');
  process.stdout.write(`# hardware drops: ${hw.length}, e.g. ${JSON.stringify(hw[0])}\n`);
  const bh = hw.filter((x) => x.trap === 'blackhole_route');
  assert.ok(bh.length > 0, 'NET_DM reported the trapped packets');
  for (const x of bh) {
    assert.equal(x.trap_group, 'l3_drops');
    // the input port: netdevsim1337's port, named by the kernel (no udev here) or by udev
    assert.ok((x.ifindex ?? 0) > 0, JSON.stringify(x));
    assert.match(x.ifname ?? '', /^(eth\d+|eni1337np1)$/, JSON.stringify(x));
  }

  // 3. the same drops counted by the BPF source, by interface and namespace
  assert.equal(b.code, 0, b.stderr);
  const tc = lines<BpfDrop>(b.stdout, 'drop').filter((d) => d.ifname === 'dummy10');
  process.stdout.write(`# BPF drops on dummy10: ${JSON.stringify(tc[0])}\n`);
  const total = tc.reduce((n, d) => n + d.count, 0);
  assert.ok(total >= sw.length, `BPF counted ${total} drops on dummy10, NET_DM reported ${sw.length}`);
  for (const d of tc) {
    assert.equal(d.reason, pin.reason, JSON.stringify(d));
    assert.equal(d.function, '__dev_queue_xmit', JSON.stringify(d));
    // ns1 on 6.1; lib.sh's setup_ns names it ns1-<random> from 6.8 on
    assert.match(d.netns_name ?? '', /^ns1(-\w+)?$/, JSON.stringify(d));
  }
});
