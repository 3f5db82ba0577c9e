/**
 * The namespace registry against the kernel: namespaces found by `ip netns`
 * name and by process, held by descriptor (readable after `ip netns del`,
 * marked gone, released after their final read), and the opening rules:
 * FIFOs, ordinary files and symbolic links are refused, without blocking;
 * --netns takes names, pids and /proc/PID/ns/net only.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsRegistry } from '../../src/kernel/netns-registry.js';
import { NetnsOpenError, openNetnsByName, openNetnsOfPid } from '../../src/kernel/netns-handle.js';
import { resolveNetns, withNetns } from '../../src/kernel/setns.js';
import { resolveNetnsSpec } from '../../src/kernel/namespaces.js';
import { readProcCounters } from '../../src/sources/counters/proc-reader.js';
import { UsageError } from '../../src/core/errors.js';
import { kernelTest } from '../helpers/env.js';
import { TestNetns, sh } from '../helpers/netns.js';

after(() => TestNetns.cleanupAll());

/** A private directory standing for /run/netns, so that odd files never reach other programs' `ip netns list`. */
function oddDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-netns-'));
  sh('mkfifo', [join(dir, 'fifo')]);
  writeFileSync(join(dir, 'plain'), '');
  return dir;
}

function noPorts(ns: TestNetns, n: number): void {
  ns.exec('bash', ['-c', `for i in $(seq ${n}); do echo x > /dev/udp/127.0.0.1/9; done`]);
}

test('a FIFO, an ordinary file and a symbolic link are refused, and nothing blocks', kernelTest(), () => {
  const ns = new TestNetns('odd');
  const dir = oddDir();
  try {
    symlinkSync(`/run/netns/${ns.name}`, join(dir, 'link'));
    // In a child, so that a blocking open would fail the test by its timeout instead of hanging it.
    const handle = fileURLToPath(new URL('../../src/kernel/netns-handle.js', import.meta.url));
    const script = `
      import { openNetnsByName } from ${JSON.stringify(handle)};
      const out = {};
      for (const name of ['fifo', 'plain', 'link']) {
        try { openNetnsByName(name, name, [${JSON.stringify(dir)}]); out[name] = 'opened'; }
        catch (e) { out[name] = e.constructor.name + ': ' + e.message; }
      }
      process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, `the child was killed (blocked?): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    assert.match(out.fifo, /^NetnsOpenError: .*is not a network namespace \(a FIFO\)/);
    assert.match(out.plain, /^NetnsOpenError: .*is not a network namespace \(an ordinary file/);
    assert.match(out.link, /^NetnsOpenError: .*is not a network namespace \(a symbolic link\)/);

    // The registry looking at that directory holds none of them.
    const reg = new NetnsRegistry({ bindDirs: [dir], proc: dir });
    reg.refresh({ force: true });
    assert.deepEqual(reg.list(), []);
    reg.close();

    // --netns: names, pids and /proc/PID/ns/net; any other path is refused before anything is opened.
    assert.throws(() => resolveNetns(join(dir, 'fifo')), (e: unknown) => e instanceof UsageError && /neither an ip netns name nor \/proc\/PID\/ns\/net/.test(e.message));
    assert.throws(() => resolveNetnsSpec('/etc/passwd'), (e: unknown) => e instanceof UsageError && /neither an ip netns name/.test(e.message));
    assert.throws(() => resolveNetnsSpec('/proc/self/ns/mnt'), UsageError);
    assert.throws(() => resolveNetnsSpec('../../etc/passwd'), UsageError);
    assert.throws(() => openNetnsByName('..'), NetnsOpenError);
    assert.throws(() => openNetnsOfPid(0), NetnsOpenError);
    const byName = resolveNetns(ns.name);
    const byPath = resolveNetns(`/run/netns/${ns.name}`);
    const byPid = resolveNetns(`/proc/${process.pid}/ns/net`);
    assert.equal(byPath.inode, byName.inode);
    assert.notEqual(byPid.inode, byName.inode);
    for (const t of [byName, byPath, byPid]) assert.ok(t.fd !== undefined && t.fd >= 0, 'held by a descriptor');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    ns.delete();
  }
});

test('names and processes are found; a deleted namespace stays readable, is marked gone, and is released after its final read', kernelTest(), async () => {
  const named = new TestNetns('reg');
  let now = 1_000_000;
  const reg = new NetnsRegistry({ now: () => now, pidScanMs: 60_000 });
  // A namespace with no name: only its process refers to it.
  const child = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
  try {
    let anon: number | undefined;
    const deadline = Date.now() + 10_000;
    while (anon === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      const link = spawnSync('readlink', [`/proc/${child.pid}/ns/net`], { encoding: 'utf8' }).stdout.trim();
      const ino = Number(/^net:\[(\d+)\]$/.exec(link)?.[1]);
      if (ino && ino !== reg.ownInode) anon = ino;
    }
    assert.ok(anon, 'unshare started');
    reg.refresh({ force: true });
    const target = resolveNetns(named.name);
    const held = reg.get(target.inode);
    assert.equal(held?.name, named.name);
    assert.equal(reg.netns(target.inode)?.name, named.name);
    assert.equal(reg.netns(target.inode)?.gone, undefined);
    const byPid = reg.get(anon);
    assert.ok(byPid, 'the namespace of a process is held');
    assert.ok(byPid.pids.includes(child.pid!), `its process is known: ${JSON.stringify(byPid.pids)}`);

    // Counters of the named namespace, then it is deleted: the held descriptor still reads it.
    noPorts(named, 25);
    named.delete();
    const after = withNetns(held!.target, () => readProcCounters({ sockets: 'none' }));
    assert.equal(after.readings.find((r) => r.name === 'Udp:NoPorts')?.value, 25, 'the counters it ended with');
    now += 1000;
    reg.refresh();
    assert.equal(reg.get(target.inode)?.gone, now, 'gone, and when');
    assert.equal(reg.netns(target.inode)?.gone, now);
    reg.sampled(target.inode);
    assert.equal(reg.get(target.inode), undefined, 'released after its final read');
    assert.deepEqual(reg.netns(target.inode), { name: named.name, gone: now }, 'its name is remembered');

    // The process exits: its namespace is gone at the next refresh (its known processes are checked between scans).
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    now += 1000;
    reg.refresh();
    assert.equal(reg.get(anon)?.gone, now);
    reg.sampled(anon);
    assert.equal(reg.get(anon), undefined);
  } finally {
    child.kill('SIGKILL');
    reg.close();
    named.delete();
  }
});

test('at most maxHeld namespaces are held; those gone longest are released first', kernelTest(), () => {
  const a = new TestNetns('cap');
  const b = new TestNetns('cap');
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-netns-cap-'));
  const mounts: string[] = [];
  let now = 5_000;
  try {
    // Bind mounts of our own namespaces only, in a directory of our own.
    for (const ns of [a, b]) {
      const p = join(dir, ns.name);
      writeFileSync(p, '');
      sh('mount', ['--bind', `/run/netns/${ns.name}`, p]);
      mounts.push(p);
    }
    const reg = new NetnsRegistry({ bindDirs: [dir], proc: dir, maxHeld: 1, now: () => now });
    reg.refresh();
    assert.equal(reg.list().length, 1);
    assert.equal(reg.notHeld, 1, 'the other is counted');
    const first = reg.list()[0];
    // As `ip netns del` does: unmount (a plain umount: the namespace held does not keep the mount busy), remove the name.
    sh('umount', [join(dir, first.name!)]);
    rmSync(join(dir, first.name!));
    mounts.splice(mounts.indexOf(join(dir, first.name!)), 1);
    now += 10;
    reg.refresh(); // the first is gone, and makes room for the second
    reg.refresh();
    assert.deepEqual(
      reg.list().map((n) => n.name),
      [first.name === a.name ? b.name : a.name],
    );
    assert.equal(reg.netns(first.inode)?.gone, now);
    reg.close();
  } finally {
    for (const p of mounts) sh('umount', [p]);
    rmSync(dir, { recursive: true, force: true });
    a.delete();
    b.delete();
  }
});
