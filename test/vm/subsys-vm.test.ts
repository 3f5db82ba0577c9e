/**
 * Runs test/vm/subsys-kernel.test.ts inside a qemu VM booting Debian's kernel
 * with the openvswitch module (scripts/kernel-vm.sh), where the host kernel
 * has no modules. VM_KERNEL picks the kernel: 6.12 (the default here) has
 * openvswitch drop reasons and must pass them all; 6.1 has no subsystem
 * reasons, and the guest's tests must skip, saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

const KERNEL = process.env.VM_KERNEL ?? '6.12';

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  if (existsSync('/sys/kernel/btf/openvswitch')) return 'the host kernel has openvswitch loaded: subsys-kernel.test.js runs here directly';
  if (!existsSync('/dev/kvm') && process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  if (KERNEL !== '6.1' && KERNEL !== '6.12') return `VM_KERNEL=${KERNEL}: the VM runner boots 6.1 or 6.12`;
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the subsystem drop-reason VM run: ${SKIP}\n`);

test(`openvswitch drop reasons in Debian's ${KERNEL} kernel, under qemu`, { skip: SKIP, timeout: 900_000 }, () => {
  // The guest has no compiler: the drop generator is built here, in the shared folder.
  const dir = join(PROJECT_ROOT, 'dist', 'vm-subsys');
  mkdirSync(dir, { recursive: true });
  const dropgen = join(dir, 'dropgen');
  execFileSync('cc', ['-O2', '-Wall', '-o', dropgen, join(PROJECT_ROOT, 'bench', 'dropgen.c')]);
  const r = spawnSync(join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'), ['node', '--test', '--test-reporter=tap', '--test-timeout=600000', 'dist/test/vm/subsys-kernel.test.js'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      VM_KERNEL: KERNEL,
      VM_MODULES: 'openvswitch',
      VM_TIMEOUT: '700',
      VM_ENV: 'DROPMON_DROPGEN DROPMON_IN_VM',
      DROPMON_DROPGEN: dropgen,
      DROPMON_IN_VM: '1',
    },
    timeout: 900_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  process.stdout.write(out.split('\n').map((l) => `# vm: ${l}`).join('\n') + '\n');
  assert.equal(r.status, 0, 'the subsystem drop-reason tests passed in the VM');
  if (KERNEL === '6.1') {
    // No subsystem reasons before 6.4: the guest must say so and skip, not fail.
    assert.match(out, /skipping subsystem drop-reason tests: this kernel has no openvswitch drop reasons/);
  } else {
    assert.match(out, /# pass [1-9]/);
    assert.match(out, /# skipped 0/, 'nothing was skipped in the VM (openvswitch loaded, NET_DM present)');
  }
});
