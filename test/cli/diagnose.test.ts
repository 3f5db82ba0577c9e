/**
 * `dropmon diagnose` with no flags reads the counters of every namespace; a
 * namespace deleted while it runs costs nothing: the diagnosis ends normally,
 * with the drop points seen in it and the counters it had moved.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelTest } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { DropmonProcess } from '../helpers/dropmon.js';

after(() => TestNetns.cleanupAll());

interface JsonFinding {
  key: string;
  packets: number;
  counters: Array<{ name: string; delta: number }>;
}

test('a namespace deleted during diagnose: exit 0, its drop points and its counters stay', { ...kernelTest(), timeout: 120_000 }, async () => {
  const ns = new TestNetns('gone');
  const dm = new DropmonProcess(['diagnose', '-d', '4', '-i', '1', '--json']);
  try {
    await dm.ready(30_000, 'diagnosing');
    // 300 datagrams to a closed port in the namespace: NO_SOCKET drops and Udp:NoPorts there, then it goes away.
    ns.exec('bash', ['-c', 'for i in $(seq 300); do echo x > /dev/udp/127.0.0.1/9; done']);
    ns.delete();
    const done = await dm.finished();
    assert.equal(done.code, 0, done.stderr);
    assert.doesNotMatch(done.stderr, /internal error|cannot open the network namespace/);
    const out = JSON.parse(done.stdout) as { findings: JsonFinding[] };
    const f = out.findings.find((x) => x.key.split('/')[0] === 'NO_SOCKET');
    assert.ok(f && f.packets >= 300, `the drop points stay: ${done.stdout}`);
    const moved = f.counters.filter((c) => c.name === 'Udp:NoPorts').reduce((n, c) => n + c.delta, 0);
    assert.ok(moved >= 300, `the counters of the namespace that went away stay: Udp:NoPorts +${moved}: ${JSON.stringify(f.counters)}`);
  } finally {
    if (dm.child.exitCode === null) await dm.stop('SIGINT');
    ns.delete();
  }
});
