/**
 * Inside the test VM: run each entry of test/vm/guest-plan.ts for this kernel,
 * one `node --test` per entry, and write each one's TAP output to
 * OUTDIR/NAME.tap with its exit code in OUTDIR/NAME.rc. The host
 * (test/vm/kernels.test.ts) judges them; this script only runs them, so one
 * entry's failure never hides another's result.
 *
 *   scripts/kernel-vm.sh node dist/scripts/vm-suite.js KERNEL OUTDIR [NAME...]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_RUNS } from '../test/vm/guest-plan.js';

const [kernel, outDir, ...only] = process.argv.slice(2);
if (!kernel || !outDir) {
  process.stderr.write('usage: vm-suite KERNEL OUTDIR [NAME...]\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
for (const run of GUEST_RUNS) {
  if (run.kernels && !run.kernels.includes(kernel)) continue;
  if (only.length && !only.includes(run.name)) continue;
  const args = ['--test', '--test-reporter=tap', '--test-concurrency=1', '--test-timeout=1200000'];
  for (const p of run.patterns ?? []) args.push('--test-name-pattern', p);
  const t0 = Date.now();
  process.stdout.write(`vm-suite: ${run.name} ...\n`);
  const r = spawnSync(process.execPath, [...args, ...run.files], {
    encoding: 'utf8',
    env: { ...process.env, ...run.env, DROPMON_IN_VM: '1', DROPMON_VM_KERNEL: kernel },
    timeout: 1_300_000,
    maxBuffer: 64 << 20,
  });
  const rc = r.status ?? (r.signal ? 128 : 1);
  writeFileSync(join(outDir, `${run.name}.tap`), `${r.stdout ?? ''}\n${r.stderr ?? ''}${r.error ? `\n# vm-suite: ${r.error.message}\n` : ''}`);
  writeFileSync(join(outDir, `${run.name}.rc`), `${rc}\n`);
  process.stdout.write(`vm-suite: ${run.name} exit ${rc} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
