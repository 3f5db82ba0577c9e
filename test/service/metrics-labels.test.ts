/** The pod and container labels of dropmon_drops_total, from the cgroup attribution of a namespace's processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podAndContainer } from '../../src/service/metrics.js';
import { containerFromCgroup } from '../../src/kernel/namespaces.js';

test('a Kubernetes pod (systemd and cgroupfs drivers): pod UID and runtime container', () => {
  const systemd = '0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice/cri-containerd-3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c.scope\n';
  assert.deepEqual(podAndContainer(containerFromCgroup(systemd)!), { pod: '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', container: 'containerd 3f2a1b0c9d8e' });
  const cgroupfs = '0::/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c\n';
  assert.deepEqual(podAndContainer(containerFromCgroup(cgroupfs)!), { pod: '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', container: '' });
});

test('a plain container: no pod, the runtime and id', () => {
  assert.deepEqual(podAndContainer(containerFromCgroup('0::/system.slice/docker-3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c.scope\n')!), { pod: '', container: 'docker 3f2a1b0c9d8e' });
});
