/**
 * Kernel symbolizer: /proc/kallsyms (core and module symbols) → "sym+0xoff/0xsize [module]".
 *
 * Kept as parallel typed arrays sorted by address (high and low 32-bit words,
 * so no BigInt in the table) with a binary search, and a cache per address:
 * a drop point is symbolized once, however many drops it has.
 */
import { readFileSync } from 'node:fs';
import { ParseError } from '../core/errors.js';

export interface KernelSymbol {
  readonly name: string;
  /** Address minus the symbol's start. */
  readonly offset: bigint;
  /** Distance to the next symbol; 0 when unknown (the last one). */
  readonly size: bigint;
  /** Module name for module symbols, undefined for the core kernel. */
  readonly module?: string;
}

export class KallsymsTable {
  private constructor(
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    private readonly names: readonly string[],
    private readonly modules: readonly (string | undefined)[],
    /** True when every address read as zero: kptr_restrict hides them from us. */
    readonly hidden: boolean,
  ) {}

  get length(): number {
    return this.names.length;
  }

  /**
   * Parse the text of /proc/kallsyms. Only text symbols (t, T, w, W) are kept:
   * a drop location is a return address in code. Lines may come in any order;
   * several names for one address keep the first global one.
   */
  static parse(text: string): KallsymsTable {
    const hiL: number[] = [], loL: number[] = [], nameL: string[] = [], modL: (string | undefined)[] = [];
    let zero = 0, total = 0;
    let lineNo = 0;
    let pos = 0;
    while (pos < text.length) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) nl = text.length;
      const line = text.slice(pos, nl);
      pos = nl + 1;
      lineNo++;
      if (line.length === 0) continue;
      // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t fn\t[mod]"
      const m = /^([0-9a-fA-F]{1,16}) ([A-Za-z?]) (\S+)(?:\s+\[(\S+)\])?\s*$/.exec(line);
      if (!m) throw new ParseError('kallsyms', `line ${lineNo}`, `malformed line ${JSON.stringify(line.slice(0, 120))}`);
      total++;
      const t = m[2];
      if (t !== 't' && t !== 'T' && t !== 'w' && t !== 'W') continue;
      const hex = m[1].padStart(16, '0');
      const hi = parseInt(hex.slice(0, 8), 16), lo = parseInt(hex.slice(8), 16);
      if (hi === 0 && lo === 0) zero++;
      hiL.push(hi);
      loL.push(lo);
      nameL.push(m[3]);
      modL.push(m[4]);
    }
    const hidden = total > 0 && zero === hiL.length;
    const idx = Array.from(hiL.keys());
    // stable sort: among aliases of one address the first listed wins
    idx.sort((a, b) => hiL[a] - hiL[b] || loL[a] - loL[b] || a - b);
    const hi = new Uint32Array(idx.length), lo = new Uint32Array(idx.length);
    const names: string[] = [], mods: (string | undefined)[] = [];
    let n = 0;
    for (const i of idx) {
      if (n > 0 && hi[n - 1] === hiL[i] && lo[n - 1] === loL[i]) continue; // alias of the previous address
      hi[n] = hiL[i];
      lo[n] = loL[i];
      names.push(nameL[i]);
      mods.push(modL[i]);
      n++;
    }
    return new KallsymsTable(hi.slice(0, n), lo.slice(0, n), names, mods, hidden);
  }

  static load(path = '/proc/kallsyms'): KallsymsTable {
    return KallsymsTable.parse(readFileSync(path, 'latin1'));
  }

  /** The symbol containing `addr`, or undefined below the first symbol or when hidden. */
  lookup(addr: bigint): KernelSymbol | undefined {
    if (this.hidden || this.names.length === 0) return undefined;
    const ahi = Number(addr >> 32n) >>> 0, alo = Number(addr & 0xffffffffn) >>> 0;
    let l = 0, r = this.names.length - 1, found = -1;
    while (l <= r) {
      const mid = (l + r) >>> 1;
      const c = this.hi[mid] - ahi || this.lo[mid] - alo;
      if (c <= 0) {
        found = mid;
        l = mid + 1;
      } else r = mid - 1;
    }
    if (found < 0) return undefined;
    const start = this.address(found);
    const nextStart = found + 1 < this.names.length ? this.address(found + 1) : 0n;
    const mod = this.modules[found];
    // Past the last symbol of a module the next symbol belongs elsewhere: size unknown.
    const sameRegion = found + 1 < this.names.length && this.modules[found + 1] === mod;
    return {
      name: this.names[found],
      offset: addr - start,
      size: sameRegion ? nextStart - start : 0n,
      ...(mod !== undefined ? { module: mod } : {}),
    };
  }

  /** Address range(s) [start, end) of every text symbol called `name`. */
  ranges(name: string): Array<[bigint, bigint]> {
    const out: Array<[bigint, bigint]> = [];
    for (let i = 0; i < this.names.length; i++) {
      if (this.names[i] !== name) continue;
      const start = this.address(i);
      const end = i + 1 < this.names.length ? this.address(i + 1) : start + 1n;
      out.push([start, end]);
    }
    return out;
  }

  private address(i: number): bigint {
    return (BigInt(this.hi[i]) << 32n) | BigInt(this.lo[i]);
  }
}

/** "sym+0xoff/0xsize [module]", the kernel's %pS form, or the bare hex address. */
export function formatSymbol(sym: KernelSymbol | undefined, addr: bigint, withSize = true): string {
  if (!sym) return `0x${addr.toString(16)}`;
  const size = withSize && sym.size > 0n ? `/0x${sym.size.toString(16)}` : '';
  const mod = sym.module ? ` [${sym.module}]` : '';
  return `${sym.name}+0x${sym.offset.toString(16)}${size}${mod}`;
}

/** Caches symbolization per address; loads /proc/kallsyms lazily on first use. */
export class Symbolizer {
  private table: KallsymsTable | undefined;
  private readonly cache = new Map<bigint, KernelSymbol | undefined>();

  constructor(private readonly loader: () => KallsymsTable = () => KallsymsTable.load()) {}

  get kallsyms(): KallsymsTable {
    return (this.table ??= this.loader());
  }

  lookup(addr: bigint): KernelSymbol | undefined {
    if (this.cache.has(addr)) return this.cache.get(addr);
    const s = this.kallsyms.lookup(addr);
    if (this.cache.size > 100_000) this.cache.clear(); // bounded: drop points are few
    this.cache.set(addr, s);
    return s;
  }
}
