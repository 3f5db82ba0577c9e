/**
 * Hardware drops through tracefs: the `devlink:devlink_trap_report` event,
 * which the kernel fires in devlink_trap_report() each time a device (switch
 * ASIC, smart NIC, netdevsim) hands a trapped packet to the CPU. Its record
 * holds only strings: the devlink device (bus and device names), the driver,
 * the trap and its group as `__data_loc char[]`, and the input port's name
 * as a fixed `char[16]` (include/trace/events/devlink.h). The trap type
 * and action are not in the record: the source looks them up in devlink.
 *
 * Trapped packets are policed by the device (thousands per second at most),
 * so decoding the strings of each report costs little; reports are still
 * counted per (device, trap, group, port) and handed out once per batch.
 */
import { ParseError } from '../../core/errors.js';
import type { EventFormat, FieldFormat } from './format.js';

export const TRAP_REPORT = 'devlink/devlink_trap_report';

/** Where one string of the record is: a dynamic array or a fixed char array. */
export interface StringField {
  readonly name: string;
  readonly offset: number;
  /** 4 for dynamic fields (the location word), else the array's bytes. */
  readonly size: number;
  readonly dynamic?: 'data_loc' | 'rel_loc';
}

export interface TrapReportLayout {
  readonly id: number;
  readonly bus: StringField;
  readonly dev: StringField;
  readonly driver?: StringField;
  readonly trap: StringField;
  readonly group: StringField;
  readonly input?: StringField;
  /** Smallest event data size holding every field above, in bytes. */
  readonly minBytes: number;
}

/** One decoded report. Empty strings where the kernel wrote none (no input port). */
export interface TrapReport {
  /** "bus/device", the name devlink commands take ("netdevsim/netdevsim1"). */
  readonly device: string;
  readonly driver: string;
  readonly trap: string;
  readonly group: string;
  readonly input: string;
}

function stringField(fmt: EventFormat, name: string, required: true): StringField;
function stringField(fmt: EventFormat, name: string, required: false): StringField | undefined;
function stringField(fmt: EventFormat, name: string, required: boolean): StringField | undefined {
  const f: FieldFormat | undefined = fmt.fields.get(name);
  if (!f) {
    if (required) throw new ParseError('event format', fmt.name, `no "${name}" field`);
    return undefined;
  }
  if (f.dynamic) {
    if (f.offset % 4 !== 0) throw new ParseError('event format', name, `dynamic field at offset ${f.offset} is not 4-byte aligned`);
    return { name, offset: f.offset, size: 4, dynamic: f.dynamic };
  }
  if (!/^(unsigned )?char$/.test(f.type) || !f.arrayLength) throw new ParseError('event format', name, `not a string field (${f.type}${f.arrayLength !== undefined ? `[${f.arrayLength}]` : ''})`);
  return { name, offset: f.offset, size: f.size };
}

/** Where the strings of `devlink:devlink_trap_report` are in this kernel. */
export function trapReportLayout(fmt: EventFormat): TrapReportLayout {
  const bus = stringField(fmt, 'bus_name', true);
  const dev = stringField(fmt, 'dev_name', true);
  const trap = stringField(fmt, 'trap_name', true);
  const group = stringField(fmt, 'trap_group_name', true);
  const driver = stringField(fmt, 'driver_name', false);
  const input = stringField(fmt, 'input_dev_name', false);
  const all = [bus, dev, trap, group, driver, input].filter((f): f is StringField => f !== undefined);
  return {
    id: fmt.id,
    bus,
    dev,
    trap,
    group,
    ...(driver ? { driver } : {}),
    ...(input ? { input } : {}),
    minBytes: Math.max(...all.map((f) => f.offset + f.size)),
  };
}

/** Bytes up to the first NUL, as Latin-1 (device, trap and interface names are ASCII). */
function text(u8: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const c = u8[i];
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** One string of the event whose data is u8[start, start + length). */
function readString(u8: Uint8Array, start: number, length: number, f: StringField): string {
  if (!f.dynamic) return text(u8, start + f.offset, start + f.offset + f.size);
  const w = start + f.offset;
  const loc = (u8[w] | (u8[w + 1] << 8) | (u8[w + 2] << 16) | (u8[w + 3] << 24)) >>> 0;
  const len = loc >>> 16;
  const off = (loc & 0xffff) + (f.dynamic === 'rel_loc' ? f.offset + 4 : 0);
  if (off + len > length) throw new ParseError('devlink_trap_report event', f.name, `string of ${len} bytes at ${off} runs past the event's ${length} bytes`);
  return text(u8, start + off, start + off + len);
}

/** Decode one event whose data (from common_type on) is u8[start, start + length). */
export function decodeTrapReport(u8: Uint8Array, start: number, length: number, l: TrapReportLayout): TrapReport {
  if (length < l.minBytes) throw new ParseError('devlink_trap_report event', 'size', `${length} bytes, the format needs ${l.minBytes}`);
  if (start < 0 || start + length > u8.length) throw new RangeError('event outside the buffer');
  const s = (f: StringField | undefined) => (f ? readString(u8, start, length, f) : '');
  const trap = s(l.trap);
  if (trap === '') throw new ParseError('devlink_trap_report event', 'trap_name', 'empty trap name');
  return { device: `${s(l.bus)}/${s(l.dev)}`, driver: s(l.driver), trap, group: s(l.group), input: s(l.input) };
}

/** Distinct (device, trap, port) kept per batch; more is counted as lost, never silent. */
export const MAX_TRAP_KEYS = 1024;

/** Counts trap reports between two batches, by everything the record says. */
export class TrapReportTally {
  private readonly counts = new Map<string, { report: TrapReport; count: number }>();
  private total = 0;
  /** Reports not counted because MAX_TRAP_KEYS distinct keys were already counted in this batch. */
  overflow = 0;

  constructor(readonly layout: TrapReportLayout) {}

  /** Reports counted since the last take(). */
  get pending(): number {
    return this.total;
  }

  /** Decode and count one event. Throws ParseError for a malformed one (nothing counted). */
  add(u8: Uint8Array, start: number, length: number): void {
    const r = decodeTrapReport(u8, start, length, this.layout);
    const key = `${r.device}\0${r.trap}\0${r.group}\0${r.input}\0${r.driver}`;
    const e = this.counts.get(key);
    if (e) e.count++;
    else if (this.counts.size < MAX_TRAP_KEYS) this.counts.set(key, { report: r, count: 1 });
    else {
      this.overflow++;
      return;
    }
    this.total++;
  }

  /** Everything counted so far, and start again from zero. */
  take(): Array<{ report: TrapReport; count: number }> {
    const out = [...this.counts.values()];
    this.counts.clear();
    this.total = 0;
    return out;
  }
}
