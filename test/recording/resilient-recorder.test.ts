/**
 * The service's recorder never costs monitoring: a file that is not a
 * database, a damaged one (found at opening or while writing), another
 * program's database are moved aside (FILE.broken-TIME, with their journal
 * files) and a new recording starts; a newer dropmon's recording is left
 * untouched and nothing is recorded; a file that cannot be opened yet is
 * tried again at every interval, and the intervals lost meanwhile are
 * counted in the recording. record() never throws for any of it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import { ResilientRecorder, type ResetCause } from '../../src/recording/resilient-recorder.js';
import { SCHEMA_VERSION } from '../../src/recording/schema.js';
import { syntheticInterval } from './synthetic.js';

const root = mkdtempSync(join(tmpdir(), 'dropmon-resilient-'));
after(() => rmSync(root, { recursive: true, force: true }));
let serial = 0;
const T0 = Date.UTC(2026, 0, 1);
const NOW = Date.UTC(2026, 5, 1, 12, 30, 45);
const clocks = { wallMs: () => NOW, monoMs: () => 0 };

/** A fresh folder per test: the moved-aside files are looked for in it. */
function newDir(): string {
  const d = join(root, `d${serial++}`);
  rmSync(d, { recursive: true, force: true });
  return mkdtempSync(`${d}-`);
}

function harness(file: string) {
  const warnings: string[] = [];
  const resets: [ResetCause, string][] = [];
  const rec = new ResilientRecorder(file, {
    source: 'bpf',
    intervalMs: 1000,
    clocks,
    warn: (m) => warnings.push(m),
    onReset: (why, to) => resets.push([why, to]),
  });
  let seq = 0;
  const write = (n = 1) => {
    for (let i = 0; i < n; i++) rec.record({ interval: syntheticInterval(++seq, T0, 1000) });
  };
  return { rec, warnings, resets, write };
}

function intervalsIn(file: string): number {
  const r = openRecording(file);
  try {
    return r.totals().intervals;
  } finally {
    r.close();
  }
}

/** A good recording of `n` intervals with many points (many pages). */
function goodRecording(file: string, n: number): void {
  const w = new Recorder(file, { source: 'tracefs' });
  for (let s = 1; s <= n; s++) w.record({ interval: syntheticInterval(s, T0, 1000, { points: 20, firstPoint: s * 20 }) });
  w.close();
}

describe('a recording that cannot be used is moved aside and a new one started', () => {
  test('a file that is not a database, with a -wal beside it', () => {
    const dir = newDir();
    const file = join(dir, 'dropmon.db');
    const junk = 'not a database\n'.repeat(300);
    writeFileSync(file, junk);
    writeFileSync(`${file}-wal`, 'a journal that belongs to the old file');
    const h = harness(file);
    assert.equal(h.rec.state, 'recording');
    const moved = `${file}.broken-20260601T123045Z`;
    assert.deepEqual(h.resets, [['not_a_database', moved]]);
    assert.equal(readFileSync(moved, 'utf8'), junk, 'nothing is deleted');
    assert.ok(existsSync(`${moved}-wal`), 'its journal moved with it (it would be replayed into the new file)');
    assert.equal(h.warnings.length, 1);
    assert.match(h.warnings[0], /not a dropmon recording \(not an SQLite database\); moved it to .*dropmon\.db\.broken-20260601T123045Z and started a new recording/);
    h.write(3);
    h.rec.close();
    assert.equal(intervalsIn(file), 3);
    assert.equal(h.rec.stats.intervalsWritten, 3);
  });

  test('a damaged file, found at opening; a second one the same second gets its own name', () => {
    const dir = newDir();
    const file = join(dir, 'dropmon.db');
    for (const k of [1, 2]) {
      goodRecording(file, 20);
      const b = readFileSync(file);
      for (let i = 100; i < 4096; i++) b[i] = (i * 7919) & 0xff;
      writeFileSync(file, b);
      const h = harness(file);
      assert.equal(h.resets.length, 1);
      assert.equal(h.resets[0][0], 'corrupt');
      assert.equal(h.resets[0][1], `${file}.broken-20260601T123045Z${k === 1 ? '' : '-2'}`);
      assert.match(h.warnings[0], /is a damaged recording \(database disk image is malformed\); moved it to/);
      h.write();
      h.rec.close();
      assert.equal(intervalsIn(file), 1);
    }
  });

  test('a damaged page found while writing: moved aside, the next intervals go to a new file', () => {
    const dir = newDir();
    const file = join(dir, 'dropmon.db');
    goodRecording(file, 200);
    const b = readFileSync(file);
    for (let i = b.length - 16384; i < b.length; i++) b[i] = (i * 7919) & 0xff;
    writeFileSync(file, b);
    const h = harness(file);
    assert.equal(h.rec.state, 'recording', 'it opens: the damage is deeper in the file');
    assert.deepEqual(h.resets, []);
    h.rec.record({ interval: syntheticInterval(201, T0, 1000, { points: 20, firstPoint: 99_999 }) });
    assert.equal(h.resets.length, 1, h.warnings.join(' | '));
    assert.equal(h.resets[0][0], 'corrupt');
    assert.match(h.warnings.at(-1)!, /is damaged \(SQLITE_CORRUPT while writing\); moved it to/);
    h.write(2);
    h.rec.close();
    assert.equal(intervalsIn(file), 2);
    assert.equal(h.rec.stats.intervalsUnwritten, 1, 'the interval that met the damage is counted');
    assert.equal(statSync(h.resets[0][1]).size, b.length);
  });

  test("another program's database, and a recording holding a view dropmon does not write", () => {
    for (const sql of ['CREATE TABLE songs (title TEXT)', null]) {
      const dir = newDir();
      const file = join(dir, 'dropmon.db');
      if (sql) {
        const db = new Database(file);
        db.exec(sql);
        db.close();
      } else {
        goodRecording(file, 2);
        const db = new Database(file);
        db.exec('CREATE VIEW everything AS SELECT * FROM intervals');
        db.close();
      }
      const h = harness(file);
      assert.equal(h.resets[0]?.[0], 'foreign', h.warnings.join(' | '));
      h.write();
      h.rec.close();
      assert.equal(intervalsIn(file), 1);
    }
  });
});

describe('what is not moved aside', () => {
  test("a newer dropmon's recording: left untouched, nothing recorded, monitoring goes on", () => {
    const dir = newDir();
    const file = join(dir, 'dropmon.db');
    goodRecording(file, 2);
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    const before = readFileSync(file);
    const h = harness(file);
    assert.equal(h.rec.state, 'off');
    assert.deepEqual(h.resets, []);
    assert.equal(h.warnings.length, 1);
    assert.match(h.warnings[0], new RegExp(`schema version ${SCHEMA_VERSION + 1}.*left as it is \\(moving it aside would hide a newer dropmon's data from it\\); monitoring goes on without recording`));
    h.write(5);
    h.rec.close();
    assert.deepEqual(readFileSync(file), before, 'not a byte changed');
    assert.deepEqual(readdirSync(dir), ['dropmon.db']);
    assert.equal(h.warnings.length, 1, 'said once');
  });

  test('a file left without a schema (its creation ran out of space): created in place', () => {
    const dir = newDir();
    const file = join(dir, 'dropmon.db');
    const db = new Database(file);
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('application_id = 0x4472704d');
    db.close();
    assert.ok(statSync(file).size > 0);
    const h = harness(file);
    assert.equal(h.rec.state, 'recording', h.warnings.join(' | '));
    assert.deepEqual(h.resets, []);
    h.write();
    h.rec.close();
    assert.equal(intervalsIn(file), 1);
    assert.deepEqual(readdirSync(dir), ['dropmon.db']);
  });

  test('a file that cannot be opened yet: tried at every interval, lost intervals counted, resumes', () => {
    const dir = newDir();
    // A file where its folder should be: the recording cannot be created until it goes away.
    const blocker = join(dir, 'state');
    writeFileSync(blocker, '');
    const file = join(blocker, 'dropmon.db');
    const h = harness(file);
    assert.equal(h.rec.state, 'waiting');
    h.write(4);
    assert.equal(h.rec.stats.intervalsUnwritten, 4);
    assert.equal(h.warnings.length, 1, h.warnings.join(' | '));
    assert.match(h.warnings[0], /cannot (record to|open) .*state\/dropmon\.db.*; monitoring goes on, intervals are dropped and counted until the recording can be opened/);
    rmSync(blocker);
    h.write();
    assert.equal(h.rec.state, 'recording');
    assert.match(h.warnings.at(-1)!, /recording to .* resumed; 4 interval\(s\) could not be written/);
    h.write();
    h.rec.close();
    assert.equal(h.rec.stats.intervalsUnwritten, 4);
    const r = openRecording(file);
    try {
      assert.equal(r.totals().intervals, 2);
      assert.equal(r.totals().intervalsUnwritten, 4, 'the gap is in the recording');
      assert.equal(r.intervals()[0].gapBefore, 4);
      assert.equal(r.meta().sessions[0].intervalsUnwritten, 4);
    } finally {
      r.close();
    }
  });
});
