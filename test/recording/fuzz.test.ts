/**
 * A recording is a file from anywhere (copied from another host, cut short,
 * damaged, edited): whatever its bytes or values, `dropmon report` ends with
 * a DropmonError naming the file, never with another exception.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { DropmonError } from '../../src/core/errors.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { renderReport, type ReportRequest } from '../../src/cli/report.js';
import { Recorder } from '../../src/recording/recorder.js';
import { counterClassifier } from '../../src/knowledge/views.js';
import { recordingDiagnosis } from '../../src/recording/diagnosis.js';
import { syntheticInterval } from './synthetic.js';

const RUNS = Math.min(300, Number(process.env.DROPMON_FUZZ_RUNS ?? 300));
const dir = mkdtempSync(join(tmpdir(), 'dropmon-fuzz-'));
const good = join(dir, 'good.db');
let original: Buffer;
after(() => rmSync(dir, { recursive: true, force: true }));

before(() => {
  const w = new Recorder(good, { source: 'tracefs' });
  for (let s = 1; s <= 20; s++)
    w.record({
      interval: syntheticInterval(s, Date.UTC(2026, 0, 1), 1000, { points: 4, lost: new Map([['cpu0', s]]), overflowDrops: s % 3 }),
      counters: [{ name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: s, value: s * s, rate: s }],
    });
  w.close();
  original = readFileSync(good);
});

const kb = loadKnowledge();
let serial = 0;

/** Every format, with the knowledge base: no exception but a DropmonError. */
function reportAll(file: string): void {
  for (const format of ['text', 'json', 'html'] as const) {
    const req: ReportRequest = { file, format, classifyCounter: counterClassifier(kb), diagnose: recordingDiagnosis(kb) };
    try {
      renderReport(req);
    } catch (e) {
      if (!(e instanceof DropmonError)) throw e;
      assert.ok(e.message.includes(file), `the error names the file: ${e.message}`);
    }
  }
}

test('damaged bytes: random overwrites and truncation', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(original.length - 1), fc.uint8Array({ minLength: 1, maxLength: 16 })), { minLength: 1, maxLength: 8 }),
      fc.option(fc.nat(original.length), { nil: undefined }),
      (patches, cut) => {
        const bytes = Buffer.from(original);
        for (const [at, b] of patches) bytes.set(b.subarray(0, bytes.length - at), at);
        const file = join(dir, `d${serial++}.db`);
        writeFileSync(file, cut === undefined ? bytes : bytes.subarray(0, cut));
        try {
          reportAll(file);
        } finally {
          rmSync(file, { force: true });
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test('values dropmon never writes: text for numbers, NULLs, odd locations and stacks', () => {
  const weird = fc.oneof(fc.constant(null), fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.constant('0xzz'), fc.constant('[1,'), fc.uint8Array({ maxLength: 8 }));
  const cells: [string, string][] = [
    ['points', 'location'],
    ['points', 'symbol'],
    ['points', 'reason'],
    ['points', 'reason_code'],
    ['points', 'protocol'],
    ['points', 'stack'],
    ['points', 'trap'],
    ['interval_points', 'count'],
    ['intervals', 'drops'],
    ['intervals', 'end_ms'],
    ['intervals', 'start_ms'],
    ['counters', 'name'],
    ['counters', 'layer'],
    ['interval_counters', 'delta'],
    ['interval_losses', 'cause'],
    ['meta', 'value'],
    ['sessions', 'started_ms'],
  ];
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(...cells), weird), { minLength: 1, maxLength: 4 }), (edits) => {
      const file = join(dir, `v${serial++}.db`);
      writeFileSync(file, original);
      const db = new Database(file);
      try {
        // Constraints off: a foreign file need not respect them.
        db.pragma('ignore_check_constraints = ON');
        db.unsafeMode(true);
        db.exec('PRAGMA writable_schema = ON');
        for (const [[table, column], value] of edits) {
          try {
            db.prepare(`UPDATE ${table} SET ${column} = ? WHERE rowid IN (SELECT rowid FROM ${table} LIMIT 2)`).run(value);
          } catch {
            // WITHOUT ROWID tables, NOT NULL: then every row of the column.
            try {
              db.prepare(`UPDATE ${table} SET ${column} = ?`).run(value);
            } catch {
              /* the constraint holds: fine */
            }
          }
        }
      } finally {
        db.close();
      }
      try {
        reportAll(file);
      } finally {
        rmSync(file, { force: true });
      }
    }),
    { numRuns: RUNS },
  );
});
