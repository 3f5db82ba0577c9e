/**
 * User space's side of the drop program's per-CPU slots (SLOT in programs.ts):
 * read each CPU's pending run from the mapped array, consistently, and say
 * whether the hash map read in between can be added to it exactly.
 *
 * A drain reads the hash map first, then each slot: seq, key, count, seq
 * again, retried a few times while it changes. When both seqs are equal and
 * even, the key and the count belong together; else the slot is skipped this
 * time (count 0). Map + slots then never exceeds what happened: a run only
 * moves from a slot into the map, and the map is read before the slot (read
 * in the other order, a run moving in between would be counted twice). It
 * can be less (a run moved after its key was read in the map, or a skipped
 * slot), so a drain reports, per key, what its total exceeds the highest
 * total reported before by: each drop exactly once, at the latest in the
 * first drain after the CPUs stop moving runs. (The model test in
 * test/sources/bpf/slots-model.test.ts checks this under every interleaving.)
 */
import { KEY, SLOT } from './programs.js';

export interface SlotRead {
  /** Key and count belong together (seq even and unchanged during the read). */
  readonly consistent: boolean;
  /** The key's bytes (KEY layout) and its pending count; count 0 when not consistent. */
  readonly key: Uint8Array;
  readonly count: number;
}

const W = 8; // bytes per word
const STRIDE = SLOT.size / W;
const TRIES = 4;

export class SlotReader {
  constructor(
    /** Word `i` of the mapped slots (SLOT.size bytes per CPU), each load in program order (Atomics.load). */
    private readonly load: (i: number) => bigint,
    readonly cpus: number,
  ) {}

  /** A reader of mapped slots. */
  static of(words: BigUint64Array, cpus: number): SlotReader {
    return new SlotReader((i) => Atomics.load(words, i), cpus);
  }

  /** Each CPU's slot: read them after the map. */
  read(): SlotRead[] {
    const out: SlotRead[] = [];
    for (let c = 0; c < this.cpus; c++) out.push(this.readOne(c));
    return out;
  }

  private readOne(cpu: number): SlotRead {
    const w = this.load, base = cpu * STRIDE;
    const key = new Uint8Array(KEY.size);
    const kv = new DataView(key.buffer);
    for (let t = 0; t < TRIES; t++) {
      const s1 = w(base + SLOT.seq / W);
      if (s1 & 1n) continue; // the program is changing it right now
      for (let i = 0; i < KEY.size / W; i++) kv.setBigUint64(i * W, w(base + SLOT.key / W + i), true);
      const count = w(base + SLOT.count / W);
      const s2 = w(base + SLOT.seq / W);
      if (s1 !== s2) continue;
      return { consistent: true, key, count: Number(count) };
    }
    return { consistent: false, key, count: 0 };
  }
}

/** Per key: the drops reported so far, and reads since it last grew. */
export interface Tracked {
  reported: number;
  idle: number;
}

/**
 * What a drain reports: per key, map + slots, and the part of it above the
 * highest total reported before. Keys stay tracked until the caller forgets
 * them (pruning): one not seen in a read may be in a slot skipped as torn.
 */
export class RunTally {
  readonly tracked = new Map<string, Tracked>();

  /**
   * `mapTotals`: hex key -> sum over CPUs of the map's values, read before
   * the slots. Returns the keys that grew and by how much, and the
   * keys some slot holds.
   */
  update(mapTotals: ReadonlyMap<string, number>, slots: readonly SlotRead[]): { grown: Array<[string, number]>; held: Set<string> } {
    const totals = new Map(mapTotals);
    const held = new Set<string>();
    for (const r of slots) {
      if (!r.consistent || r.count === 0) continue;
      const k = Buffer.from(r.key).toString('hex');
      held.add(k);
      totals.set(k, (totals.get(k) ?? 0) + r.count);
    }
    const grown: Array<[string, number]> = [];
    for (const [k, total] of totals) {
      const t = this.tracked.get(k);
      const delta = total - (t?.reported ?? 0);
      if (t) {
        if (delta > 0) t.reported = total;
        t.idle = delta > 0 ? 0 : t.idle + 1;
      } else this.tracked.set(k, { reported: total, idle: 0 });
      if (delta > 0) grown.push([k, delta]);
    }
    for (const [k, t] of this.tracked) if (!totals.has(k)) t.idle++;
    return { grown, held };
  }
}
