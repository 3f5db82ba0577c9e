/**
 * The recorder and the reader on synthetic intervals: what is written reads
 * back exactly, per-interval bounds hold, retention keeps age and size within
 * their limits under thousands of storm intervals, retention by age goes by
 * end time from a horizon that future stamps and clock steps do not move,
 * and files that are not recordings (or of a newer schema) are refused with
 * a clear error.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { DropmonError } from '../../src/core/errors.js';
import type { DropSample } from '../../src/core/drop.js';
import type { IntervalReport } from '../../src/core/interval.js';
import type { Clocks } from '../../src/recording/horizon.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording, OVERFLOW_REASON } from '../../src/recording/recording.js';
import { SCHEMA_VERSION } from '../../src/recording/schema.js';
import { syntheticInterval } from './synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'dropmon-rec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;
const newFile = () => join(dir, `r${serial++}.db`);
const T0 = Date.UTC(2026, 0, 1);

function packetSample(n: number): DropSample {
  // Ethernet + IPv4 + UDP 10.0.0.1:5000 > 10.0.0.2:9
  const pkt = Buffer.from('020000000002' + '020000000001' + '0800' + '4500002000000000401100000a0000010a000002' + '13880009000c0000', 'hex');
  return {
    location: 0xffffffff81000000n,
    reason: 2,
    reasonName: 'NO_SOCKET',
    protocol: 0x0800,
    origin: 'software',
    count: 1,
    packet: { timestamp: BigInt(T0 + n) * 1_000_000n, ifindex: 7, ifname: 'veth0', origLen: 46, payload: pkt },
  };
}

describe('recorder and reader', () => {
  test('intervals, points, losses, counters and overflow read back exactly', () => {
    const file = newFile();
    const rec = new Recorder(file, { source: 'tracefs', intervalMs: 1000 });
    for (let s = 1; s <= 30; s++)
      rec.record({
        interval: syntheticInterval(s, T0, 1000, { lost: new Map([['ring-buffer overrun cpu0', 2]]), overflowDrops: 5 }),
        counters: [
          { name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: 10, value: 10 * s, rate: 10 },
          { name: 'link:rx_dropped', scope: 'veth0', layer: 'nic', delta: s % 2, value: s, rate: s % 2 },
        ],
      });
    assert.equal(rec.stats.intervalsWritten, 30);
    rec.close();

    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.equal(t.intervals, 30);
      assert.equal(t.drops, 30 * 35);
      assert.equal(t.overflowDrops, 30 * 5);
      assert.equal(t.lost, 60);
      assert.equal(t.firstMs, T0);
      assert.equal(t.lastMs, T0 + 30_000);
      const top = r.topPoints(undefined, 10);
      assert.equal(top.length, 3);
      assert.deepEqual(
        top.map((p) => [p.location, p.reason, p.count, p.intervals, p.protocol]),
        [
          ['0xffffffff81000000', 'NO_SOCKET', 300, 30, 'ipv4'],
          ['0xffffffff81000010', 'NETFILTER_DROP', 300, 30, 'ipv4'],
          ['0xffffffff81000020', 'SOCKET_RCVBUFF', 300, 30, 'ipv4'],
        ],
      );
      const series = r.reasonsOverTime(undefined, { buckets: 6 });
      assert.equal(series.buckets.length, 6);
      assert.equal(series.bucketMs, 5000);
      assert.equal(series.buckets.reduce((s, b) => s + b.total, 0), t.drops, 'every drop is in one bucket');
      assert.deepEqual(series.buckets.map((b) => b.byReason.NO_SOCKET), [50, 50, 50, 50, 50, 50]);
      assert.equal(series.reasons.find((x) => x.reason === OVERFLOW_REASON)?.count, 150);
      assert.deepEqual(r.losses(), [{ cause: 'ring-buffer overrun cpu0', lost: 60, intervals: 30 }]);
      const counters = r.countersMoved();
      assert.deepEqual(
        counters.map((c) => [c.name, c.scope, c.delta, c.lastValue]),
        [
          ['Udp:NoPorts', '', 300, 300],
          ['link:rx_dropped', 'veth0', 15, 30],
        ],
      );
      // A range: intervals 11..20 (by end time).
      const part = { from: T0 + 10_000, to: T0 + 20_000 };
      assert.equal(r.totals(part).intervals, 10);
      assert.equal(r.topPoints(part, 1)[0].count, 100);
      assert.equal(r.countersMoved(part)[0].delta, 100);
      const meta = r.meta();
      assert.equal(meta.schemaVersion, SCHEMA_VERSION);
      assert.equal(meta.source, 'tracefs');
      assert.equal(meta.sessions.length, 1);
      assert.ok(meta.sessions[0].endedMs !== null, 'close() ends the session');
    } finally {
      r.close();
    }
  });

  test('packet summaries: at most N per interval with decoded headers, the rest counted', () => {
    const file = newFile();
    const rec = new Recorder(file, { source: 'netdm', maxPacketsPerInterval: 5 });
    rec.packets(Array.from({ length: 12 }, (_, i) => packetSample(i)));
    rec.record({ interval: syntheticInterval(1, T0, 1000, { points: 1, countPerPoint: 12 }) });
    rec.packets([packetSample(100)]);
    rec.record({ interval: syntheticInterval(2, T0, 1000, { points: 1, countPerPoint: 1 }) });
    rec.close();
    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.equal(t.packetsSeen, 13);
      assert.equal(t.packetsKept, 6);
      const pk = r.packets();
      assert.equal(pk.length, 6);
      assert.deepEqual(
        [pk[0].src, pk[0].dst, pk[0].l4, pk[0].sport, pk[0].dport, pk[0].ifname, pk[0].origLen, pk[0].reason, pk[0].timeMs],
        ['10.0.0.1', '10.0.0.2', 'udp', 5000, 9, 'veth0', 46, 'NO_SOCKET', T0],
      );
    } finally {
      r.close();
    }
  });

  test('a second session appends; append: false refuses an existing file', () => {
    const file = newFile();
    const a = new Recorder(file, { source: 'tracefs' });
    a.record({ interval: syntheticInterval(1, T0, 1000) });
    a.close();
    assert.throws(() => new Recorder(file, { source: 'tracefs', append: false }), /exists/);
    const b = new Recorder(file, { source: 'netdm' });
    b.record({ interval: syntheticInterval(1, T0 + 60_000, 1000) });
    b.close();
    const r = openRecording(file);
    try {
      assert.deepEqual(r.meta().sessions.map((s) => s.source), ['tracefs', 'netdm']);
      assert.equal(r.totals().intervals, 2);
      assert.deepEqual(r.intervals().map((i) => i.sessionId), [1, 2]);
    } finally {
      r.close();
    }
  });

  test('the file is self-contained after close (no -wal beside it)', () => {
    const file = newFile();
    const rec = new Recorder(file, { source: 'tracefs' });
    rec.record({ interval: syntheticInterval(1, T0, 1000) });
    rec.close();
    assert.throws(() => statSync(`${file}-wal`), /ENOENT/);
  });
});

describe('retention', () => {
  test('by age: only intervals within max-age of the newest remain, dictionaries pruned', () => {
    const file = newFile();
    // Clocks after the last stamp: the test holds whatever the date of the machine running it.
    const clocks = { wallMs: () => T0 + 3_000_000, monoMs: () => 0 };
    const rec = new Recorder(file, { source: 'tracefs', clocks, retention: { maxAgeMs: 60_000 } });
    // 2000 one-second intervals; every 100 s the drop points move elsewhere.
    for (let s = 1; s <= 2000; s++) rec.record({ interval: syntheticInterval(s, T0, 1000, { firstPoint: Math.floor(s / 100) * 3 }) });
    assert.ok(rec.stats.intervalsExpired >= 1930, `expired ${rec.stats.intervalsExpired}`);
    rec.close();
    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.ok(t.intervals <= 61 && t.intervals >= 59, `intervals kept: ${t.intervals}`);
      assert.equal(t.lastMs, T0 + 2_000_000, 'the newest interval is kept');
      assert.ok(t.firstMs! >= T0 + 2_000_000 - 61_000, 'nothing older than max-age');
      assert.ok(r.topPoints(undefined, 1000).length <= 6, 'points of deleted intervals are gone');
    } finally {
      r.close();
    }
    const db = new Database(file, { readonly: true });
    const points = (db.prepare('SELECT count(*) FROM points').pluck().get() as number);
    db.close();
    assert.ok(points <= 6, `point dictionary pruned to what is referenced (${points})`);
  });

  test('by size: a storm of new drop points every interval stays under max-size, and the file shrinks', () => {
    const file = newFile();
    const maxBytes = 512 * 1024;
    const rec = new Recorder(file, { source: 'tracefs', retention: { maxBytes } });
    let peak = 0;
    // 64 new points per interval (the aggregator's bound), each interval elsewhere: the worst case for the dictionaries.
    for (let s = 1; s <= 3000; s++) {
      rec.record({
        interval: syntheticInterval(s, T0, 1000, { points: 64, firstPoint: s * 64, lost: new Map([[`cpu${s % 4}`, 1]]) }),
        counters: Array.from({ length: 20 }, (_, i) => ({ name: 'Udp:InErrors', scope: `ns${i}`, layer: 'udp' as const, delta: 1, value: s, rate: 1 })),
      });
      if (s > 100) peak = Math.max(peak, rec.stats.databaseBytes);
    }
    assert.ok(rec.stats.intervalsExpired > 2000, `expired ${rec.stats.intervalsExpired}`);
    // One interval past the limit at most before retention catches up.
    assert.ok(peak <= maxBytes * 1.15, `database stayed near ${maxBytes} (peak ${peak})`);
    rec.close();
    const size = statSync(file).size;
    assert.ok(size <= maxBytes * 1.15, `file on disk ${size} bytes`);
    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.ok(t.intervals > 10, `recent intervals are kept (${t.intervals})`);
      assert.equal(t.lastMs, T0 + 3_000_000);
    } finally {
      r.close();
    }
  });

  test('per-interval bounds: counters beyond the limit are counted, loss causes folded', () => {
    const file = newFile();
    const rec = new Recorder(file, { source: 'tracefs', maxCountersPerInterval: 10 });
    const lost = new Map(Array.from({ length: 100 }, (_, i) => [`cause${i}`, 1] as [string, number]));
    rec.record({
      interval: syntheticInterval(1, T0, 1000, { lost }),
      counters: Array.from({ length: 50 }, (_, i) => ({ name: 'c', scope: String(i), layer: 'udp' as const, delta: i, value: i, rate: i })),
    });
    rec.close();
    const r = openRecording(file);
    try {
      const [iv] = r.intervals();
      assert.equal(iv.countersUnrecorded, 40);
      const kept = r.countersMoved(undefined, 100);
      assert.equal(kept.length, 10);
      assert.equal(kept[0].delta, 49, 'the largest deltas are kept');
      const losses = r.losses();
      assert.equal(losses.length, 64);
      assert.equal(losses.reduce((s, l) => s + l.lost, 0), 100, 'no lost event is lost from the count');
    } finally {
      r.close();
    }
  });
});

/** Clocks a test moves by hand: the wall clock may step, the monotonic one only goes forward. */
class TestClocks implements Clocks {
  constructor(
    public wall: number,
    public mono = 0,
  ) {}
  wallMs(): number {
    return this.wall;
  }
  monoMs(): number {
    return this.mono;
  }
  /** Time passes on both clocks. */
  pass(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}

/** A one-interval report ending at `end`. */
function endingAt(seq: number, end: number, ms = 60_000): IntervalReport {
  return { ...syntheticInterval(seq, 0, ms), start: end - ms, end };
}

function seqsIn(file: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT seq FROM intervals ORDER BY seq').pluck().all() as number[];
  } finally {
    db.close();
  }
}

const MINUTE = 60_000;
const DAY = 86_400_000;
const YEAR = 365 * DAY;

describe('retention by time, whatever the clock does', () => {
  test('10 intervals stamped a year ahead do not delete the 3 days before them', () => {
    const now = Date.UTC(2026, 5, 1);
    const clocks = new TestClocks(now - 3 * DAY);
    const file = newFile();
    const warnings: string[] = [];
    const rec = new Recorder(file, { source: 'bpf', intervalMs: MINUTE, clocks, retention: { maxAgeMs: 7 * DAY }, warn: (m) => warnings.push(m) });
    for (let s = 1; s <= 4320; s++) {
      clocks.pass(MINUTE);
      rec.record({ interval: endingAt(s, clocks.wall) });
    }
    for (let s = 4321; s <= 4330; s++) {
      clocks.pass(MINUTE);
      rec.record({ interval: endingAt(s, clocks.wall + YEAR) });
    }
    assert.equal(rec.stats.intervalsExpired, 0);
    assert.equal(rec.stats.intervals, 4330);
    rec.close();
    assert.equal(seqsIn(file).length, 4330);
    assert.equal(warnings.length, 1, warnings.join(' | '));
    assert.match(warnings[0], /an interval ends \+1 y( \d+ \w+)? ahead of the clock; retention by age does not count from it/);
  });

  test('5 intervals stamped 1970 after 100 good ones: those 5 are deleted, not 105', () => {
    const clocks = new TestClocks(Date.UTC(2026, 5, 1));
    const file = newFile();
    const rec = new Recorder(file, { source: 'bpf', intervalMs: MINUTE, clocks, retention: { maxAgeMs: DAY } });
    for (let s = 1; s <= 100; s++) {
      clocks.pass(MINUTE);
      rec.record({ interval: endingAt(s, clocks.wall) });
    }
    for (let s = 101; s <= 105; s++) {
      clocks.pass(MINUTE);
      rec.record({ interval: endingAt(s, (s - 100) * MINUTE) });
    }
    assert.equal(rec.stats.intervalsExpired, 5);
    rec.close();
    assert.deepEqual(seqsIn(file), Array.from({ length: 100 }, (_, i) => i + 1));
  });

  test('a step of the wall clock: retention by age waits until the step has held for the settle time', () => {
    const clocks = new TestClocks(Date.UTC(2026, 5, 1));
    const file = newFile();
    const warnings: string[] = [];
    const settle = 3_600_000;
    const rec = new Recorder(file, { source: 'bpf', intervalMs: MINUTE, clocks, clockSettleMs: settle, retention: { maxAgeMs: DAY }, warn: (m) => warnings.push(m) });
    let seq = 0;
    const tick = () => {
      clocks.pass(MINUTE);
      rec.record({ interval: endingAt(++seq, clocks.wall) });
    };
    for (let i = 0; i < 600; i++) tick();
    // The clock jumps a year ahead (a bad time server): nothing is deleted while it is unsettled.
    clocks.wall += YEAR;
    for (let i = 0; i < 59; i++) tick();
    assert.equal(rec.stats.intervalsExpired, 0, 'a year-ahead clock deletes nothing within the settle time');
    assert.match(warnings.join('\n'), /the wall clock moved \+1 y .*retention by age waits until it has held for 1 h/);
    // Back to the right time before it settled: retention goes on as before, nothing was lost.
    clocks.wall -= YEAR;
    tick();
    assert.match(warnings.at(-1)!, /back in step/);
    assert.equal(rec.stats.intervalsExpired, 0);
    // A step that holds (an RTC corrected by NTP at boot) is believed after the settle time.
    clocks.wall += YEAR;
    for (let i = 0; i < 60; i++) tick();
    assert.equal(rec.stats.intervalsExpired, 0);
    tick();
    assert.match(warnings.at(-1)!, /kept its new time/);
    assert.ok(rec.stats.intervalsExpired > 0, 'the intervals of a year ago go');
    rec.close();
    const left = seqsIn(file);
    assert.ok(left.includes(seq), 'the newest stays');
  });

  test('a file opened after the clock went back: its future intervals do not count', () => {
    const file = newFile();
    const before = new TestClocks(Date.UTC(2027, 5, 1));
    const a = new Recorder(file, { source: 'bpf', intervalMs: MINUTE, clocks: before, retention: { maxAgeMs: DAY } });
    for (let s = 1; s <= 10; s++) {
      before.pass(MINUTE);
      a.record({ interval: endingAt(s, before.wall) });
    }
    a.close();
    // Restarted with the clock a year earlier (it was wrong before): the 2027 intervals are in the future.
    const clocks = new TestClocks(Date.UTC(2026, 5, 1));
    const b = new Recorder(file, { source: 'bpf', intervalMs: MINUTE, clocks, retention: { maxAgeMs: DAY } });
    for (let s = 11; s <= 20; s++) {
      clocks.pass(MINUTE);
      b.record({ interval: endingAt(s, clocks.wall) });
    }
    assert.equal(b.stats.intervalsExpired, 0, 'neither the new intervals nor the future ones are deleted');
    b.close();
    assert.equal(seqsIn(file).length, 20);
  });

  test('no interval newer than the horizon minus max-age is ever deleted; the older ones are (any stamps)', () => {
    const now = Date.UTC(2026, 5, 1);
    const maxAgeMs = 10 * MINUTE;
    const slack = 60_000;
    const stamp = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: -30 * MINUTE, max: 0 }) },
      { weight: 1, arbitrary: fc.integer({ min: -60 * YEAR, max: -DAY }) },
      { weight: 1, arbitrary: fc.integer({ min: 2 * MINUTE, max: 2 * YEAR }) },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(stamp, fc.nat(3 * MINUTE)), { minLength: 1, maxLength: 40 }), (steps) => {
        const clocks = new TestClocks(now);
        const file = newFile();
        const rec = new Recorder(file, { source: 'bpf', intervalMs: MINUTE, clocks, retention: { maxAgeMs } });
        const ends: number[] = [];
        let horizon: number | undefined;
        try {
          steps.forEach(([offset, pause], i) => {
            clocks.pass(pause);
            const end = clocks.wall + offset;
            ends.push(end);
            rec.record({ interval: endingAt(i + 1, end) });
            // The model: the newest end not past the clock by more than an interval and the slack.
            if (end <= clocks.wall + MINUTE + slack && (horizon === undefined || end > horizon)) horizon = end;
            const want = ends.map((e, k) => [e, k + 1] as const).filter(([e]) => horizon === undefined || e >= horizon - maxAgeMs).map(([, k]) => k);
            assert.deepEqual(seqsIn(file), want);
          });
        } finally {
          rec.close();
          rmSync(file, { force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('files that are not recordings', () => {
  test('a text file', () => {
    const file = newFile();
    writeFileSync(file, 'hello, this is not a database at all\n'.repeat(100));
    assert.throws(() => openRecording(file), (e: unknown) => e instanceof DropmonError && /not a dropmon recording/.test(e.message));
    assert.throws(() => new Recorder(file, { source: 'tracefs' }), (e: unknown) => e instanceof DropmonError && /not a dropmon recording/.test(e.message));
  });

  test('an SQLite database of another program', () => {
    const file = newFile();
    const db = new Database(file);
    db.exec('CREATE TABLE songs (title TEXT)');
    db.close();
    assert.throws(() => openRecording(file), (e: unknown) => e instanceof DropmonError && /SQLite database but not a dropmon recording/.test(e.message));
    assert.throws(() => new Recorder(file, { source: 'tracefs' }), /not a dropmon recording/);
  });

  test('a recording of a newer schema version', () => {
    const file = newFile();
    new Recorder(file, { source: 'tracefs' }).close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    assert.throws(
      () => openRecording(file),
      (e: unknown) => e instanceof DropmonError && new RegExp(`schema version ${SCHEMA_VERSION + 1}; this dropmon reads up to version ${SCHEMA_VERSION}`).test(e.message) && /newer dropmon/.test(e.hint ?? ''),
    );
    assert.throws(() => new Recorder(file, { source: 'tracefs' }), /schema version/);
  });

  test('a missing file', () => {
    assert.throws(() => openRecording(join(dir, 'nope.db')), /no such file/);
  });
});
