/**
 * Runs test/vm/devlink-kernel.test.ts inside a qemu VM booting Debian's kernel
 * with netdevsim (scripts/kernel-vm.sh), where the host kernel has no
 * netdevsim: devlink traps exist only on devices that have them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  if (existsSync('/sys/bus/netdevsim/new_device')) return 'the host kernel has netdevsim: devlink-kernel.test.js runs here directly';
  if (!existsSync('/dev/kvm') && process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the devlink VM run: ${SKIP}\n`);

test('devlink trap counters in a Debian kernel with netdevsim, under qemu', { skip: SKIP, timeout: 900_000 }, () => {
  // The guest has no compiler: the drop generator is built here, in the shared folder.
  const dir = join(PROJECT_ROOT, 'dist', 'vm-devlink');
  mkdirSync(dir, { recursive: true });
  const dropgen = join(dir, 'dropgen');
  execFileSync('cc', ['-O2', '-Wall', '-o', dropgen, join(PROJECT_ROOT, 'bench', 'dropgen.c')]);
  const r = spawnSync(join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'), ['node', '--test', '--test-reporter=tap', '--test-timeout=300000', 'dist/test/vm/devlink-kernel.test.js'], {
    encoding: 'utf8',
    env: { ...process.env, VM_TIMEOUT: '400', VM_ENV: 'DROPMON_DROPGEN DROPMON_IN_VM', DROPMON_DROPGEN: dropgen, DROPMON_IN_VM: '1' },
    timeout: 900_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  process.stdout.write(out.split('\n').map((l) => `# vm: ${l}`).join('\n') + '\n');
  assert.equal(r.status, 0, 'the devlink tests passed in the VM');
  assert.match(out, /# pass [1-9]/);
  assert.match(out, /# skipped 0/, 'nothing was skipped in the VM (netdevsim was built and loaded)');
});
