/**
 * The kernel-dependent tests, in real Debian kernels under qemu: Debian 12's
 * 6.1 and bookworm-backports' 6.12 (scripts/kernel-vm.sh). Each kernel boots
 * once and runs every entry of guest-plan.ts (scripts/vm-suite.ts); each entry
 * is judged here as a subtest of its own, from its TAP output.
 *
 * DROPMON_VM_KERNELS="6.1" runs fewer kernels; DROPMON_VM_TESTS=0 none.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { GUEST_RUNS, VM_KERNELS, vmNeeds } from './guest-plan.js';

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  if (process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the kernel VM runs: ${SKIP}\n`);

const kernels = (process.env.DROPMON_VM_KERNELS?.split(/[\s,]+/).filter(Boolean) ?? [...VM_KERNELS]);
const dist = join(PROJECT_ROOT, 'dist');

/** "ok 3 - name" / "not ok 3 - name # SKIP why" lines of a TAP stream, any depth. */
function tapResults(tap: string): { ok: Set<string>; failed: string[]; skipped: string[] } {
  const ok = new Set<string>();
  const failed: string[] = [];
  const skipped: string[] = [];
  for (const m of tap.matchAll(/^\s*(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/gm)) {
    if (m[3] === 'SKIP') skipped.push(m[2]);
    else if (m[1] === 'ok') ok.add(m[2]);
    else failed.push(m[2]);
  }
  return { ok, failed, skipped };
}

for (const kernel of kernels) {
  describe(`Debian ${kernel} kernel under qemu`, { skip: SKIP }, () => {
    const out = join(dist, 'vm-results', kernel);
    let boot: { status: number | null; output: string } = { status: null, output: '' };

    before(() => {
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out, { recursive: true });
      rmSync(join(dist, 'vm-artifacts'), { recursive: true, force: true });
      mkdirSync(join(dist, 'vm-artifacts'), { recursive: true });
      // The guest has no compiler: the drop generator is built here, in the shared folder.
      execFileSync('cc', ['-O2', '-Wall', '-o', join(dist, 'dropgen'), join(PROJECT_ROOT, 'bench', 'dropgen.c')]);
      const needs = vmNeeds(kernel);
      const r = spawnSync(join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'), ['node', 'dist/scripts/vm-suite.js', kernel, `dist/vm-results/${kernel}`], {
        encoding: 'utf8',
        env: {
          ...process.env,
          VM_KERNEL: kernel,
          VM_MODULES: needs.modules.join(' '),
          VM_BINS: needs.bins.join(' '),
          VM_TIMEOUT: '3000',
          VM_ENV: 'DROPMON_DROPGEN',
          DROPMON_DROPGEN: join(dist, 'dropgen'),
        },
        timeout: 3_100_000,
        maxBuffer: 64 << 20,
      });
      boot = { status: r.status, output: `${r.stdout}\n${r.stderr}` };
      process.stdout.write(boot.output.split('\n').map((l) => `# vm ${kernel}: ${l}`).join('\n') + '\n');
    }, { timeout: 3_200_000 });

    test('the VM booted and ran the plan', () => {
      assert.equal(boot.status, 0, `kernel-vm.sh exit ${boot.status}: ${boot.output.slice(-2000)}`);
    });

    for (const run of GUEST_RUNS) {
      if (run.kernels && !run.kernels.includes(kernel)) continue;
      test(run.name, () => {
        const tapFile = join(out, `${run.name}.tap`);
        assert.ok(existsSync(tapFile), `no result for ${run.name}: the VM did not get to it`);
        const tap = readFileSync(tapFile, 'utf8');
        const rc = Number(readFileSync(join(out, `${run.name}.rc`), 'utf8'));
        const { ok, failed, skipped } = tapResults(tap);
        const tail = tap.split('\n').slice(-60).join('\n');
        assert.deepEqual(failed, [], `failed in the VM:\n${tail}`);
        assert.equal(rc, 0, `exit ${rc}:\n${tail}`);
        const noSkip = run.noSkip === true || (Array.isArray(run.noSkip) && run.noSkip.includes(kernel));
        if (noSkip) {
          assert.deepEqual(skipped, [], 'nothing is skipped in the VM');
          assert.ok(ok.size > 0, `nothing passed:\n${tail}`);
        } else {
          // A kernel without the feature skips, saying why (e.g. 6.1 has no subsystem reasons).
          assert.ok(ok.size + skipped.length > 0, `nothing ran:\n${tail}`);
        }
        // A name, or the start of a longer one ("a full map: ..." names a test whose title goes on).
        const passed = (name: string) => [...ok].some((n) => n === name || n.startsWith(`${name}:`) || n.startsWith(`${name},`) || n.startsWith(`${name} `));
        for (const name of run.mustPass ?? []) assert.ok(passed(name), `"${name}" passed:\n${tail}`);
        if (skipped.length) process.stdout.write(skipped.map((s) => `# ${kernel} ${run.name}: skipped ${s}\n`).join(''));
      });
    }

    test('the real tshark reads the guest\'s NET_DM capture: location and reason', { skip: GUEST_RUNS.some((r) => r.name === 'netdm') ? false : 'no netdm entry' }, () => {
      const pcap = join(dist, 'vm-artifacts', 'netdm-drops.pcapng');
      assert.ok(existsSync(pcap), 'the NET_DM test wrote its capture');
      const t = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.comment', '-e', 'udp.dstport'], { encoding: 'utf8' });
      assert.equal(t.status, 0, t.stderr);
      const lines = t.stdout.trim().split('\n').filter((l) => l.includes('__udp4_lib_rcv'));
      assert.ok(lines.length >= 4, t.stdout);
      assert.match(lines[0], /drop at __udp4_lib_rcv\+0x[0-9a-f]+ \(0x[0-9a-f]+\) \[software\] NO_SOCKET dev ifindex 1\t9$/);
    });
  });
}
