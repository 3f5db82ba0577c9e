/**
 * A parser of BTF (the kernel's compact type information, /sys/kernel/btf/vmlinux)
 * for compile-once-run-everywhere done in TypeScript: the programs dropmon
 * assembles take every struct offset from the running kernel's BTF, never
 * from constants, and check the tracepoint's prototype before attaching.
 *
 * Layout (include/uapi/linux/btf.h): a header, then a type section of
 * variable-length records (type id = position, from 1) and a string section.
 * Only offsets into the blob are kept per type, so parsing 5 MB of vmlinux
 * BTF (~150k types) costs tens of milliseconds.
 *
 * A module's BTF (/sys/kernel/btf/MODULE) is "split" BTF on top of vmlinux:
 * its type ids continue after vmlinux's last one and its string offsets
 * after the end of vmlinux's string section, so it is parsed with vmlinux as
 * its base and lookups below those bounds go to the base.
 */
import { readFileSync } from 'node:fs';
import { ParseError } from '../../core/errors.js';

export const BTF_MAGIC = 0xeb9f;

export const BtfKind = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

const KIND_NAMES = ['void', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const', 'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64'];

/** Where a struct member lives, after walking anonymous structs/unions and nested paths. */
export interface MemberLocation {
  /** Byte offset from the start of the outer struct. */
  readonly offset: number;
  /** Bit offset (for bitfields: offset * 8 + the bits into the byte). */
  readonly bitOffset: number;
  /** Bitfield width, 0 for a whole member. */
  readonly bitSize: number;
  /** The member's type id (modifiers and typedefs not stripped). */
  readonly type: number;
  /** Size in bytes of the member's type (after typedefs/modifiers). */
  readonly size: number;
}

/** One enumerator of an enum (ENUM or ENUM64). */
export interface Enumerator {
  readonly name: string;
  /** The value; ENUM64 values beyond 2^53 are rounded (no kernel enum needs them). */
  readonly value: number;
}

export interface ProtoParam {
  readonly name: string;
  readonly type: number;
  /** A readable C spelling: "struct sk_buff *", "void *", "enum skb_drop_reason". */
  readonly typeName: string;
}

export class Btf {
  private readonly d: DataView;
  private readonly strStart: number;
  private readonly strEnd: number;
  /** Per type id: byte offset of its record in the blob (index 0 = void). */
  private readonly recordAt: Uint32Array;
  /** Per type id: its kind and name offset, kept apart so name lookups scan two flat arrays. */
  private readonly kinds: Uint8Array;
  private readonly nameOffs: Uint32Array;
  readonly count: number;
  private readonly found = new Map<string, number | undefined>();

  /** The first type id of this blob: 1, or for a split BTF the base's count. */
  readonly firstId: number;
  /** String offsets below this are the base's (0 without a base). */
  private readonly strBase: number;

  private constructor(
    private readonly b: Uint8Array,
    /** vmlinux, for a module's split BTF. */
    private readonly base?: Btf,
  ) {
    this.firstId = base ? base.count : 1;
    this.strBase = base ? base.strBase + (base.strEnd - base.strStart) : 0;
    this.d = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const fail = (where: number, detail: string) => new ParseError('BTF', `byte ${where}`, detail);
    if (b.length < 24) throw fail(0, `${b.length} bytes is shorter than the BTF header`);
    const magic = this.d.getUint16(0, true);
    if (magic !== BTF_MAGIC) throw fail(0, `bad magic 0x${magic.toString(16)} (big-endian BTF is not supported)`);
    if (b[2] !== 1) throw fail(2, `unsupported BTF version ${b[2]}`);
    const hdrLen = this.d.getUint32(4, true);
    const typeOff = this.d.getUint32(8, true), typeLen = this.d.getUint32(12, true);
    const strOff = this.d.getUint32(16, true), strLen = this.d.getUint32(20, true);
    if (hdrLen < 24 || hdrLen > b.length) throw fail(4, `header length ${hdrLen} out of range`);
    const tStart = hdrLen + typeOff, tEnd = tStart + typeLen;
    this.strStart = hdrLen + strOff;
    this.strEnd = this.strStart + strLen;
    if (tEnd > b.length || tStart > tEnd) throw fail(8, `type section ${typeOff}+${typeLen} is outside the blob`);
    if (this.strEnd > b.length || this.strStart > this.strEnd) throw fail(16, `string section ${strOff}+${strLen} is outside the blob`);
    if (strLen > 0 && b[this.strEnd - 1] !== 0) throw fail(this.strEnd - 1, 'string section does not end with NUL');
    // First pass: count and record positions. Records are at least 12 bytes.
    // Records are at least 12 bytes: this bounds the number of types.
    const maxTypes = Math.max(16, (typeLen / 12) | 0) + 1;
    const at = new Uint32Array(maxTypes);
    const kinds = new Uint8Array(maxTypes);
    const nameOffs = new Uint32Array(maxTypes);
    let n = 1; // local index: type id - firstId + 1
    let p = tStart;
    while (p < tEnd) {
      if (p + 12 > tEnd) throw fail(p, 'type record truncated');
      const info = this.d.getUint32(p + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      let extra: number;
      switch (kind) {
        case BtfKind.INT: case BtfKind.VAR: case BtfKind.DECL_TAG: extra = 4; break;
        case BtfKind.ARRAY: extra = 12; break;
        case BtfKind.STRUCT: case BtfKind.UNION: case BtfKind.DATASEC: case BtfKind.ENUM64: extra = 12 * vlen; break;
        case BtfKind.ENUM: case BtfKind.FUNC_PROTO: extra = 8 * vlen; break;
        case BtfKind.PTR: case BtfKind.FWD: case BtfKind.TYPEDEF: case BtfKind.VOLATILE: case BtfKind.CONST:
        case BtfKind.RESTRICT: case BtfKind.FUNC: case BtfKind.FLOAT: case BtfKind.TYPE_TAG: extra = 0; break;
        default: throw fail(p, `unknown type kind ${kind} (type ${n + this.firstId - 1})`);
      }
      if (p + 12 + extra > tEnd) throw fail(p, `type ${n + this.firstId - 1} (${KIND_NAMES[kind]}) runs past the type section`);
      at[n] = p;
      kinds[n] = kind;
      nameOffs[n++] = this.d.getUint32(p, true);
      p += 12 + extra;
    }
    this.recordAt = at;
    this.kinds = kinds;
    this.nameOffs = nameOffs;
    this.count = n + this.firstId - 1;
  }

  /** Parse a blob; `base` (vmlinux) for a module's split BTF. */
  static parse(blob: Uint8Array, base?: Btf): Btf {
    return new Btf(blob, base);
  }

  /** The running kernel's BTF; throws a DropmonError-friendly ParseError or the fs error. */
  static vmlinux(path = '/sys/kernel/btf/vmlinux'): Btf {
    return new Btf(readFileSync(path));
  }

  /** Byte offset of an own type's record; ids of the base are the caller's to delegate. */
  private rec(id: number): number {
    if (!Number.isInteger(id) || id < this.firstId || id >= this.count) throw new ParseError('BTF', `type ${id}`, `type id ${id} does not exist (${this.count - 1} types)`);
    return this.recordAt[id - this.firstId + 1];
  }

  /** The base BTF when `id` is one of its types. */
  private inBase(id: number): Btf | undefined {
    return this.base && id > 0 && id < this.firstId ? this.base : undefined;
  }

  /** The string at `off` of the string section (of the base below its length). */
  str(off: number): string {
    if (this.base && off < this.strBase) return this.base.str(off);
    off -= this.strBase;
    const s = this.strStart + off;
    if (off < 0 || s >= this.strEnd) throw new ParseError('BTF', `string ${off}`, 'string offset outside the string section');
    let e = s;
    while (e < this.strEnd && this.b[e] !== 0) e++;
    return Buffer.from(this.b.buffer, this.b.byteOffset + s, e - s).toString('latin1');
  }

  kind(id: number): number {
    const base = this.inBase(id);
    if (base) return base.kind(id);
    return id === 0 ? 0 : (this.d.getUint32(this.rec(id) + 4, true) >>> 24) & 0x1f;
  }

  name(id: number): string {
    const base = this.inBase(id);
    if (base) return base.name(id);
    return id === 0 ? '' : this.str(this.d.getUint32(this.rec(id), true));
  }

  private vlen(id: number): number {
    return this.d.getUint32(this.rec(id) + 4, true) & 0xffff;
  }

  private kflag(id: number): boolean {
    return this.d.getUint32(this.rec(id) + 4, true) >>> 31 === 1;
  }

  /** size (INT, STRUCT, UNION, ENUM, FLOAT, DATASEC) or type (PTR, TYPEDEF, modifiers, FUNC, VAR...). */
  private sizeOrType(id: number): number {
    const base = this.inBase(id);
    if (base) return base.sizeOrType(id);
    return this.d.getUint32(this.rec(id) + 8, true);
  }

  /**
   * Find a named type of a kind (first match); undefined when absent. A scan
   * comparing name bytes in place: building a name index of all ~150k types
   * would allocate a string each and cost three times the whole parse.
   */
  find(kind: number, name: string): number | undefined {
    const key = `${kind}:${name}`;
    if (this.found.has(key)) return this.found.get(key);
    const want = Buffer.from(name, 'latin1');
    let hit: number | undefined;
    const kinds = this.kinds, nameOffs = this.nameOffs;
    for (let i = 1; i < this.count - this.firstId + 1 && hit === undefined; i++) {
      if (kinds[i] === kind && this.nameIs(nameOffs[i], want)) hit = i + this.firstId - 1;
    }
    this.found.set(key, hit);
    return hit;
  }

  /** Is the string at `off` exactly `want`? Compared in place, no string built. */
  private nameIs(off: number, want: Uint8Array): boolean {
    if (this.base && off < this.strBase) return this.base.nameIs(off, want);
    const s = this.strStart + off - this.strBase;
    const b = this.b;
    if (s < this.strStart || s + want.length >= this.strEnd || b[s] !== want[0] || b[s + want.length] !== 0) return false;
    let i = 0;
    while (i < want.length && b[s + i] === want[i]) i++;
    return i === want.length;
  }

  /** The own enum types (ENUM and ENUM64, not the base's) whose name passes `keep`. */
  enumTypes(keep: (name: string) => boolean = () => true): number[] {
    const out: number[] = [];
    for (let i = 1; i < this.count - this.firstId + 1; i++) {
      if (this.kinds[i] !== BtfKind.ENUM && this.kinds[i] !== BtfKind.ENUM64) continue;
      const id = i + this.firstId - 1;
      if (keep(this.name(id))) out.push(id);
    }
    return out;
  }

  /** Follow typedefs and const/volatile/restrict/type_tag to the underlying type. */
  resolve(id: number): number {
    for (let guard = 0; guard < 64; guard++) {
      const k = this.kind(id);
      if (k !== BtfKind.TYPEDEF && k !== BtfKind.VOLATILE && k !== BtfKind.CONST && k !== BtfKind.RESTRICT && k !== BtfKind.TYPE_TAG) return id;
      id = this.sizeOrType(id);
    }
    throw new ParseError('BTF', `type ${id}`, 'typedef/modifier chain too long (a loop?)');
  }

  /** The type a pointer points to (modifiers and typedefs of both stripped); undefined when not a pointer. */
  pointee(id: number): number | undefined {
    const t = this.resolve(id);
    return this.kind(t) === BtfKind.PTR ? this.resolve(this.sizeOrType(t)) : undefined;
  }

  /** Size in bytes of a type (pointers: 8; arrays: elements × element size). */
  sizeOf(id: number, depth = 0): number {
    if (depth > 32) throw new ParseError('BTF', `type ${id}`, 'array nesting too deep (a loop?)');
    const t = this.resolve(id);
    switch (this.kind(t)) {
      case 0: return 0;
      case BtfKind.PTR: return 8;
      case BtfKind.INT: case BtfKind.STRUCT: case BtfKind.UNION: case BtfKind.ENUM: case BtfKind.ENUM64: case BtfKind.FLOAT: case BtfKind.DATASEC:
        return this.sizeOrType(t);
      case BtfKind.ARRAY: {
        const base = this.inBase(t);
        if (base) return base.sizeOf(t, depth + 1);
        const p = this.rec(t) + 12;
        return this.sizeOf(this.d.getUint32(p, true), depth + 1) * this.d.getUint32(p + 8, true);
      }
      default: return 0;
    }
  }

  /** A C spelling of a type, for messages: "struct sk_buff *". */
  typeName(id: number, depth = 0): string {
    if (depth > 16) return '...';
    const k = this.kind(id);
    switch (k) {
      case 0: return 'void';
      case BtfKind.PTR: return `${this.typeName(this.sizeOrType(id), depth + 1)} *`;
      case BtfKind.CONST: return `const ${this.typeName(this.sizeOrType(id), depth + 1)}`;
      case BtfKind.VOLATILE: return `volatile ${this.typeName(this.sizeOrType(id), depth + 1)}`;
      case BtfKind.STRUCT: return `struct ${this.name(id) || '(anon)'}`;
      case BtfKind.UNION: return `union ${this.name(id) || '(anon)'}`;
      case BtfKind.ENUM: case BtfKind.ENUM64: return `enum ${this.name(id) || '(anon)'}`;
      case BtfKind.FUNC_PROTO: return 'function';
      default: return this.name(id) || KIND_NAMES[k];
    }
  }

  /** Members of a struct or union: name, type, bit offset, bitfield size. */
  members(id: number): Array<{ name: string; type: number; bitOffset: number; bitSize: number }> {
    const t = this.resolve(id);
    const owner = this.inBase(t);
    if (owner) return owner.members(t);
    const k = this.kind(t);
    if (k !== BtfKind.STRUCT && k !== BtfKind.UNION) throw new ParseError('BTF', `type ${id}`, `${this.typeName(t)} is not a struct or union`);
    const out = [];
    const kflag = this.kflag(t);
    const base = this.rec(t) + 12;
    for (let i = 0, n = this.vlen(t); i < n; i++) {
      const p = base + 12 * i;
      const raw = this.d.getUint32(p + 8, true);
      out.push({
        name: this.str(this.d.getUint32(p, true)),
        type: this.d.getUint32(p + 4, true),
        // With kind_flag, the offset word packs the bitfield size in its top byte.
        bitOffset: kflag ? raw & 0xffffff : raw,
        bitSize: kflag ? raw >>> 24 : 0,
      });
    }
    return out;
  }

  /**
   * Find a member by name, looking into anonymous structs and unions; bit
   * offset from `id`'s start. An anonymous type already searched without
   * success is not searched again (`searched`): the answer would be the same,
   * and without this a crafted BTF whose anonymous members share their types
   * (a diamond at every level) makes the walk exponential in the nesting.
   * So each type is walked at most once per search.
   */
  private findMember(
    id: number,
    name: string,
    searched = new Set<number>(),
    depth = 0,
  ): { type: number; bitOffset: number; bitSize: number } | undefined {
    if (depth > 16 || searched.has(id)) return undefined;
    searched.add(id);
    for (const m of this.members(id)) {
      if (m.name === name) return m;
      if (m.name === '') {
        const inner = this.resolve(m.type);
        const k = this.kind(inner);
        if (k !== BtfKind.STRUCT && k !== BtfKind.UNION) continue;
        const r = this.findMember(inner, name, searched, depth + 1);
        if (r) return { ...r, bitOffset: m.bitOffset + r.bitOffset };
      }
    }
    return undefined;
  }

  /**
   * Where `path` ("nd_net.net", "ns.inum") lives in struct `struct`; throws a
   * ParseError naming the missing part (a kernel whose layout we cannot use).
   */
  member(struct: string, path: string): MemberLocation {
    let t = this.find(BtfKind.STRUCT, struct);
    if (t === undefined) throw new ParseError('BTF', struct, `no struct ${struct} in this kernel's BTF`);
    let bits = 0;
    let last = { type: t, bitOffset: 0, bitSize: 0 };
    for (const part of path.split('.')) {
      const m = this.findMember(t, part);
      if (!m) throw new ParseError('BTF', `${struct}.${path}`, `${this.typeName(t)} has no member ${part}`);
      bits += m.bitOffset;
      last = m;
      t = this.resolve(m.type);
    }
    const size = this.sizeOf(last.type);
    return { offset: Math.floor(bits / 8), bitOffset: bits, bitSize: last.bitSize, type: last.type, size };
  }

  /** Like member() but for a whole, byte-aligned member: its offset and size. */
  field(struct: string, path: string): { offset: number; size: number; type: number } {
    const m = this.member(struct, path);
    if (m.bitSize !== 0 || m.bitOffset % 8 !== 0) throw new ParseError('BTF', `${struct}.${path}`, 'is a bitfield, not a whole member');
    return { offset: m.offset, size: m.size, type: m.type };
  }

  /**
   * The parameters of the function prototype behind a typedef such as
   * btf_trace_kfree_skb (`typedef void (*)(void *, struct sk_buff *, ...)`).
   */
  typedefPrototype(typedefName: string): { id: number; params: ProtoParam[] } {
    const id = this.find(BtfKind.TYPEDEF, typedefName);
    if (id === undefined) throw new ParseError('BTF', typedefName, `no typedef ${typedefName} in this kernel's BTF`);
    let t = this.resolve(this.sizeOrType(id));
    if (this.kind(t) === BtfKind.PTR) t = this.resolve(this.sizeOrType(t));
    if (this.kind(t) !== BtfKind.FUNC_PROTO || this.inBase(t)) throw new ParseError('BTF', typedefName, `${typedefName} is not a function pointer of this BTF`);
    const params: ProtoParam[] = [];
    const base = this.rec(t) + 12;
    for (let i = 0, n = this.vlen(t); i < n; i++) {
      const p = base + 8 * i;
      const type = this.d.getUint32(p + 4, true);
      params.push({ name: this.str(this.d.getUint32(p, true)), type, typeName: this.typeName(type) });
    }
    return { id, params };
  }

  /**
   * The enumerators of an enum type (ENUM or ENUM64), in order. The kind flag
   * says whether values are signed; ENUM64 values are lo/hi 32-bit halves.
   */
  enumerators(id: number): Enumerator[] {
    const base = this.inBase(id);
    if (base) return base.enumerators(id);
    const k = this.kind(id);
    if (k !== BtfKind.ENUM && k !== BtfKind.ENUM64) throw new ParseError('BTF', `type ${id}`, `${this.typeName(id)} is not an enum`);
    const signed = this.kflag(id);
    const p0 = this.rec(id) + 12;
    const out: Enumerator[] = [];
    for (let i = 0, n = this.vlen(id); i < n; i++) {
      if (k === BtfKind.ENUM) {
        const p = p0 + 8 * i;
        out.push({ name: this.str(this.d.getUint32(p, true)), value: signed ? this.d.getInt32(p + 4, true) : this.d.getUint32(p + 4, true) });
      } else {
        const p = p0 + 12 * i;
        const lo = this.d.getUint32(p + 4, true);
        const hi = signed ? this.d.getInt32(p + 8, true) : this.d.getUint32(p + 8, true);
        out.push({ name: this.str(this.d.getUint32(p, true)), value: hi * 0x1_0000_0000 + lo });
      }
    }
    return out;
  }

  /** Enumerators of the enum named `name` (ENUM kind), name → value; empty when absent. */
  enumValues(name: string): Map<string, number> {
    const id = this.find(BtfKind.ENUM, name);
    const out = new Map<string, number>();
    if (id === undefined) return out;
    for (const e of this.enumerators(id)) out.set(e.name, e.value);
    return out;
  }
}
