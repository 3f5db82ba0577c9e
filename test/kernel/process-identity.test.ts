/**
 * A process's identity (pid, start time, PID namespace, boot) and whether its
 * owner is alive: a live child, a child that exited (reaped or a zombie), a pid
 * reused by a process that started at another time, another PID namespace,
 * another boot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INITIAL_PID_NAMESPACE, liveness, pidNamespaceInode, processStart, selfIdentity } from '../../src/kernel/process-identity.js';

test('this process: its start time is field 22 of /proc/self/stat, its PID namespace and boot are read', () => {
  const me = selfIdentity();
  assert.ok(me, 'identity read');
  const stat = readFileSync('/proc/self/stat', 'latin1');
  assert.equal(me.start, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]));
  assert.equal(me.pid, process.pid);
  assert.match(me.boot, /^[0-9a-f-]{36}$/);
  assert.equal(me.pidns, pidNamespaceInode());
  assert.equal(liveness(me, me), 'alive');
});

test('a command name with spaces and parentheses does not shift the fields', async () => {
  // The command name (comm) is the name the program was run by: a link named ") x ( y".
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-comm-'));
  const link = join(dir, ') x ( y');
  symlinkSync(process.execPath, link);
  const child = spawn(link, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    assert.match(readFileSync(`/proc/${child.pid}/stat`, 'latin1'), /\(\) x \( y\)/);
    const start = processStart(child.pid!);
    assert.ok(start !== undefined && start >= selfIdentity()!.start, `start ${start}`);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an owner that exited is dead, a zombie too; a pid with another start time is a reused pid, dead', async () => {
  const me = selfIdentity()!;
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const owner = { ...me, pid: child.pid!, start: processStart(child.pid!)! };
  assert.equal(liveness(owner, me), 'alive');
  assert.equal(liveness({ ...owner, start: owner.start + 1 }, me), 'dead', 'the pid now names a process that started at another time');
  // Not reaped yet right after SIGKILL: a zombie, which holds nothing.
  process.kill(child.pid!, 'SIGKILL');
  for (let i = 0; i < 50 && !/\) Z /.test(readStatOrEmpty(child.pid!)); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(liveness(owner, me), 'dead', 'zombie');
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
  assert.equal(processStart(child.pid!), undefined);
  assert.equal(liveness(owner, me), 'dead', 'reaped');
});

function readStatOrEmpty(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return '';
  }
}

test('another PID namespace cannot be judged; another boot is dead', () => {
  const me = selfIdentity()!;
  assert.equal(liveness({ ...me, pidns: me.pidns + 1 }, me), 'unknown');
  assert.equal(liveness({ ...me, boot: '00000000-0000-0000-0000-000000000000' }, me), 'dead');
});

test('a new PID namespace has another inode than ours and than the initial one', { skip: process.getuid?.() !== 0 ? 'needs root (unshare --pid)' : false }, (t) => {
  const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'readlink', '/proc/self/ns/pid'], { encoding: 'utf8' });
  if (r.status !== 0) return t.skip(`unshare failed: ${r.stderr.trim()}`);
  const inode = Number(/^pid:\[(\d+)\]$/.exec(r.stdout.trim())?.[1]);
  assert.ok(inode > 0, r.stdout);
  assert.notEqual(inode, pidNamespaceInode());
  assert.notEqual(inode, INITIAL_PID_NAMESPACE);
});
