/**
 * Host-wide counters against real namespaces: the per-interval budget
 * (namespaces and time), round-robin (every namespace read within a few
 * intervals), priority (the namespaces of the interval's drops, and those
 * that went away, first), baselines per namespace, readings tagged with
 * their namespace, and the final read of a namespace deleted mid-run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IntervalReport } from '../../../src/core/interval.js';
import { NetnsRegistry } from '../../../src/kernel/netns-registry.js';
import { HostCounterSampler, type HostBudget } from '../../../src/sources/counters/host-sampler.js';
import { NamespaceReader } from '../../../src/sources/counters/namespace-reader.js';
import { resolveNetns, releaseNetns } from '../../../src/kernel/setns.js';
import { kernelSkipReason } from '../../helpers/env.js';
import { TestNetns, sh } from '../../helpers/netns.js';

const SKIP = kernelSkipReason();
const OWN = { ethtool: false, ethtoolDriver: false, devlink: false, sockets: 'none' as const };

function noPorts(ns: TestNetns, n: number): void {
  ns.exec('bash', ['-c', `for i in $(seq ${n}); do echo x > /dev/udp/127.0.0.1/9; done`]);
}

/** An interval whose drops happened in `netns`. */
function closing(netns: number): IntervalReport {
  return {
    start: 0, end: 1000, seq: 1, drops: 1, lost: new Map(), lostTotal: 0,
    overflow: { drops: 0, points: 0, pointsCapped: false },
    points: [{ location: 0n, reason: 2, reasonName: 'NO_SOCKET', protocol: 0x0800, origin: 'software', count: 1, netns }],
  };
}

describe('host-wide counter sampling', { skip: SKIP }, () => {
  const spaces: TestNetns[] = [];
  let dir = '';
  const mounted = new Set<string>();
  const inode = new Map<string, number>();

  // Our namespaces only, bind-mounted in a directory of our own: the namespaces other programs
  // create meanwhile never enter the counts (and no process is scanned: proc is that directory).
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-hostwide-'));
    for (let i = 0; i < 6; i++) {
      const ns = new TestNetns('hw');
      spaces.push(ns);
      const p = join(dir, ns.name);
      writeFileSync(p, '');
      sh('mount', ['--bind', `/run/netns/${ns.name}`, p]);
      mounted.add(p);
      const t = resolveNetns(ns.name);
      inode.set(ns.name, t.inode);
      releaseNetns(t);
    }
  });
  after(() => {
    for (const p of mounted) sh('umount', ['-l', p]);
    rmSync(dir, { recursive: true, force: true });
    TestNetns.cleanupAll();
  });

  const registry = () => new NetnsRegistry({ bindDirs: [dir], proc: dir });
  const sampler = (budget: Partial<HostBudget>, reg = registry()) => new HostCounterSampler({ registry: reg, own: OWN, budget });
  const readIn = (readings: readonly { netns?: number }[]) => new Set(readings.map((r) => r.netns).filter((n) => n !== undefined));

  test('a budget of namespaces: round-robin reads every one within a few intervals, and a baseline first', () => {
    const s = sampler({ namespaces: 2, ms: 60_000, baselineMs: 60_000 });
    const b = s.baseline();
    assert.equal(b.namespacesRead, 2);
    assert.deepEqual(b.skipped, { namespaces: 4, of: 6 });
    const first = readIn(b.readings);
    assert.equal(first.size, 2);
    const s1 = s.sample();
    assert.equal(s1.deltas.filter((d) => d.netns !== undefined).length, 0, 'a namespace read the first time gives its baseline, no deltas');
    assert.equal(readIn(s1.snapshot.readings).size, 4);
    const s2 = s.sample();
    assert.equal(readIn(s2.snapshot.readings).size, 6, 'all six within three intervals');
    // Next in turn: the two read longest ago, the baseline's.
    for (const ns of spaces) noPorts(ns, 10);
    const s3 = s.sample();
    const moved = new Set(s3.deltas.filter((d) => d.name === 'Udp:NoPorts').map((d) => d.netns));
    assert.deepEqual(moved, first, 'the two read longest ago are read next');
    for (const d of s3.deltas.filter((d) => d.name === 'Udp:NoPorts')) assert.equal(d.delta, 10);
    // The readings of other namespaces are tagged; the kernel's host-wide ones come from ours alone.
    assert.ok(s3.snapshot.readings.filter((r) => r.hostWide).every((r) => r.netns === undefined));
    assert.ok(s3.snapshot.readings.some((r) => r.netns === undefined), "our own namespace's are there, untagged");

    // Priority: the namespace of this interval's drops is read first, though it was read just now.
    const x = [...first][0]!;
    const xs = spaces.find((n) => inode.get(n.name) === x)!;
    noPorts(xs, 7);
    const s4 = s.sample(closing(x));
    const xMoved = s4.deltas.find((d) => d.name === 'Udp:NoPorts' && d.netns === x);
    assert.equal(xMoved?.delta, 7, 'read first, with what moved since its last read');
    assert.deepEqual(s4.snapshot.skipped, { namespaces: 4, of: 6 });
    s.close();
  });

  test('a budget of time: at least one namespace each interval, the others in turn', () => {
    const s = sampler({ namespaces: 100, ms: 0, baselineMs: 0 });
    const b = s.baseline();
    assert.equal(b.namespacesRead, 1);
    assert.deepEqual(b.skipped, { namespaces: 5, of: 6 });
    const seen = readIn(b.readings);
    for (let i = 0; i < 5; i++) for (const n of readIn(s.sample().snapshot.readings)) seen.add(n);
    assert.equal(seen.size, 6);
    s.close();
  });

  test('a namespace deleted mid-run is read a last time (what moved before), then let go', () => {
    const reg = registry();
    const s = sampler({ namespaces: 1, ms: 60_000, baselineMs: 60_000 }, reg);
    s.baseline();
    for (let i = 0; i < 6; i++) s.sample(); // every namespace has its baseline
    const victim = spaces[spaces.length - 1];
    const ino = inode.get(victim.name)!;
    noPorts(victim, 13);
    const p = join(dir, victim.name);
    sh('umount', ['-l', p]);
    rmSync(p);
    mounted.delete(p);
    victim.delete();
    const last = s.sample();
    assert.equal(last.deltas.find((d) => d.name === 'Udp:NoPorts' && d.netns === ino)?.delta, 13, 'gone first, read with the one-namespace budget');
    assert.equal(reg.get(ino), undefined, 'released after its final read');
    assert.ok(reg.netns(ino)?.gone, 'when it went away is known');
    assert.equal(reg.netns(ino)?.name, victim.name);
    const next = s.sample();
    assert.ok(!next.deltas.some((d) => d.netns === ino));
    s.close();
    spaces.pop();
  });

  test('one namespace: an idle one costs a probe, a full read when something moved; a dropping socket is named', async () => {
    const ns = spaces[0];
    const t = resolveNetns(ns.name);
    try {
      const r = new NamespaceReader(t.inode, t, `netns ${ns.name}`, { fullEvery: 1000 });
      assert.equal(r.read().full, true, 'the baseline');
      const idle = r.read();
      assert.deepEqual([idle.full, idle.deltas.length], [false, 0]);
      noPorts(ns, 4);
      const busy = r.read();
      assert.equal(busy.full, true);
      assert.equal(busy.deltas.find((d) => d.name === 'Udp:NoPorts')?.delta, 4);
      assert.ok(busy.deltas.every((d) => d.netns === t.inode));
      assert.equal(r.read(true).full, true, 'forced');

      // A socket that drops: its counter moves, and its process is named.
      const receiver = spawn('ip', ['netns', 'exec', ns.name, 'python3', '-c',
        "import socket,time\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)\ns.bind(('127.0.0.1', 7001))\nprint('ready', flush=True)\ntime.sleep(60)"],
        { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        await new Promise<void>((resolve, reject) => {
          receiver.stdout.on('data', () => resolve());
          receiver.on('exit', () => reject(new Error('the receiver exited')));
        });
        ns.exec('bash', ['-c', 'for i in $(seq 200); do echo xxxxxxxx > /dev/udp/127.0.0.1/7001; done']);
        const drops = r.read().deltas.find((d) => d.name === 'socket:drops');
        assert.ok(drops && drops.delta > 0, 'socket:drops moved');
        assert.match(drops.detail ?? '', /\(python3\)/, `the owner is named: ${JSON.stringify(drops)}`);
      } finally {
        receiver.kill('SIGKILL');
      }
      r.close();
    } finally {
      releaseNetns(t);
    }
  });
});
