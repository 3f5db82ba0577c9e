/**
 * The BPF source on a second kernel: Debian's 6.1 under qemu (scripts/kernel-vm.sh),
 * whose structures, drop-reason numbers and tracepoint prototype (3 arguments,
 * where this host's 6.18 has 4) differ from the host's. The same code, with
 * offsets from that kernel's BTF, must count the same drops: the live BTF test,
 * the map wrappers, both program flavours, two namespaces told apart, and
 * nothing left after kill -9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  if (process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the BPF VM run: ${SKIP}\n`);

const KERNEL = process.env.VM_KERNEL ?? '6.1';
test(`BPF source on Debian's ${KERNEL} kernel under qemu`, { skip: SKIP, timeout: 900_000 }, () => {
  const dist = join(PROJECT_ROOT, 'dist');
  // The guest has no compiler: build the drop generator here, in the shared folder.
  execFileSync('cc', ['-O2', '-Wall', '-o', join(dist, 'dropgen'), join(PROJECT_ROOT, 'bench', 'dropgen.c')]);
  const patterns = ['two namespaces', 'kill -9', 'taking turns', 'hammered', 'full map'].flatMap((p) => ['--test-name-pattern', p]);
  const r = spawnSync(
    join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'),
    ['node', '--test', '--test-reporter=tap', '--test-timeout=600000', ...patterns, 'dist/test/sources/bpf/bpf-source.test.js'],
    {
      encoding: 'utf8',
      env: { ...process.env, VM_TIMEOUT: '600', VM_ENV: 'DROPMON_DROPGEN DROPMON_IN_VM', DROPMON_DROPGEN: join(dist, 'dropgen'), DROPMON_IN_VM: '1' },
      timeout: 900_000,
    },
  );
  const r2 = spawnSync(
    join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'),
    ['node', '--test', '--test-reporter=tap', '--test-timeout=600000', 'dist/test/kernel/bpf-btf.test.js', 'dist/test/kernel/bpf-maps.test.js'],
    {
      encoding: 'utf8',
      env: { ...process.env, VM_TIMEOUT: '600', VM_ENV: 'DROPMON_DROPGEN DROPMON_IN_VM DROPMON_FUZZ_RUNS', DROPMON_DROPGEN: join(dist, 'dropgen'), DROPMON_IN_VM: '1', DROPMON_FUZZ_RUNS: '50' },
      timeout: 900_000,
    },
  );
  for (const [what, run] of [['source', r], ['toolkit', r2]] as const) {
    const out = `${run.stdout}\n${run.stderr}`;
    process.stdout.write(out.split('\n').map((l) => `# vm ${what}: ${l}`).join('\n') + '\n');
    assert.equal(run.status, 0, `the BPF ${what} tests passed in the VM`);
    assert.match(out, /# pass [1-9]/);
    assert.match(out, /# fail 0/);
  }
  assert.match(`${r.stdout}`, /ok \d+ - drops in two namespaces are told apart/);
  assert.match(`${r.stdout}`, /ok \d+ - kill -9 leaves nothing attached/);
  assert.match(`${r.stdout}`, /ok \d+ - two drop points taking turns on one CPU/);
  assert.match(`${r.stdout}`, /ok \d+ - one drop point hammered from every CPU/);
  assert.match(`${r.stdout}`, /ok \d+ - a full map: the drops it could not hold are counted as a loss/);
  assert.match(`${r2.stdout}`, /ok \d+ - the raw_tp flavour \(bpf_probe_read_kernel\) counts what the tp_btf one counts/);
  assert.match(`${r2.stdout}`, /ok \d+ - live vmlinux BTF: parsed quickly/);
});
