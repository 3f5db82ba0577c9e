/**
 * Storage failures on a real, tiny tmpfs mounted for the test: a full disk
 * drops and counts intervals with one warning and recording resumes when
 * space comes back; a disk full when the service's recorder starts is
 * handled the same way (opening is tried again at every interval); a
 * read-only file system gives one clear error at open and its recordings
 * stay readable. Needs root (mount); skipped otherwise.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DropmonError } from '../../src/core/errors.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import { ResilientRecorder } from '../../src/recording/resilient-recorder.js';
import { syntheticInterval } from './synthetic.js';

const skip = process.getuid?.() !== 0 ? 'not root: mounting a tmpfs needs root' : false;
if (skip) process.stderr.write(`# skipping storage tests: ${skip}\n`);
const T0 = Date.UTC(2026, 0, 1);

describe('storage failures', { skip }, () => {
  let mnt = '';
  before(() => {
    mnt = mkdtempSync(join(tmpdir(), 'dropmon-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'dropmon-test', mnt]);
  });
  after(() => {
    try {
      execFileSync('umount', [mnt]);
    } finally {
      rmdirSync(mnt);
    }
  });

  test('a full disk: intervals are dropped and counted with one warning, monitoring goes on, writing resumes', () => {
    const file = join(mnt, 'full.db');
    const warnings: string[] = [];
    const rec = new Recorder(file, { source: 'tracefs', warn: (m) => warnings.push(m) });
    let s = 0;
    // A storm of new drop points fills 256 KiB within a few hundred intervals.
    while (rec.stats.intervalsUnwritten === 0 && s < 5000) {
      s++;
      rec.record({ interval: syntheticInterval(s, T0, 1000, { points: 64, firstPoint: s * 64 }) });
    }
    assert.ok(rec.stats.intervalsUnwritten > 0, 'the disk filled up');
    for (let k = 0; k < 5; k++) rec.record({ interval: syntheticInterval(++s, T0, 1000, { points: 64, firstPoint: s * 64 }) });
    const unwritten = rec.stats.intervalsUnwritten;
    assert.ok(unwritten >= 6, `unwritten ${unwritten}`);
    assert.equal(warnings.length, 1, `one warning while failing: ${warnings.join(' | ')}`);
    assert.match(warnings[0], /disk is full \(SQLITE_FULL\).*monitoring goes on/);

    execFileSync('mount', ['-o', 'remount,size=16m', mnt]);
    rec.record({ interval: syntheticInterval(s + 1, T0, 1000, { points: 2 }) });
    assert.equal(rec.stats.intervalsUnwritten, unwritten, 'writing resumed');
    assert.equal(warnings.length, 2);
    assert.match(warnings[1], new RegExp(`resumed; ${unwritten} interval\\(s\\) could not be written`));
    const written = rec.stats.intervalsWritten;
    rec.close();

    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.equal(t.intervals, written);
      assert.equal(t.intervalsUnwritten, unwritten, 'the gap is recorded with the interval after it');
      assert.equal(r.intervals().at(-1)!.gapBefore, unwritten);
      assert.equal(r.meta().sessions[0].intervalsUnwritten, unwritten);
    } finally {
      r.close();
    }
  });

  test('a disk full at start: the recorder waits, tries again each interval, and resumes with the gap counted', () => {
    const existing = join(mnt, 'start.db');
    const w = new Recorder(existing, { source: 'tracefs' });
    for (let s = 1; s <= 3; s++) w.record({ interval: syntheticInterval(s, T0, 1000) });
    w.close();
    const filler = join(mnt, 'filler');
    try {
      for (;;) appendFileSync(filler, Buffer.alloc(4096));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    try {
      for (const file of [existing, join(mnt, 'new.db')]) {
        const warnings: string[] = [];
        const rec = new ResilientRecorder(file, { source: 'tracefs', warn: (m) => warnings.push(m), onReset: () => assert.fail('nothing is broken') });
        assert.equal(rec.state, 'waiting', `${file}: ${warnings.join(' | ')}`);
        for (let s = 4; s <= 6; s++) rec.record({ interval: syntheticInterval(s, T0, 1000) });
        assert.equal(rec.stats.intervalsUnwritten, 3);
        assert.equal(warnings.length, 1, warnings.join(' | '));
        assert.match(warnings[0], /disk is full|SQLITE_FULL|no space/i);
        rec.close();
      }
      rmSync(filler);
      const warnings: string[] = [];
      const rec = new ResilientRecorder(existing, { source: 'tracefs', warn: (m) => warnings.push(m) });
      assert.equal(rec.state, 'recording', warnings.join(' | '));
      rec.close();
    } finally {
      rmSync(filler, { force: true });
    }
    // The same, with space coming back while it waits.
    const file = join(mnt, 'later.db');
    try {
      for (;;) appendFileSync(filler, Buffer.alloc(4096));
    } catch {
      /* full */
    }
    const warnings: string[] = [];
    const rec = new ResilientRecorder(file, { source: 'tracefs', warn: (m) => warnings.push(m) });
    rec.record({ interval: syntheticInterval(1, T0, 1000) });
    rec.record({ interval: syntheticInterval(2, T0, 1000) });
    assert.equal(rec.state, 'waiting');
    rmSync(filler);
    rec.record({ interval: syntheticInterval(3, T0, 1000) });
    assert.equal(rec.state, 'recording');
    assert.match(warnings.at(-1)!, /resumed; 2 interval\(s\) could not be written/);
    rec.close();
    const r = openRecording(file);
    try {
      assert.equal(r.totals().intervals, 1);
      assert.equal(r.intervals()[0].gapBefore, 2);
    } finally {
      r.close();
    }
  });

  test('a read-only file system: one clear error at open; its recordings stay readable', () => {
    const file = join(mnt, 'ro.db');
    const rec = new Recorder(file, { source: 'tracefs' });
    for (let s = 1; s <= 3; s++) rec.record({ interval: syntheticInterval(s, T0, 1000) });
    rec.close();
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    try {
      assert.throws(
        () => new Recorder(file, { source: 'tracefs' }),
        (e: unknown) => e instanceof DropmonError && /cannot record to .*ro\.db: the file system is read-only/.test(e.message) && e.hint !== undefined,
      );
      assert.throws(() => new Recorder(join(mnt, 'new.db'), { source: 'tracefs' }), (e: unknown) => e instanceof DropmonError && /cannot record to .*new\.db: the file system is read-only/.test(e.message));
      const r = openRecording(file);
      try {
        assert.equal(r.totals().intervals, 3);
        assert.equal(r.totals().drops, 90);
      } finally {
        r.close();
      }
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
    }
  });
});
