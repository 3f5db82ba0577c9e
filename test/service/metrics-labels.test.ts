/**
 * Labels of the metrics: the pod and container labels of dropmon_drops_total,
 * from the cgroup attribution of a namespace's processes; the netns label of
 * dropmon_kernel_stat, bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_COUNTER_NETNS, OTHER, ServiceMetrics, podAndContainer } from '../../src/service/metrics.js';
import { containerFromCgroup } from '../../src/kernel/namespaces.js';
import type { Attribution } from '../../src/core/attribution.js';
import type { CounterReading } from '../../src/core/counter.js';
import { loadKnowledge } from '../../src/knowledge/load.js';

test('a Kubernetes pod (systemd and cgroupfs drivers): pod UID and runtime container', () => {
  const systemd = '0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice/cri-containerd-3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c.scope\n';
  assert.deepEqual(podAndContainer(containerFromCgroup(systemd)!), { pod: '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', container: 'containerd 3f2a1b0c9d8e' });
  const cgroupfs = '0::/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c\n';
  assert.deepEqual(podAndContainer(containerFromCgroup(cgroupfs)!), { pod: '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', container: '' });
});

test('a plain container: no pod, the runtime and id', () => {
  assert.deepEqual(podAndContainer(containerFromCgroup('0::/system.slice/docker-3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c.scope\n')!), { pod: '', container: 'docker 3f2a1b0c9d8e' });
});

test('kernel counters by namespace: dropmon\'s own, the busiest others by name, the rest summed as "other"', async () => {
  const INIT = 4026531840;
  /** 14 namespaces: ns-0 .. ns-13. */
  const inodes = Array.from({ length: 14 }, (_, i) => 4026532000 + i);
  const attribution: Attribution = {
    initInode: INIT,
    ownInode: INIT,
    netns: (i) => (i === INIT ? { name: 'init' } : inodes.includes(i) ? { name: `ns-${i - 4026532000}` } : undefined),
    ifname: () => undefined,
  };
  const m = new ServiceMetrics({ topLocations: 3, maxCounterSeries: 500, defaultMetrics: false }, loadKnowledge(), undefined, attribution);
  const snapshot = (moved: (i: number) => number): CounterReading[] => [
    { name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', value: 1000, source: 't' },
    { name: 'Udp:InDatagrams', scope: '', layer: 'udp', value: 99, source: 't' },
    ...inodes.flatMap((netns, i): CounterReading[] => [
      { name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', value: 10 + moved(i), source: 't', netns },
      { name: 'link:rx_dropped', scope: 'eth0', layer: 'nic', value: 1, source: 't', netns },
    ]),
  ];
  m.setCounters(snapshot(() => 0));
  // ns-13 moved most, then ns-12 ...: ns-0 .. ns-3 are the quietest.
  m.setCounters(snapshot((i) => i * 100));
  const stats = (await m.scrape()).body.split('\n').filter((l) => l.startsWith('dropmon_kernel_stat{'));
  const netnsOf = (l: string) => /netns="([^"]*)"/.exec(l)![1];
  const labels = new Set(stats.map(netnsOf));
  assert.equal(MAX_COUNTER_NETNS, 10);
  assert.deepEqual(
    [...labels].sort(),
    ['init', OTHER, ...Array.from({ length: 10 }, (_, i) => `ns-${i + 4}`)].sort(),
    'the own namespace, the 10 that moved most, and other',
  );
  assert.ok(stats.includes('dropmon_kernel_stat{name="Udp:RcvbufErrors",scope="",layer="udp",netns="init"} 1000'), stats.join('\n'));
  assert.ok(stats.includes('dropmon_kernel_stat{name="Udp:RcvbufErrors",scope="",layer="udp",netns="ns-13"} 1310'));
  // ns-0 .. ns-3: 10 + 0, 110, 210, 310.
  assert.ok(stats.includes('dropmon_kernel_stat{name="Udp:RcvbufErrors",scope="",layer="udp",netns="other"} 640'), stats.join('\n'));
  assert.ok(stats.includes('dropmon_kernel_stat{name="link:rx_dropped",scope="eth0",layer="nic",netns="other"} 4'));
  assert.ok(!stats.some((l) => l.includes('InDatagrams')), 'traffic counters left out');
  assert.equal(stats.length, 1 + 10 * 2 + 2);

  // A namespace that moves later overtakes by its movement since the start; one that is no longer read is forgotten.
  m.setCounters(snapshot((i) => (i === 0 ? 5000 : i * 100)).filter((r) => r.netns !== inodes[13]));
  const again = new Set((await m.scrape()).body.split('\n').filter((l) => l.startsWith('dropmon_kernel_stat{')).map(netnsOf));
  assert.ok(again.has('ns-0') && !again.has('ns-13'), [...again].join(' '));

  // The series bound holds over the namespaces' labels too.
  const small = new ServiceMetrics({ topLocations: 3, maxCounterSeries: 5, defaultMetrics: false }, loadKnowledge(), undefined, attribution);
  small.setCounters(snapshot(() => 0));
  assert.equal((await small.scrape()).body.split('\n').filter((l) => l.startsWith('dropmon_kernel_stat{')).length, 5);
});
