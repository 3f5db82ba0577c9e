/**
 * A child process for recorder-crash.test.ts: writes intervals to the
 * recording named in argv as fast as it can, each one a large transaction,
 * and prints the seq of each interval once record() has committed it, until
 * it is killed.
 */
import { writeSync } from 'node:fs';
import { Recorder } from '../../src/recording/recorder.js';
import { syntheticInterval } from './synthetic.js';

const [file, firstSeq] = process.argv.slice(2);
// The test runner loads every file under test/: without a recording to write, there is nothing to do.
if (file === undefined) process.exit(0);
const rec = new Recorder(file, { source: 'tracefs', retention: { maxBytes: 64 * 1024 * 1024 } });
for (let seq = Number(firstSeq); ; seq++) {
  const written = rec.stats.intervalsWritten;
  rec.record({
    interval: syntheticInterval(seq, Date.UTC(2026, 0, 1), 1000, { points: 64, firstPoint: seq * 7, countPerPoint: seq }),
    counters: Array.from({ length: 200 }, (_, i) => ({ name: 'Udp:InErrors', scope: `ns${i}`, layer: 'udp' as const, delta: seq, value: seq, rate: 1 })),
  });
  if (rec.stats.intervalsWritten === written) throw new Error(`interval ${seq} was not written`);
  writeSync(1, `${seq}\n`);
}
