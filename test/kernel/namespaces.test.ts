/**
 * Containers named from cgroup paths; and, against the kernel, namespaces and
 * interfaces named from their inode and index, the way the outputs show them.
 */
import { after, test } from 'node:test';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { NamespaceAttribution, containerFromCgroup, interfaceIndex, resolveNetnsSpec } from '../../src/kernel/namespaces.js';
import { formatIntervalText } from '../../src/outputs/text.js';
import { formatIntervalJson } from '../../src/outputs/json.js';
import type { IntervalReport } from '../../src/core/interval.js';
import { UsageError } from '../../src/core/errors.js';
import { kernelTest } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';

after(() => TestNetns.cleanupAll());

test('containers from cgroup paths: Docker, containerd, CRI-O, Podman, Kubernetes pods', () => {
  const id = '3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a';
  assert.equal(containerFromCgroup(`0::/system.slice/docker-${id}.scope\n`), 'docker 3f2a1b0c9d8e');
  assert.equal(containerFromCgroup(`12:memory:/docker/${id}\n0::/\n`), 'docker 3f2a1b0c9d8e');
  assert.equal(
    containerFromCgroup(`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-${id}.scope\n`),
    'k8s pod 1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d containerd 3f2a1b0c9d8e',
  );
  assert.equal(containerFromCgroup(`0::/kubepods/burstable/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/${id}\n`), 'k8s pod 1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d');
  assert.equal(containerFromCgroup(`0::/machine.slice/libpod-${id}.scope/container\n`), 'podman 3f2a1b0c9d8e');
  assert.equal(containerFromCgroup(`0::/system.slice/crio-${id}.scope\n`), 'crio 3f2a1b0c9d8e');
  assert.equal(containerFromCgroup('0::/user.slice/user-0.slice/session-3.scope\n'), undefined);
  assert.equal(containerFromCgroup(''), undefined);
});

test('namespaces and interfaces named from inode and index; text and JSON outputs show them', kernelTest(), () => {
  const ns = new TestNetns('attr');
  ns.ip('link', 'add', 'dmattr0', 'type', 'veth', 'peer', 'name', 'dmattr0p');
  const target = resolveNetnsSpec(ns.name);
  const byPath = resolveNetnsSpec(`/run/netns/${ns.name}`);
  assert.equal(byPath.inode, target.inode);
  assert.equal(resolveNetnsSpec(String(target.inode)).inode, target.inode, 'an inode number is accepted');
  assert.equal(resolveNetnsSpec(String(process.pid)).inode, new NamespaceAttribution().ownInode, 'a pid means its namespace');
  assert.throws(() => resolveNetnsSpec('no-such-namespace-here'), UsageError);
  // A path is accepted only as an ip netns name or /proc/PID/ns/net (netns-registry.test.ts checks the files refused).
  const plain = join(tmpdir(), `dropmon-not-a-netns-${process.pid}`);
  writeFileSync(plain, '');
  try {
    assert.throws(() => resolveNetnsSpec(plain), (e: unknown) => e instanceof UsageError && /is neither an ip netns name nor \/proc\/PID\/ns\/net/.test(e.message));
  } finally {
    rmSync(plain, { force: true });
  }
  assert.throws(() => resolveNetnsSpec('/proc/self/ns/mnt'), (e: unknown) => e instanceof UsageError && /is neither an ip netns name/.test(e.message));
  const ifindex = interfaceIndex('dmattr0', target);
  assert.throws(() => interfaceIndex('dmattr0'), UsageError, 'not in our own namespace');

  const a = new NamespaceAttribution();
  assert.equal(a.netns(target.inode)?.name, ns.name);
  assert.equal(a.ifname(target.inode, ifindex), 'dmattr0');
  assert.equal(a.ifname(target.inode, 1), 'lo');
  ns.ip('link', 'add', 'dmattr1', 'type', 'veth', 'peer', 'name', 'dmattr1p');
  const later = Number(/^(\d+):/.exec(ns.ip('-o', 'link', 'show', 'dmattr1'))![1]);
  // An unknown index triggers a new dump, at most once a second.
  let named: string | undefined;
  const deadline = Date.now() + 3000;
  while (!(named = a.ifname(target.inode, later)) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  assert.equal(named, 'dmattr1');

  const report: IntervalReport = {
    start: 0, end: 1000, seq: 1, drops: 5, lost: new Map(), lostTotal: 0,
    overflow: { drops: 0, points: 0, pointsCapped: false },
    points: [
      { location: 0xffffffff81000000n, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software', count: 5, ifindex, netns: target.inode },
      { location: 0xffffffff81000000n, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software', count: 0, ifindex, netns: target.inode },
    ],
  };
  const text = formatIntervalText(report, undefined, a);
  assert.deepEqual(text, [`5 drops at 0xffffffff81000000 (0xffffffff81000000) [software] NO_SOCKET ipv4 dev dmattr0 netns ${ns.name}`], 'count-0 points (packet records) are not lines');
  const json = JSON.parse(formatIntervalJson(report, undefined, a, 'bpf')[0]) as Record<string, unknown>;
  assert.deepEqual([json.ifindex, json.ifname, json.netns, json.netns_name, json.container], [ifindex, 'dmattr0', target.inode, ns.name, null]);
  ns.delete();
});
