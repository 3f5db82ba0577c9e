/**
 * The token the service generates when none is configured: written once into
 * the state directory (0600, owned by root, created with O_EXCL|O_NOFOLLOW),
 * the same at every later start; a symlink or a file others could read in its
 * place stops `dropmon serve` with the reason instead of being used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG } from '../../src/service/config.js';
import { dashboardUrl, DEFAULT_STATE_DIR, ensureStateToken, serviceToken, stateDirectory } from '../../src/service/token.js';
import { DropmonProcess } from '../helpers/dropmon.js';

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropmon-token-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'first start: 32 random bytes, base64url, mode 0600, owned by this user; later starts read the same',
  withDir((dir) => {
    const state = join(dir, 'state');
    const first = ensureStateToken(state);
    assert.equal(first.created, true);
    assert.match(first.token, /^[A-Za-z0-9_-]{43}$/);
    const st = statSync(first.path);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, process.geteuid?.());
    assert.equal(statSync(state).mode & 0o022, 0, 'the folder made for it is not writable by others');
    assert.equal(readFileSync(first.path, 'utf8'), `${first.token}\n`);
    const again = ensureStateToken(state);
    assert.deepEqual(again, { token: first.token, path: first.path, created: false });
    assert.notEqual(ensureStateToken(join(dir, 'other')).token, first.token, 'random, not derived');
  }),
);

test(
  'a symlink planted in its place is refused, and nothing is written through it',
  withDir((dir) => {
    const target = join(dir, 'target');
    symlinkSync(target, join(dir, 'token'));
    assert.throws(() => ensureStateToken(dir), /symbolic link/);
    assert.equal(existsSync(target), false);
    writeFileSync(target, 'attacker-chosen-token-0123456789', { mode: 0o600 });
    assert.throws(() => ensureStateToken(dir), /symbolic link/, 'not even to a file that looks like a token');
  }),
);

test(
  'a token file others can read, or a state directory others can write, is refused',
  withDir((dir) => {
    writeFileSync(join(dir, 'token'), 'readable-by-all-0123456789\n', { mode: 0o644 });
    chmodSync(join(dir, 'token'), 0o644);
    assert.throws(() => ensureStateToken(dir), /can be read or written by others/);
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.throws(() => ensureStateToken(open), /can be written by others/);
    assert.equal(existsSync(join(open, 'token')), false);
  }),
);

test(
  'a configured token wins and nothing is generated; the state directory follows the recording',
  withDir((dir) => {
    const c = { ...DEFAULT_CONFIG, stateDir: dir };
    assert.deepEqual(serviceToken({ ...c, token: 'configured-token-0123456789' }, {}), { token: 'configured-token-0123456789', created: false });
    assert.deepEqual(serviceToken(c, { DROPMON_TOKEN: 'from-the-environment-0123' }), { token: 'from-the-environment-0123', created: false });
    assert.equal(existsSync(join(dir, 'token')), false);
    const generated = serviceToken(c, {});
    assert.equal(generated.stateFile, join(dir, 'token'));
    assert.equal(generated.created, true);
    assert.equal(stateDirectory({ recording: { file: '/srv/dm/rec.db' } }), '/srv/dm');
    assert.equal(stateDirectory({ recording: { file: '' } }), DEFAULT_STATE_DIR);
    assert.equal(stateDirectory({ stateDir: '/x', recording: { file: '/srv/dm/rec.db' } }), '/x');
  }),
);

test('the dashboard URL carries the token in its fragment only', () => {
  assert.equal(dashboardUrl('127.0.0.1:9947', 'a-b_c'), 'http://127.0.0.1:9947/#token=a-b_c');
  assert.equal(dashboardUrl('0.0.0.0:9947', 't'), 'http://127.0.0.1:9947/#token=t');
  assert.equal(dashboardUrl('[::]:1', 't'), 'http://[::1]:1/#token=t');
});

test(
  'dropmon serve: a planted symlink stops it with the reason; --print-url prints the generated token',
  withDir(async (dir) => {
    symlinkSync('/etc/passwd', join(dir, 'token'));
    const refused = await new DropmonProcess(['serve', '--stopped', '--no-record', '--listen', '127.0.0.1:0', '--state-dir', dir]).finished();
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /token is a symbolic link/);
    rmSync(join(dir, 'token'));
    const printed = await new DropmonProcess(['serve', '--print-url', '--no-record', '--listen', '127.0.0.1:9999', '--state-dir', dir]).finished();
    assert.equal(printed.code, 0, printed.stderr);
    const token = readFileSync(join(dir, 'token'), 'utf8').trim();
    assert.equal(printed.stdout, `http://127.0.0.1:9999/#token=${token}\n`);
  }),
);
