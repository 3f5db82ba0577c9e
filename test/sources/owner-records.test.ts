/**
 * Owner records: written atomically, 0600 in 0700 directories, read back;
 * never trusted when someone else could have planted them (a symlink, a file
 * or directory of another user or writable by others, a FIFO, garbage); and
 * removed only by the owner they name.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OwnerRecords } from '../../src/sources/owner-records.js';
import { selfIdentity } from '../../src/kernel/process-identity.js';

const base = mkdtempSync(join(tmpdir(), 'dropmon-owners-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = () => new OwnerRecords(join(base, `run${n++}`, 'dropmon'));
const ROOT = process.getuid?.() === 0;

test('written and read back: this process, what it started; 0600 in 0700 directories, no temporary left', () => {
  const r = fresh();
  mkdirSync(join(r.dir, '..'), { recursive: true });
  r.write('netdm.owner', { sw: true, hw: false });
  r.write('tracefs/dropmon-1.owner');
  assert.deepEqual(r.read('netdm.owner'), { owner: selfIdentity(), detail: { sw: true, hw: false } });
  assert.deepEqual(r.read('tracefs/dropmon-1.owner')?.owner, selfIdentity());
  assert.equal(statSync(join(r.dir, 'netdm.owner')).mode & 0o777, 0o600);
  assert.equal(statSync(r.dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(r.dir, 'tracefs')).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(r.dir).sort(), ['netdm.owner', 'tracefs']);
  assert.deepEqual(r.list('tracefs', '.owner'), ['tracefs/dropmon-1.owner']);
  // Written again: replaced whole.
  r.write('netdm.owner', { sw: true, hw: true });
  assert.deepEqual(r.read('netdm.owner')?.detail, { sw: true, hw: true });
});

test('a looser directory of ours is tightened to 0700', () => {
  const r = fresh();
  mkdirSync(r.dir, { recursive: true, mode: 0o755 });
  chmodSync(r.dir, 0o755);
  r.write('netdm.owner');
  assert.equal(statSync(r.dir).mode & 0o777, 0o700);
});

test('removed only when it names the owner given', () => {
  const r = fresh();
  mkdirSync(join(r.dir, '..'), { recursive: true });
  r.write('netdm.owner');
  const me = selfIdentity()!;
  r.remove('netdm.owner', { ...me, start: me.start + 1 });
  assert.ok(r.read('netdm.owner'), 'another owner named: kept');
  r.remove('netdm.owner', me);
  assert.equal(r.read('netdm.owner'), undefined);
  r.remove('netdm.owner', me); // gone already: nothing to do
});

test('not trusted: a symlink, a FIFO, a directory writable by others, garbage, a wrong identity', () => {
  const r = fresh();
  mkdirSync(join(r.dir, '..'), { recursive: true });
  r.write('real.owner');
  symlinkSync(join(r.dir, 'real.owner'), join(r.dir, 'link.owner'));
  assert.equal(r.read('link.owner'), undefined, 'symlink');
  execFileSync('mkfifo', [join(r.dir, 'fifo.owner')]);
  assert.equal(r.read('fifo.owner'), undefined, 'a FIFO: refused without blocking');
  writeFileSync(join(r.dir, 'garbage.owner'), 'not json', { mode: 0o600 });
  assert.equal(r.read('garbage.owner'), undefined);
  writeFileSync(join(r.dir, 'wrong.owner'), JSON.stringify({ pid: -1, start: 1, pidns: 1, boot: 'x' }), { mode: 0o600 });
  assert.equal(r.read('wrong.owner'), undefined);
  writeFileSync(join(r.dir, 'loose.owner'), JSON.stringify({ ...selfIdentity(), detail: {} }), { mode: 0o666 });
  chmodSync(join(r.dir, 'loose.owner'), 0o666);
  assert.equal(r.read('loose.owner'), undefined, 'writable by others');
  // A directory others can write into: nothing in it counts, and nothing is written there.
  mkdirSync(join(r.dir, 'open'), { mode: 0o777 });
  chmodSync(join(r.dir, 'open'), 0o777);
  writeFileSync(join(r.dir, 'open', 'x.owner'), JSON.stringify({ ...selfIdentity(), detail: {} }), { mode: 0o600 });
  assert.equal(r.read('open/x.owner'), undefined);
  assert.deepEqual(r.list('open', '.owner'), []);
  assert.throws(() => r.write('open/y.owner'), /not a directory of root's alone/);
  // The record directory itself a symlink (to a directory of ours): refused.
  const elsewhere = fresh();
  mkdirSync(join(elsewhere.dir, '..'), { recursive: true });
  symlinkSync(r.dir, elsewhere.dir);
  assert.ok(lstatSync(elsewhere.dir).isSymbolicLink());
  assert.equal(elsewhere.read('real.owner'), undefined);
  assert.throws(() => elsewhere.write('x.owner'));
});

test("not trusted: a record or a directory of another user", { skip: ROOT ? false : 'needs root (chown)' }, () => {
  const r = fresh();
  mkdirSync(join(r.dir, '..'), { recursive: true });
  r.write('netdm.owner');
  chownSync(join(r.dir, 'netdm.owner'), 65534, 65534);
  assert.equal(r.read('netdm.owner'), undefined, "nobody's file");
  chownSync(join(r.dir, 'netdm.owner'), 0, 0);
  assert.ok(r.read('netdm.owner'));
  chownSync(r.dir, 65534, 65534);
  assert.equal(r.read('netdm.owner'), undefined, "in nobody's directory");
  assert.throws(() => r.write('netdm.owner'), /not a directory of root's alone/);
});
