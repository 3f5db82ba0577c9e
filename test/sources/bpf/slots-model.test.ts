/**
 * The slot protocol against a model of the drop program, step by step: CPUs
 * counting drops (a run in their slot; on a key change: seq odd, the run added
 * to the map, the new key, count 1, seq even) interleaved at every single load
 * of the reader (SlotReader and RunTally, the code dropmon runs) in orders
 * fast-check picks. Properties: a drain never reports more drops of a key than
 * have happened, and once the CPUs are idle, one drain reports all of them.
 * (The kernel tests check the same against real drops, where the races are
 * rare; here every interleaving is reachable.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KEY, SLOT } from '../../../src/sources/bpf/programs.js';
import { RunTally, SlotReader } from '../../../src/sources/bpf/slots.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 300);
const STRIDE = SLOT.size / 8;
const KEYWORDS = KEY.size / 8;

/** Three keys differing in one, two or all words (a torn key read could mix them). */
const KEYS: bigint[][] = [
  [0xffffffff81000010n, 74n | (1n << 32n), 4026531833n | (0x88b5n << 32n)],
  [0xffffffff81000010n, 3n | (1n << 32n), 4026531833n | (0x0800n << 32n)],
  [0xffffffff82000020n, 6n | (7n << 32n), 4026532000n | (0x86ddn << 32n)],
];
const hexOf = (words: readonly bigint[]) => {
  const b = Buffer.alloc(KEY.size);
  words.forEach((w, i) => b.writeBigUInt64LE(w, i * 8));
  return b.toString('hex');
};

class Model {
  readonly mem: BigUint64Array;
  /** The map: key -> per-CPU values. */
  readonly map = new Map<string, number[]>();
  /** Drops that happened, per key. */
  readonly truth = new Map<string, number>();
  private readonly pending: Array<Array<() => void>>;

  constructor(
    readonly cpus: number,
    private readonly drops: number[][],
  ) {
    this.mem = new BigUint64Array(cpus * STRIDE);
    this.pending = Array.from({ length: cpus }, () => []);
  }

  private happened(k: number) {
    const h = hexOf(KEYS[k]);
    this.truth.set(h, (this.truth.get(h) ?? 0) + 1);
  }

  /** The micro-steps of CPU c's next drop, decided from its slot when it starts (one writer per slot). */
  private start(c: number): boolean {
    const k = this.drops[c].shift();
    if (k === undefined) return false;
    const m = this.mem, b = c * STRIDE, seq = b + SLOT.seq / 8, key = b + SLOT.key / 8, count = b + SLOT.count / 8;
    const same = KEYS[k].every((w, i) => m[key + i] === w);
    const steps = this.pending[c];
    if (same) {
      steps.push(() => {
        m[count] += 1n;
        this.happened(k);
      });
      return true;
    }
    steps.push(() => (m[seq] += 1n));
    if (m[count] !== 0n) {
      steps.push(() => {
        const old = hexOf(Array.from({ length: KEYWORDS }, (_, i) => m[key + i]));
        const v = this.map.get(old) ?? new Array<number>(this.cpus).fill(0);
        v[c] += Number(m[count]);
        this.map.set(old, v);
      });
    }
    for (let i = 0; i < KEYWORDS; i++) steps.push(() => (m[key + i] = KEYS[k][i]));
    steps.push(() => {
      m[count] = 1n;
      this.happened(k);
    });
    steps.push(() => (m[seq] += 1n));
    return true;
  }

  /** One micro-step of CPU c; false when it has nothing left. */
  step(c: number): boolean {
    if (!this.pending[c].length && !this.start(c)) return false;
    this.pending[c].shift()!();
    return true;
  }

  idle(): boolean {
    return this.drops.every((d) => !d.length) && this.pending.every((p) => !p.length);
  }
}

/** A drain as BpfDropSource does it, with CPU steps taken between any two of its loads. */
function drain(model: Model, tally: RunTally, interleave: () => void) {
  const reader = new SlotReader((i) => {
    interleave();
    return model.mem[i];
  }, model.cpus);
  const totals = new Map<string, number>();
  for (const k of [...model.map.keys()]) {
    let sum = 0;
    for (let c = 0; c < model.cpus; c++) {
      interleave();
      sum += model.map.get(k)![c];
    }
    totals.set(k, sum);
  }
  tally.update(totals, reader.read());
}

test('slot protocol: never more than happened, everything once idle, under any interleaving', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.array(fc.integer({ min: 0, max: KEYS.length - 1 }), { maxLength: 40 }), { minLength: 3, maxLength: 3 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 400 }),
      (cpus, drops, choices) => {
        const model = new Model(cpus, drops.slice(0, cpus).map((d) => [...d]));
        const tally = new RunTally();
        let i = 0;
        const next = () => choices[i++ % choices.length];
        // 0: no step here; else a step of one CPU (a few in a row: runs that race a whole read)
        const interleave = () => {
          const x = next();
          if (x % 3 === 0) return;
          for (let n = 0; n <= x % 4; n++) model.step(x % cpus);
        };
        const reported = () => new Map([...tally.tracked].map(([k, t]) => [k, t.reported]));
        for (let round = 0; round < 200 && !model.idle(); round++) {
          for (let s = next() % 5; s > 0; s--) model.step(next() % cpus);
          drain(model, tally, interleave);
          for (const [k, r] of reported()) assert.ok(r <= (model.truth.get(k) ?? 0), `reported ${r} of key ${k}, only ${model.truth.get(k) ?? 0} happened`);
        }
        for (let c = 0; c < cpus; c++) while (model.step(c));
        drain(model, tally, () => {});
        const nonzero = new Map([...reported()].filter(([, r]) => r > 0));
        assert.deepEqual(nonzero, model.truth);
      },
    ),
    { numRuns: RUNS },
  );
});
