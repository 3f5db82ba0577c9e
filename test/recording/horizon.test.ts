/**
 * The retention horizon on its own, with clocks moved by hand: ends in the
 * future are ignored, the horizon only moves forward, a step of the wall
 * clock makes it unknown until the step has held for the settle time (or
 * the clock is back), and a believed step looks the horizon up again.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RetentionHorizon, describeStep, type Clocks } from '../../src/recording/horizon.js';

const MIN = 60_000;
const NOW = Date.UTC(2026, 5, 1);

function setup(opts: { ends?: number[]; settleMs?: number } = {}) {
  const clocks = { wall: NOW, mono: 1_000 };
  const c: Clocks = { wallMs: () => clocks.wall, monoMs: () => clocks.mono };
  const ends = [...(opts.ends ?? [])];
  const asked: number[] = [];
  const warnings: string[] = [];
  const h = new RetentionHorizon({
    intervalMs: MIN,
    clocks: c,
    settleMs: opts.settleMs ?? 10 * MIN,
    newestUpTo: (ceiling) => {
      asked.push(ceiling);
      const ok = ends.filter((e) => e <= ceiling);
      return ok.length ? Math.max(...ok) : undefined;
    },
    warn: (m) => warnings.push(m),
  });
  const pass = (ms: number) => {
    clocks.wall += ms;
    clocks.mono += ms;
  };
  return { h, clocks, pass, asked, warnings, ends };
}

describe('retention horizon', () => {
  test('a file opened again: the newest end up to now plus an interval and the slack', () => {
    const s = setup({ ends: [NOW - 5 * MIN, NOW + 30 * 86_400_000] });
    assert.deepEqual(s.asked, [NOW + MIN + 60_000]);
    assert.equal(s.h.written(NOW - 10 * MIN), NOW - 5 * MIN, 'the future end in the file is ignored; an older end does not move it back');
  });

  test('ends in the future are ignored (said once), the horizon follows the others', () => {
    const s = setup();
    s.pass(MIN);
    assert.equal(s.h.written(s.clocks.wall), NOW + MIN);
    assert.equal(s.h.written(s.clocks.wall + 365 * 86_400_000), NOW + MIN);
    assert.equal(s.h.written(s.clocks.wall + 2 * MIN + 1), NOW + MIN, 'past the interval and the slack');
    assert.equal(s.h.written(s.clocks.wall + MIN + 60_000), NOW + 2 * MIN + 60_000, 'within them');
    assert.equal(s.h.futureEnds, 2);
    assert.equal(s.warnings.length, 1);
  });

  test('a step forward: unknown until it has held for the settle time, then believed', () => {
    const s = setup({ settleMs: 10 * MIN });
    s.pass(MIN);
    s.h.written(s.clocks.wall);
    s.clocks.wall += 86_400_000;
    for (let i = 0; i < 10; i++) {
      assert.equal(s.h.written(s.clocks.wall), undefined, `minute ${i}`);
      s.pass(MIN);
    }
    s.ends.push(s.clocks.wall - MIN);
    assert.equal(s.h.written(s.clocks.wall), s.clocks.wall, 'believed: the new time counts');
    assert.equal(s.asked.length, 2, 'looked up again in the file');
    assert.match(s.warnings[0], /moved \+1 d against the monotonic clock; retention by age waits until it has held for 10 min/);
    assert.match(s.warnings[1], /kept its new time/);
  });

  test('a step backwards that holds: the earlier time is believed, what was written before is in the future', () => {
    const s = setup({ settleMs: MIN });
    s.pass(MIN);
    s.ends.push(s.clocks.wall);
    s.h.written(s.clocks.wall);
    s.clocks.wall -= 365 * 86_400_000;
    assert.equal(s.h.written(s.clocks.wall), undefined);
    s.pass(MIN);
    s.ends.push(s.clocks.wall - MIN);
    assert.equal(s.h.written(s.clocks.wall), s.clocks.wall, 'the intervals of the year ahead no longer count');
  });

  test('a step that goes back before it settles changes nothing', () => {
    const s = setup();
    s.pass(MIN);
    s.h.written(s.clocks.wall);
    s.clocks.wall += 86_400_000;
    assert.equal(s.h.written(s.clocks.wall), undefined);
    s.clocks.wall -= 86_400_000;
    s.pass(MIN);
    assert.equal(s.h.written(s.clocks.wall), NOW + 2 * MIN);
    assert.match(s.warnings.at(-1)!, /back in step/);
    assert.equal(s.asked.length, 1);
  });

  test('steps in messages', () => {
    assert.equal(describeStep(365 * 86_400_000 + 3 * 86_400_000 + 5000), '+1 y 3 d');
    assert.equal(describeStep(-90_000), '-1 min 30 s');
    assert.equal(describeStep(3_600_000), '+1 h');
    assert.equal(describeStep(400), '+0 s');
  });
});
