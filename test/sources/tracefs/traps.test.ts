/**
 * Decoding devlink:devlink_trap_report (hardware drops) from ring-buffer
 * pages: the formats and pages captured in Debian's 6.1 and 6.12 kernels with
 * a netdevsim device (scripts/capture-hwtrap-fixtures.ts), and hand-built
 * pages for what a capture does not show (no input port, __rel_loc, damage).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage, type EventFormat } from '../../../src/sources/tracefs/format.js';
import { PageDecoder, kfreeSkbLayout } from '../../../src/sources/tracefs/ringbuffer.js';
import { TrapReportTally, decodeTrapReport, trapReportLayout, MAX_TRAP_KEYS } from '../../../src/sources/tracefs/traps.js';
import { DropTally } from '../../../src/core/tally.js';
import { ParseError } from '../../../src/core/errors.js';
import { fixture, fixtureText, words } from '../../helpers/fixtures.js';
import { PageBuilder } from '../../helpers/pages.js';
import type { IntervalReport } from '../../../src/core/interval.js';
import { formatIntervalText } from '../../../src/outputs/text.js';
import { formatIntervalJson } from '../../../src/outputs/json.js';

const KERNELS = ['6.1', '6.12'] as const;

function layouts(k: string) {
  return {
    trap: parseEventFormat(fixtureText(`devlink-${k}/devlink_trap_report.format`)),
    kfree: parseEventFormat(fixtureText(`devlink-${k}/kfree_skb.format`)),
    page: parseHeaderPage(fixtureText(`devlink-${k}/header_page`)),
    header: parseHeaderEvent(fixtureText(`devlink-${k}/header_event`)),
  };
}

function decoder(k: string) {
  const L = layouts(k);
  const traps = new TrapReportTally(trapReportLayout(L.trap));
  const drops = new DropTally(new Map());
  return { L, traps, drops, dec: new PageDecoder(L.page, L.header, kfreeSkbLayout(L.kfree), drops, undefined, traps) };
}

for (const k of KERNELS) {
  test(`${k}: the format's string fields, dynamic and fixed`, () => {
    const { trap } = layouts(k);
    assert.equal(trap.name, 'devlink_trap_report');
    for (const n of ['bus_name', 'dev_name', 'driver_name', 'trap_name', 'trap_group_name']) {
      assert.equal(trap.fields.get(n)?.dynamic, 'data_loc', n);
      assert.equal(trap.fields.get(n)?.size, 4, n);
    }
    assert.deepEqual({ ...trap.fields.get('input_dev_name') }, { name: 'input_dev_name', type: 'char', offset: 28, size: 16, signed: trap.fields.get('input_dev_name')!.signed, arrayLength: 16 });
    const l = trapReportLayout(trap);
    assert.deepEqual([l.bus.offset, l.dev.offset, l.driver?.offset, l.trap.offset, l.group.offset, l.input?.offset, l.minBytes], [8, 12, 16, 20, 24, 28, 44]);
  });

  test(`${k}: captured pages hold exactly the reports devlink counted, per trap`, () => {
    const meta = JSON.parse(fixture(`devlink-${k}/pages.json`).toString()) as { device: string; ports: string[]; reports: Record<string, number> };
    const { traps, dec } = decoder(k);
    const buf = fixture(`devlink-${k}/pages.bin`);
    const u32 = words(buf);
    let reports = 0;
    for (let off = 0; off < buf.length; off += 4096) reports += dec.decode(u32, off, 4096).trapReports;
    const got = new Map<string, number>();
    for (const { report: r, count } of traps.take()) {
      assert.equal(r.device, meta.device);
      assert.equal(r.driver, 'netdevsim');
      assert.ok(meta.ports.includes(r.input), `input port ${r.input}`);
      got.set(r.trap, (got.get(r.trap) ?? 0) + count);
    }
    assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries(Object.entries(meta.reports).sort()));
    assert.equal(reports, Object.values(meta.reports).reduce((a, b) => a + b, 0));
    assert.equal(traps.pending, 0, 'take() starts again from zero');
  });
}

/** The data of one report, laid out as the kernel does (strings after the fixed fields). */
function reportBytes(fmt: EventFormat, s: { bus: string; dev: string; driver: string; trap: string; group: string; input: string }, relLoc = false): Uint8Array {
  const strings: Array<[string, string]> = [['bus_name', s.bus], ['dev_name', s.dev], ['driver_name', s.driver], ['trap_name', s.trap], ['trap_group_name', s.group]];
  const fixedEnd = 44;
  const total = fixedEnd + strings.reduce((n, [, v]) => n + v.length + 1, 0);
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, fmt.id, true);
  let at = fixedEnd;
  for (const [field, v] of strings) {
    const f = fmt.fields.get(field)!;
    const off = relLoc ? at - (f.offset + 4) : at;
    dv.setUint32(f.offset, ((v.length + 1) << 16) | off, true);
    for (let i = 0; i < v.length; i++) b[at + i] = v.charCodeAt(i);
    at += v.length + 1;
  }
  for (let i = 0; i < s.input.length; i++) b[28 + i] = s.input.charCodeAt(i);
  return b;
}

const R = { bus: 'pci', dev: '0000:03:00.0', driver: 'mlxsw_spectrum', trap: 'blackhole_route', group: 'l3_drops', input: 'swp1' };

test('hand-built page: trap reports among kfree_skb events, in both event header forms', () => {
  const { L, traps, drops, dec } = decoder('6.12');
  const b = new PageBuilder();
  const kslots = { id: L.kfree.id, locationOffset: 16, protocolOffset: 32, reasonOffset: 36, size: 40 };
  for (let i = 0; i < 3; i++) {
    b.raw(reportBytes(L.trap, R), 1, i === 1);
    b.drop(kslots, { location: 0xffffffff81000010n, reason: 3, protocol: 0x0800 });
  }
  b.raw(reportBytes(L.trap, { ...R, input: '', trap: 'ttl_value_is_too_small', group: 'l3_exceptions' }));
  const info = dec.decode(words(b.build()), 0, 4096);
  assert.deepEqual([info.drops, info.trapReports], [3, 4]);
  assert.equal(drops.take()[0].count, 3);
  const t = traps.take().sort((x, y) => y.count - x.count);
  assert.deepEqual(t, [
    { report: { device: 'pci/0000:03:00.0', driver: 'mlxsw_spectrum', trap: 'blackhole_route', group: 'l3_drops', input: 'swp1' }, count: 3 },
    { report: { device: 'pci/0000:03:00.0', driver: 'mlxsw_spectrum', trap: 'ttl_value_is_too_small', group: 'l3_exceptions', input: '' }, count: 1 },
  ]);
});

test('__rel_loc strings: offsets counted from the end of the field', () => {
  const text = fixtureText('devlink-6.12/devlink_trap_report.format').replaceAll('__data_loc', '__rel_loc');
  const fmt = parseEventFormat(text);
  assert.equal(fmt.fields.get('trap_name')?.dynamic, 'rel_loc');
  const b = reportBytes(fmt, R, true);
  assert.deepEqual(decodeTrapReport(b, 0, b.length, trapReportLayout(fmt)), { device: 'pci/0000:03:00.0', driver: 'mlxsw_spectrum', trap: 'blackhole_route', group: 'l3_drops', input: 'swp1' });
});

test('damaged reports: a clear ParseError, the events before it still counted', () => {
  const { L, traps, dec } = decoder('6.1');
  const lay = trapReportLayout(L.trap);
  const good = reportBytes(L.trap, R);
  const past = Uint8Array.from(good);
  new DataView(past.buffer).setUint32(20, (200 << 16) | 44, true); // trap_name: 200 bytes, beyond the event
  assert.throws(() => decodeTrapReport(past, 0, past.length, lay), (e: unknown) => e instanceof ParseError && /runs past the event's .*\(at trap_name\)/.test(e.message));
  assert.throws(() => decodeTrapReport(good, 0, 40, lay), (e: unknown) => e instanceof ParseError && /40 bytes, the format needs 44/.test(e.message));
  const empty = Uint8Array.from(good);
  new DataView(empty.buffer).setUint32(20, (0 << 16) | 44, true);
  assert.throws(() => decodeTrapReport(empty, 0, empty.length, lay), /empty trap name/);
  const b = new PageBuilder();
  b.raw(good);
  b.raw(past);
  assert.throws(() => dec.decode(words(b.build()), 0, 4096), (e: unknown) => e instanceof ParseError && /byte \d+/.test(e.message));
  assert.equal(dec.info.trapReports, 1);
  assert.equal(traps.take()[0].count, 1);
});

test('formats dropmon cannot read are refused with the field named', () => {
  const text = fixtureText('devlink-6.1/devlink_trap_report.format');
  assert.throws(() => trapReportLayout(parseEventFormat(text.replace(/\tfield:__data_loc char\[\] trap_name;.*\n/, ''))), /no "trap_name" field/);
  assert.throws(() => trapReportLayout(parseEventFormat(text.replace('__data_loc char[] trap_group_name', 'int trap_group_name'))), /not a string field \(int\) \(at trap_group_name\)/);
  assert.throws(() => parseEventFormat(text.replace('trap_name;\toffset:20;\tsize:4;', 'trap_name;\toffset:20;\tsize:8;')), /dynamic field of 8 bytes/);
});

test('the tally is bounded: reports past MAX_TRAP_KEYS distinct keys are counted as overflow', () => {
  const { L } = decoder('6.1');
  const tally = new TrapReportTally(trapReportLayout(L.trap));
  for (let i = 0; i < MAX_TRAP_KEYS + 5; i++) {
    const b = reportBytes(L.trap, { ...R, input: `p${i}` });
    tally.add(b, 0, b.length);
  }
  assert.equal(tally.pending, MAX_TRAP_KEYS);
  assert.equal(tally.overflow, 5);
  assert.equal(tally.take().length, MAX_TRAP_KEYS);
});

test('hardware lines and JSON: trap, group, type, action, input port and devlink device', () => {
  const hw = { location: 0n, reason: -1, reasonName: '', protocol: 0, origin: 'hardware' as const };
  const report: IntervalReport = {
    start: 0, end: 1000, seq: 1, drops: 12, lost: new Map(), lostTotal: 0,
    overflow: { drops: 0, points: 0, pointsCapped: false },
    points: [
      { ...hw, count: 7, trap: { name: 'blackhole_route', group: 'l3_drops', type: 'drop', action: 'trap', device: 'pci/0000:03:00.0', inputName: 'swp1' }, ifindex: 12 },
      { ...hw, count: 5, trap: { name: 'source_mac_is_multicast' } },
    ],
  };
  assert.deepEqual(formatIntervalText(report, undefined, undefined), [
    '7 drops at blackhole_route [hardware] l3_drops type drop action trap dev swp1 devlink pci/0000:03:00.0',
    '5 drops at source_mac_is_multicast [hardware]',
  ]);
  const [a, b] = formatIntervalJson(report, undefined, undefined, 'tracefs').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    [a.trap, a.trap_group, a.trap_type, a.trap_action, a.devlink, a.ifindex, a.ifname, a.origin, a.count],
    ['blackhole_route', 'l3_drops', 'drop', 'trap', 'pci/0000:03:00.0', 12, 'swp1', 'hardware', 7],
  );
  assert.deepEqual([b.trap, b.trap_group, b.trap_type, b.trap_action, b.devlink, b.ifindex, b.ifname], ['source_mac_is_multicast', null, null, null, null, null, null]);
});
