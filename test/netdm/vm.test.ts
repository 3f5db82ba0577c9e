/**
 * Runs test/netdm/netdm-kernel.test.ts inside a qemu VM booting Debian's
 * kernel (which has NET_DM) when the host kernel lacks it, then checks the
 * pcap the guest wrote with the real tshark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NetdmClient } from '../../src/sources/netdm/client.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

function skipReason(): string | false {
  if (process.env.DROPMON_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'not root: the VM runner needs apt and 9p';
  try {
    const c = NetdmClient.tryOpen();
    if (c) {
      c.close();
      return 'the host kernel has NET_DM: netdm-kernel.test.js runs here directly';
    }
  } catch {
    /* no netlink at all: still try the VM */
  }
  if (!existsSync('/dev/kvm') && process.env.DROPMON_VM_TESTS === '0') return 'DROPMON_VM_TESTS=0';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping the NET_DM VM run: ${SKIP}\n`);

test('NET_DM tests in a Debian kernel under qemu', { skip: SKIP, timeout: 900_000 }, () => {
  const dist = join(PROJECT_ROOT, 'dist');
  const artifacts = join(dist, 'vm-artifacts');
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  // The guest has no compiler: build the drop generator here, in the shared folder.
  execFileSync('cc', ['-O2', '-Wall', '-o', join(dist, 'dropgen'), join(PROJECT_ROOT, 'bench', 'dropgen.c')]);
  const r = spawnSync(join(PROJECT_ROOT, 'scripts', 'kernel-vm.sh'), ['node', '--test', '--test-reporter=tap', '--test-timeout=600000', 'dist/test/netdm/netdm-kernel.test.js'], {
    encoding: 'utf8',
    env: { ...process.env, VM_TIMEOUT: '600', VM_ENV: 'DROPMON_DROPGEN DROPMON_IN_VM', DROPMON_DROPGEN: join(dist, 'dropgen'), DROPMON_IN_VM: '1' },
    timeout: 900_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  process.stdout.write(out.split('\n').map((l) => `# vm: ${l}`).join('\n') + '\n');
  assert.equal(r.status, 0, 'the NET_DM tests passed in the VM');
  assert.match(out, /# pass [1-9]/);
  assert.match(out, /# skipped 0/, 'nothing was skipped in the VM');
  // the real tshark reads the guest's capture and shows location and reason
  const pcap = join(artifacts, 'netdm-drops.pcapng');
  const t = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.comment', '-e', 'udp.dstport'], { encoding: 'utf8' });
  assert.equal(t.status, 0, t.stderr);
  const lines = t.stdout.trim().split('\n').filter((l) => l.includes('__udp4_lib_rcv'));
  assert.ok(lines.length >= 4, t.stdout);
  assert.match(lines[0], /drop at __udp4_lib_rcv\+0x[0-9a-f]+ \(0x[0-9a-f]+\) \[software\] NO_SOCKET dev ifindex 1\t9$/);
});
