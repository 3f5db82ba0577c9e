/**
 * Secret files: created exclusively with mode 0600, never through a symlink;
 * read only when they are regular files of this user that nobody else can
 * read; a FIFO planted in their place does not hang the reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateFile, PrivateFileError, readOrFillPrivateFile, readPrivateFile } from '../../src/kernel/private-file.js';

const isRoot = process.geteuid?.() === 0;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-private-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PrivateFileError, String(err));
    return err.problem;
  }
  assert.fail('no error');
}

test('created once, mode 0600, then read; a second creation leaves it alone', () =>
  withDir((dir) => {
    const f = join(dir, 'token');
    assert.equal(createPrivateFile(f, 'secret-1\n'), true);
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.equal(createPrivateFile(f, 'secret-2\n'), false, 'O_EXCL: an existing file is never replaced');
    assert.equal(readPrivateFile(f), 'secret-1\n');
  }));

test('a symlink in its place is neither followed when creating nor when reading', () =>
  withDir((dir) => {
    const target = join(dir, 'elsewhere');
    const f = join(dir, 'token');
    symlinkSync(target, f);
    assert.equal(createPrivateFile(f, 'x'), false);
    assert.equal(existsSync(target), false, 'nothing was created through the link');
    writeFileSync(target, 'not a secret', { mode: 0o600 });
    assert.equal(problem(() => readPrivateFile(f)), 'symlink');
    assert.equal(problem(() => readOrFillPrivateFile(f, () => 'x')), 'symlink');
    assert.equal(readFileSync(target, 'utf8'), 'not a secret', 'the link target is untouched');
  }));

test('missing, readable by others, a FIFO: each refused with its reason, without hanging', () =>
  withDir((dir) => {
    assert.equal(problem(() => readPrivateFile(join(dir, 'none'))), 'missing');
    const open = join(dir, 'open');
    writeFileSync(open, 'x');
    chmodSync(open, 0o644);
    assert.equal(problem(() => readPrivateFile(open)), 'mode');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    assert.equal(problem(() => readPrivateFile(fifo)), 'not-a-file');
    assert.equal(problem(() => readOrFillPrivateFile(fifo, () => 'x')), 'not-a-file');
  }));

test('a file of another user is refused', { skip: isRoot ? false : 'needs root (chown)' }, () =>
  withDir((dir) => {
    const f = join(dir, 'token');
    writeFileSync(f, 'planted', { mode: 0o600 });
    chownSync(f, 65534, 65534);
    assert.equal(problem(() => readPrivateFile(f)), 'owner');
  }));

test('an empty file (a crash before the first write) is filled; a full one is kept', () =>
  withDir((dir) => {
    const f = join(dir, 'token');
    writeFileSync(f, '', { mode: 0o600 });
    assert.equal(readOrFillPrivateFile(f, () => 'fresh\n'), 'fresh\n');
    assert.equal(readFileSync(f, 'utf8'), 'fresh\n');
    assert.equal(readOrFillPrivateFile(f, () => 'other\n'), 'fresh\n');
  }));
