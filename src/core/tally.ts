/**
 * DropTally: the hot-path counter a source uses between two batches.
 *
 * It counts drops by (location, reason, protocol[, stack]) with numbers only:
 * no BigInt, no string and no object per event. Measured on this class of
 * machine, a per-event string key or BigInt made parsing 6-7x slower (`npm
 * run bench` measures the tracefs source's cost). A batch is turned into `DropSample`s
 * (with BigInt locations) once per drop point, not once per drop.
 */
import { NO_REASON, type DropOrigin, type DropSample, type ReasonNamer } from './drop.js';

interface Entry {
  readonly lo: number;
  readonly hi: number;
  readonly reason: number;
  readonly protocol: number;
  count: number;
  /** Entries with the same location and reason but another protocol. */
  next: Entry | undefined;
}

interface StackEntry {
  readonly lo: number;
  readonly hi: number;
  readonly reason: number;
  readonly protocol: number;
  readonly stack: readonly bigint[];
  count: number;
}

const TWO_POW_21 = 0x200000;

export class DropTally {
  /** Key: low 32 bits of the location * 2^21 + reason, for the common kernel-text case. */
  private readonly fast = new Map<number, Entry>();
  /** Anything else (reasons ≥ 2^21, unusual high words): string keys, rare. */
  private readonly slow = new Map<string, Entry>();
  private readonly stacks = new Map<string, StackEntry>();
  private total = 0;
  private readonly nameOf: ReasonNamer;

  constructor(
    /** A value → name table, or the sources' namer (which also decodes subsystem reasons). */
    reasonNames: ReadonlyMap<number, string> | ReasonNamer,
    private readonly origin: DropOrigin = 'software',
  ) {
    this.nameOf = typeof reasonNames === 'function' ? reasonNames : (r) => reasonNames.get(r) ?? '';
  }

  /** Drops counted since the last `take()`. */
  get pending(): number {
    return this.total;
  }

  /**
   * Find (or create) the entry of a drop point and return it, so that the
   * caller can keep it as a run-length cache: consecutive events of one drop
   * point (the usual case in a storm) then cost one comparison each.
   * `reason` is NO_REASON on kernels without drop reasons.
   */
  entry(lo: number, hi: number, reason: number, protocol: number): Entry {
    let head: Entry | undefined;
    let key: number | string;
    let map: Map<number, Entry> | Map<string, Entry>;
    if (hi === 0xffffffff && reason >= 0 && reason < TWO_POW_21) {
      key = lo * TWO_POW_21 + reason;
      map = this.fast;
      head = this.fast.get(key);
    } else {
      key = `${hi}:${lo}:${reason}`;
      map = this.slow;
      head = this.slow.get(key);
    }
    for (let e = head; e !== undefined; e = e.next) if (e.protocol === protocol) return e;
    const e: Entry = { lo, hi, reason, protocol, count: 0, next: head };
    (map as Map<number | string, Entry>).set(key, e);
    return e;
  }

  /** Count `n` drops on an entry obtained from `entry()`. */
  bump(e: Entry, n: number): void {
    e.count += n;
    this.total += n;
  }

  /** Count one drop with its kernel stack (slow path, only with --stack). */
  addWithStack(lo: number, hi: number, reason: number, protocol: number, stack: readonly bigint[]): void {
    const key = `${hi}:${lo}:${reason}:${protocol}:${stack.join(',')}`;
    let e = this.stacks.get(key);
    if (!e) this.stacks.set(key, (e = { lo, hi, reason, protocol, stack, count: 0 }));
    e.count++;
    this.total++;
  }

  /** Move everything counted so far out as samples and start again from zero. */
  take(): DropSample[] {
    const out: DropSample[] = [];
    const emit = (e: { lo: number; hi: number; reason: number; protocol: number; count: number }, stack?: readonly bigint[]) => {
      if (e.count === 0) return;
      out.push({
        location: (BigInt(e.hi >>> 0) << 32n) | BigInt(e.lo >>> 0),
        reason: e.reason,
        reasonName: e.reason === NO_REASON ? '' : this.nameOf(e.reason),
        protocol: e.protocol,
        origin: this.origin,
        count: e.count,
        ...(stack ? { stack } : {}),
      });
    };
    for (const head of this.fast.values()) for (let e: Entry | undefined = head; e; e = e.next) emit(e);
    for (const head of this.slow.values()) for (let e: Entry | undefined = head; e; e = e.next) emit(e);
    for (const e of this.stacks.values()) emit(e, e.stack);
    // Entries are reset, not deleted: the same few drop points recur every
    // batch, and keeping them avoids re-allocating. Bounded by `clear()`.
    for (const head of this.fast.values()) for (let e: Entry | undefined = head; e; e = e.next) e.count = 0;
    for (const head of this.slow.values()) for (let e: Entry | undefined = head; e; e = e.next) e.count = 0;
    this.stacks.clear();
    if (this.fast.size + this.slow.size > 4096) this.clear();
    this.total = 0;
    return out;
  }

  /** Forget all entries. Callers must not keep entries across `take()`. */
  clear(): void {
    this.fast.clear();
    this.slow.clear();
  }
}

export type { Entry as TallyEntry };
