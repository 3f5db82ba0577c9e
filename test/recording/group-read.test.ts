/**
 * Sharing a recording with the API process's group: the database and its
 * -wal/-shm become group-readable and nothing more, and a link planted in
 * their place is left alone (root would otherwise hand its target to that
 * group).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shareWithGroup } from '../../src/recording/group-read.js';

const SKIP = process.getuid?.() !== 0 ? 'not root: only root gives a file to another group' : undefined;
const GID = 65534;

test('the recording and its -wal become group-readable, a planted -shm link is left alone', { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-group-read-'));
  try {
    const db = join(dir, 'dropmon.db');
    const target = join(dir, 'secret');
    writeFileSync(db, 'x', { mode: 0o600 });
    writeFileSync(`${db}-wal`, 'x', { mode: 0o666 });
    writeFileSync(target, 'secret', { mode: 0o600 });
    symlinkSync(target, `${db}-shm`);
    shareWithGroup(db, GID);
    for (const f of [db, `${db}-wal`]) {
      const st = statSync(f);
      assert.equal(st.gid, GID, f);
      assert.equal(st.mode & 0o777, 0o640, f);
    }
    const t = statSync(target);
    assert.equal(t.gid, 0, 'the link was not followed');
    assert.equal(t.mode & 0o777, 0o600);
    assert.ok(lstatSync(`${db}-shm`).isSymbolicLink());
    // Missing files are fine; a second call changes nothing.
    shareWithGroup(join(dir, 'missing.db'), GID);
    shareWithGroup(db, GID);
    assert.equal(statSync(db).mode & 0o777, 0o640);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
