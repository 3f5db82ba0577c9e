/**
 * Runs test/vm/hwtrap-kernel.test.ts inside a qemu VM booting Debian's kernel
 * with netdevsim and NET_DM (scripts/kernel-vm.sh): hardware drops counted by
 * the tracefs and BPF sources, NET_DM and devlink in one window. VM_KERNEL
 * picks the kernel (6.1, the default, or 6.12); the host kernel has neither
 * netdevsim nor the devlink tracepoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  if (existsSync('/sys/bus/netdevsim/new_device')) return 'the host kernel has netdevsim: hwtrap-kernel.test.js runs here directly';
  if (!existsSync('/dev/kvm') && process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the hardware-drop VM run: ${SKIP}\n`);
const KERNEL = process.env.VM_KERNEL ?? '6.1';

test(`hardware drops from every source in Debian's ${KERNEL} kernel with netdevsim, under qemu`, { skip: SKIP, timeout: 900_000 }, () => {
  const r = spawnSync(join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'), ['node', '--test', '--test-reporter=tap', '--test-timeout=400000', 'dist/test/vm/hwtrap-kernel.test.js'], {
    encoding: 'utf8',
    env: { ...process.env, VM_KERNEL: KERNEL, VM_TIMEOUT: '500', VM_ENV: 'DROPMON_IN_VM', DROPMON_IN_VM: '1' },
    timeout: 900_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  process.stdout.write(out.split('\n').map((l) => `# vm: ${l}`).join('\n') + '\n');
  assert.equal(r.status, 0, 'the hardware-drop tests passed in the VM');
  assert.match(out, /# pass [1-9]/);
  assert.match(out, /# skipped 0/, 'nothing was skipped in the VM (netdevsim was built and loaded)');
  assert.doesNotMatch(out, /NET_DM left out/, 'NET_DM was part of the comparison');
});
