/**
 * Parsers for the tracefs text files that describe the binary layout:
 * an event's `format`, `events/header_page` and `events/header_event`.
 *
 * Nothing about the layout is hard-coded: field offsets, sizes and the drop
 * reason numbers all moved between kernel versions (reason appeared in 5.17,
 * rx_sk in 6.11, and the enum was renumbered several times).
 */
import { ParseError } from '../../core/errors.js';

export interface FieldFormat {
  readonly name: string;
  /** C type as written by the kernel, e.g. "void *", "enum skb_drop_reason". */
  readonly type: string;
  readonly offset: number;
  readonly size: number;
  readonly signed: boolean;
  /** Declared as an array (`caller[8]`); `arrayLength` is 0 for `[]`. */
  readonly arrayLength?: number;
  /**
   * A dynamic array (`__data_loc char[] name`): the field is a u32 whose low
   * 16 bits are the offset of the bytes from the start of the event, the high
   * 16 bits their length; `__rel_loc` (5.18+) counts the offset from the end
   * of the field instead.
   */
  readonly dynamic?: 'data_loc' | 'rel_loc';
}

export interface EventFormat {
  readonly name: string;
  readonly id: number;
  readonly fields: ReadonlyMap<string, FieldFormat>;
  readonly printFmt: string;
  /** Value → name tables of each `__print_symbolic(REC->field, ...)`, by field. */
  readonly symbolic: ReadonlyMap<string, ReadonlyMap<number, string>>;
}

const FIELD_RE = /^\s*field:\s*(.*?);\s*offset:\s*(\d+);\s*size:\s*(\d+);\s*(?:signed:\s*(-?\d+);)?/;

/** Parse the `format` file of one trace event. */
export function parseEventFormat(text: string): EventFormat {
  const what = 'event format';
  let name: string | undefined;
  let id: number | undefined;
  let printFmt = '';
  const fields = new Map<string, FieldFormat>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const where = `line ${i + 1}`;
    if (line.startsWith('name:')) {
      name = line.slice(5).trim();
      if (!/^\w+$/.test(name)) throw new ParseError(what, where, `bad event name ${JSON.stringify(name)}`);
    } else if (line.startsWith('ID:')) {
      const t = line.slice(3).trim();
      if (!/^\d{1,9}$/.test(t)) throw new ParseError(what, where, `bad event ID ${JSON.stringify(t)}`);
      id = Number(t);
    } else if (line.startsWith('print fmt:')) {
      printFmt = lines.slice(i).join('\n').slice('print fmt:'.length).trim();
      break;
    } else if (/^\s*field:/.test(line)) {
      const m = FIELD_RE.exec(line);
      if (!m) throw new ParseError(what, where, `malformed field line ${JSON.stringify(line.slice(0, 120))}`);
      const decl = m[1].trim();
      const dm = /^(.*?)\s*\b([A-Za-z_]\w*)\s*(?:\[(\d*)\])?$/.exec(decl);
      if (!dm || dm[2] === undefined) throw new ParseError(what, where, `cannot find the field name in ${JSON.stringify(decl)}`);
      const offset = Number(m[2]);
      const size = Number(m[3]);
      const dyn = /^__(data|rel)_loc\b/.exec(dm[1].trim());
      if (dyn && size !== 4) throw new ParseError(what, where, `a dynamic field of ${size} bytes (expected 4) in ${JSON.stringify(decl)}`);
      if (offset > 0xffff || size > 0xffff) throw new ParseError(what, where, `offset/size out of range in ${JSON.stringify(decl)}`);
      const field: FieldFormat = {
        name: dm[2],
        type: dm[1].trim(),
        offset,
        size,
        signed: m[4] === '1',
        ...(dm[3] !== undefined ? { arrayLength: dm[3] === '' ? 0 : Number(dm[3]) } : {}),
        ...(dyn ? { dynamic: dyn[1] === 'data' ? ('data_loc' as const) : ('rel_loc' as const) } : {}),
      };
      fields.set(field.name, field);
    }
  }
  if (name === undefined) throw new ParseError(what, 'end', 'no "name:" line');
  if (id === undefined) throw new ParseError(what, 'end', 'no "ID:" line');
  return { name, id, fields, printFmt, symbolic: parseSymbolicTables(printFmt) };
}

/**
 * Extract every `__print_symbolic(REC->field, { 2, "NAME" }, ...)` table.
 * Values may be negative or hex; a name appearing twice keeps its first value.
 */
export function parseSymbolicTables(printFmt: string): Map<string, Map<number, string>> {
  const out = new Map<string, Map<number, string>>();
  const head = /__print_symbolic\(\s*REC->(\w+)\s*,/g;
  let m: RegExpExecArray | null;
  while ((m = head.exec(printFmt)) !== null) {
    const table = out.get(m[1]) ?? new Map<number, string>();
    const entry = /\s*\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"([^"]*)"\s*\}\s*,?/y;
    let pos = head.lastIndex;
    for (;;) {
      entry.lastIndex = pos;
      const e = entry.exec(printFmt);
      if (!e) break;
      const v = Number(e[1]);
      if (Number.isSafeInteger(v) && !table.has(v)) table.set(v, e[2]);
      pos = entry.lastIndex;
    }
    out.set(m[1], table);
  }
  return out;
}

/** Layout of a ring-buffer sub-buffer page (`events/header_page`). */
export interface PageHeaderFormat {
  readonly timestampOffset: number;
  readonly commitOffset: number;
  readonly commitSize: number;
  readonly dataOffset: number;
  /** Bytes of event data a page can hold (the `data` field's size). */
  readonly dataSize: number;
}

export function parseHeaderPage(text: string): PageHeaderFormat {
  const fields = new Map<string, { offset: number; size: number }>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*field:/.test(lines[i])) continue;
    const m = FIELD_RE.exec(lines[i]);
    const dm = m && /([A-Za-z_]\w*)\s*(?:\[\d*\])?$/.exec(m[1].trim());
    if (!m || !dm) throw new ParseError('header_page', `line ${i + 1}`, `malformed field line ${JSON.stringify(lines[i].slice(0, 120))}`);
    // "overwrite" shares the commit word; the first definition of a name wins.
    if (!fields.has(dm[1])) fields.set(dm[1], { offset: Number(m[2]), size: Number(m[3]) });
  }
  const need = (n: string) => {
    const f = fields.get(n);
    if (!f) throw new ParseError('header_page', 'end', `no "${n}" field`);
    return f;
  };
  const ts = need('timestamp');
  const commit = need('commit');
  const data = need('data');
  if (commit.size !== 4 && commit.size !== 8) throw new ParseError('header_page', 'commit', `unsupported commit size ${commit.size}`);
  if (commit.offset % 4 !== 0 || data.offset % 4 !== 0) throw new ParseError('header_page', 'data', 'commit and data must be 4-byte aligned');
  if (data.size < 8 || data.size > 1 << 24) throw new ParseError('header_page', 'data', `implausible data size ${data.size}`);
  return { timestampOffset: ts.offset, commitOffset: commit.offset, commitSize: commit.size, dataOffset: data.offset, dataSize: data.size };
}

/** The compressed event header (`events/header_event`). */
export interface EventHeaderFormat {
  readonly typeLenBits: number;
  readonly timeDeltaBits: number;
  readonly padding: number;
  readonly timeExtend: number;
  readonly timeStamp: number;
  readonly dataMaxTypeLen: number;
}

export function parseHeaderEvent(text: string): EventHeaderFormat {
  const num = (re: RegExp, what: string) => {
    const m = re.exec(text);
    if (!m) throw new ParseError('header_event', what, `no "${what}" line`);
    return Number(m[1]);
  };
  const h: EventHeaderFormat = {
    typeLenBits: num(/type_len\s*:\s*(\d+)\s*bits/, 'type_len'),
    timeDeltaBits: num(/time_delta\s*:\s*(\d+)\s*bits/, 'time_delta'),
    padding: num(/padding\s*:\s*type\s*==\s*(\d+)/, 'padding'),
    timeExtend: num(/time_extend\s*:\s*type\s*==\s*(\d+)/, 'time_extend'),
    timeStamp: num(/time_stamp\s*:\s*type\s*==\s*(\d+)/, 'time_stamp'),
    dataMaxTypeLen: num(/data max type_len\s*==\s*(\d+)/, 'data max type_len'),
  };
  if (h.typeLenBits + h.timeDeltaBits !== 32 || h.typeLenBits < 1 || h.typeLenBits > 8)
    throw new ParseError('header_event', 'type_len', `unsupported header split ${h.typeLenBits}+${h.timeDeltaBits} bits`);
  return h;
}
