/**
 * User space's side of the drop program's per-CPU slots (SLOT in programs.ts):
 * read each CPU's pending run from the mapped array, consistently, and say
 * whether the hash map read in between can be added to it exactly.
 *
 * A drain reads, in this order: every slot's seq (before), the hash map, then
 * each slot (seq, key, count, seq again; retried a few times while it is
 * changing). Per CPU:
 *  - consistent: both seqs of the slot read are equal and even, so its key and
 *    count belong together; else the slot is skipped this time (count 0).
 *  - exact: consistent and seq equal to the one read before the map: no run
 *    moved into the map meanwhile, so map + slot is this CPU's exact count.
 * In every case map + slot never exceeds the true count (runs only move from
 * the slot into the map, and the map is read before the slot), so a reader
 * that reports the highest total seen per key reports each drop exactly once,
 * at the latest in the first exact read after it.
 */
import { KEY, SLOT } from './programs.js';

export interface SlotRead {
  /** Key and count belong together (seq even and unchanged during the read). */
  readonly consistent: boolean;
  /** Consistent, and no run moved into the map since `before` was read. */
  readonly exact: boolean;
  /** The key's bytes (KEY layout) and its pending count; count 0 when not consistent. */
  readonly key: Uint8Array;
  readonly count: number;
}

const W = 8; // bytes per word
const STRIDE = SLOT.size / W;
const TRIES = 4;

export class SlotReader {
  constructor(
    /** The mapped slots: SLOT.size bytes per CPU. */
    private readonly words: BigUint64Array,
    readonly cpus: number,
  ) {}

  /** Every CPU's seq, read before the map. */
  before(): bigint[] {
    const out: bigint[] = [];
    for (let c = 0; c < this.cpus; c++) out.push(Atomics.load(this.words, c * STRIDE + SLOT.seq / W));
    return out;
  }

  /** Each CPU's slot, read after the map; `before` from before(). */
  read(before: readonly bigint[]): SlotRead[] {
    const out: SlotRead[] = [];
    for (let c = 0; c < this.cpus; c++) out.push(this.readOne(c, before[c]));
    return out;
  }

  private readOne(cpu: number, before: bigint | undefined): SlotRead {
    const w = this.words, base = cpu * STRIDE;
    const key = new Uint8Array(KEY.size);
    const kv = new DataView(key.buffer);
    for (let t = 0; t < TRIES; t++) {
      const s1 = Atomics.load(w, base + SLOT.seq / W);
      if (s1 & 1n) continue; // the program is changing it right now
      for (let i = 0; i < KEY.size / W; i++) kv.setBigUint64(i * W, Atomics.load(w, base + SLOT.key / W + i), true);
      const count = Atomics.load(w, base + SLOT.count / W);
      const s2 = Atomics.load(w, base + SLOT.seq / W);
      if (s1 !== s2) continue;
      return { consistent: true, exact: s1 === before, key, count: Number(count) };
    }
    return { consistent: false, exact: false, key, count: 0 };
  }
}
