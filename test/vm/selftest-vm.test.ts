/**
 * Boots Debian's kernels under qemu (scripts/kernel-vm.sh), one boot each,
 * and runs the kernel's own drop_monitor selftest there with dropmon as its
 * dwdump, plus dropmon's assertions on the same traffic
 * (selftest-kernel.test.ts). Kernels: VM_KERNEL when set, else 6.1 and 6.12.
 *
 * The selftest gives each dwdump run a fixed `timeout 5`. Without KVM the
 * guest is emulated, and how long Node takes to start there would follow the
 * host's load; so the VM runs on a clock of executed instructions
 * (VM_ICOUNT=0: one per ns, idle time skipped), where the guest sees the same
 * speed whatever the host does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

const HOST_TOOLS = ['qemu-system-x86_64', 'tshark', 'mausezahn', 'udevadm', 'tc', 'timeout'];

function which(program: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  if (process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  const missing = HOST_TOOLS.filter((t) => !which(t));
  if (missing.length) return `${missing.join(', ')} missing on the host, to copy into the VM (scripts/setup.sh installs them)`;
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the kernel's drop_monitor selftest in a VM: ${SKIP}\n`);

/** tshark's data files and plugins (its dissectors' tables), beside its library. */
function tsharkFiles(): string[] {
  const ldd = execFileSync('ldd', [which('tshark')!], { encoding: 'utf8' });
  const lib = /libwireshark\.so\S*\s+=>\s+(\S+)/.exec(ldd)?.[1];
  return ['/usr/share/wireshark', ...(lib ? [join(dirname(lib), 'wireshark')] : [])].filter((p) => existsSync(p));
}

const KERNELS = process.env.VM_KERNEL ? [process.env.VM_KERNEL] : ['6.1', '6.12'];

for (const kernel of KERNELS) {
  test(`drop_monitor_tests.sh with dropmon as dwdump, Debian's ${kernel} under qemu`, { skip: SKIP, timeout: 1_800_000 }, (t) => {
    const dir = join(PROJECT_ROOT, 'dist', 'vm-selftest');
    mkdirSync(dir, { recursive: true });
    // dropmon as installed: read once through 9p as one file, unpacked in the guest.
    const tar = join(dir, 'dropmon-runtime.tar');
    const koffiBinary = `node_modules/@koromix/koffi-${process.platform}-${process.arch}`;
    execFileSync('tar', ['-cf', tar, '-C', PROJECT_ROOT, 'dist/src', 'dist/kb.compiled.json', 'package.json', 'contrib/dwdump', 'kb', 'node_modules/koffi', koffiBinary, 'node_modules/yaml']);
    const t0 = Date.now();
    const r = spawnSync(
      join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'),
      ['node', '--test', '--test-reporter=tap', '--test-timeout=1500000', 'dist/test/vm/selftest-kernel.test.js'],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          VM_KERNEL: kernel,
          VM_TIMEOUT: '1500',
          VM_ICOUNT: '0',
          // tshark's library alone is over 100 MB of the initramfs
          VM_MEM: '2048',
          VM_MODULES: 'cls_flower act_gact sch_ingress dummy',
          VM_BINS: 'tshark mausezahn udevadm timeout tc',
          VM_FILES: tsharkFiles().join(' '),
          VM_ENV: 'DROPMON_IN_VM DROPMON_RUNTIME_TAR',
          DROPMON_IN_VM: '1',
          DROPMON_RUNTIME_TAR: tar,
        },
        timeout: 1_700_000,
      },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    process.stdout.write(out.split('\n').map((l) => `# vm ${kernel}: ${l}`).join('\n') + '\n');
    process.stdout.write(`# vm ${kernel}: ${((Date.now() - t0) / 1000).toFixed(0)} s for the VM (build, boot, selftest)\n`);
    const missing = /skipping the kernel's drop_monitor selftest: (no \S+drop_monitor_tests\.sh.*)/.exec(out);
    if (r.status === 0 && missing) {
      t.skip(`the selftest could not be had for ${kernel}: ${missing[1]}`);
      return;
    }
    assert.equal(r.status, 0, `the selftest and dropmon's assertions passed in the VM (${kernel})`);
    assert.match(out, /# pass 1/);
    assert.match(out, /# skipped 0/, 'nothing was skipped in the VM');
    for (const name of ['Capturing active software drops', 'Capturing inactive software drops', 'Capturing active hardware drops', 'Capturing inactive hardware drops'])
      assert.match(out, new RegExp(`TEST: ${name}\\s+\\[ OK \\]`));
  });
}
