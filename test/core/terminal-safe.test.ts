/**
 * Control characters from the kernel or a recording never reach a terminal
 * raw: the helper, then every text output fed hostile names (symbols,
 * interfaces, namespaces, reasons, traps, lost-event causes, counters).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTerminalControls, terminalSafe } from '../../src/core/terminal-safe.js';
import type { Attribution } from '../../src/core/attribution.js';
import type { Finding } from '../../src/core/diagnosis.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { formatIntervalText } from '../../src/outputs/text.js';
import { formatCorrelationText } from '../../src/outputs/correlation.js';
import { formatCounterTable, formatDeltas } from '../../src/outputs/counters.js';
import { formatFindings } from '../../src/outputs/diagnosis.js';
import { PacketTextOutput } from '../../src/outputs/packets.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openRecording } from '../../src/recording/recording.js';
import { buildReport } from '../../src/recording/report.js';
import { formatReportText } from '../../src/recording/report-text.js';
import { alertLine } from '../../src/service/alerts.js';
import { delta, interval, point } from '../outputs/inputs.js';

/** What a hostile name can hold: OSC retitle, BEL, clear screen, CR, a C1 CSI, DEL, a bidi override. */
const EVIL = 'x\x1b]0;owned\x07\x1b[2J\r\x9b31m\x7f\u202e';
/** The same without what kallsyms splits a line on (a symbol name has no space, tab or newline). */
const EVIL_SYMBOL = 'evil_fn\x1b[31m\x07\x9b\u202e';

function assertClean(what: string, text: string): void {
  assert.ok(!hasTerminalControls(text), `${what} printed a raw control character: ${JSON.stringify(text)}`);
  assert.match(text, /\\x1b/, `${what} shows the escape`);
}

test('terminalSafe: controls become visible escapes; newline, tab and printable unicode stay', () => {
  assert.equal(terminalSafe('a\x1b[31mb\x07c\rd\x00e\x7ff\x9bg\u202eh'), 'a\\x1b[31mb\\x07c\\x0dd\\x00e\\x7ff\\x9bg\\u202eh');
  assert.equal(terminalSafe('line 1\n\tline 2: Grüße, 日本, ✓, emoji 🙂\n'), 'line 1\n\tline 2: Grüße, 日本, ✓, emoji 🙂\n');
  assert.equal(terminalSafe(terminalSafe(EVIL)), terminalSafe(EVIL), 'once is enough');
  assert.ok(!hasTerminalControls(terminalSafe(EVIL)));
  assert.ok(hasTerminalControls(EVIL));
});

const symbols = new Symbolizer(KallsymsTable.parse(`ffffffff81abc000 t ${EVIL_SYMBOL}\nffffffff81ac1000 T _etext\n`));
const attribution: Attribution = {
  netns: () => ({ name: `ns${EVIL}`, container: `docker ${EVIL}` }),
  ifname: () => `eth${EVIL}`,
  initInode: 1,
};

test('watch text: hostile symbols, reasons, traps, namespaces and interfaces', () => {
  const r = interval(
    [
      point({ reasonName: EVIL, netns: 7, ifindex: 2, stack: [0xffffffff81abc010n] }),
      point({ origin: 'hardware', trap: { name: `trap${EVIL}`, group: EVIL, device: `pci/${EVIL}`, inputName: `sw${EVIL}` }, count: 3 }),
    ],
    { lost: new Map([[`cpu${EVIL}`, 4]]), lostTotal: 4 },
  );
  assertClean('watch', formatIntervalText(r, symbols, attribution).join('\n'));
});

test('correlation text: hostile counter scopes, socket details and reasons', () => {
  const p = point({ reasonName: EVIL, netns: 7 });
  const r = interval([p], {
    correlation: {
      groups: [{ reasons: [EVIL], counters: [delta('link:rx_dropped', 5, { scope: `eth${EVIL}` }), delta('socket:drops', 2, { scope: EVIL, detail: EVIL })], points: [p], drops: 1, netns: 7 }],
      blindSpots: [{ counter: delta('Udp:RcvbufErrors', 3, { scope: EVIL }), why: EVIL }],
    },
    benignPoints: [p],
  } as Partial<ReturnType<typeof interval>>);
  assertClean('correlation', formatCorrelationText(r, symbols, attribution).join('\n'));
});

test('counters: the table and the deltas', () => {
  assertClean('counters table', formatCounterTable([{ name: `link:${EVIL}`, scope: `eth${EVIL}`, layer: 'nic', value: 5, source: 'ethtool', class: 'drop', meaning: EVIL, detail: EVIL }]));
  assertClean('counter deltas', formatDeltas(0, 1, [{ ...delta(`link:${EVIL}`, 5, { scope: `eth${EVIL}`, detail: EVIL }), meaning: EVIL }]));
});

test('diagnose text: hostile evidence, places and what was not read', () => {
  const f: Finding = {
    rank: 1,
    key: EVIL,
    kind: 'drops',
    cause: EVIL,
    packets: 3,
    benign: 'no',
    known: false,
    blindSpot: false,
    evidence: [`3 drops at ${EVIL}`],
    check: [EVIL],
    fix: [],
    points: [{ location: EVIL, reason: EVIL, count: 3 }],
    counters: [{ name: EVIL, scope: EVIL, layer: 'nic', delta: 3 }],
    interfaces: [{ name: EVIL, ifindex: 2, count: 3 }],
    sockets: [],
    netns: 7,
    netnsName: EVIL,
  } as Finding;
  assertClean('diagnose', formatFindings([f, { ...f, benign: 'usually', rank: 2 }], { seconds: 1, intervals: 1, drops: 3, lost: 0, netns: EVIL, notRead: [`ethtool: ${EVIL}`] }, 5));
});

test('packet lines: hostile device names and kernel symbols', () => {
  let out = '';
  new PacketTextOutput((t) => (out += t), undefined).packets([
    { location: 0xffffffff81abc010n, reason: 2, reasonName: EVIL, protocol: 0x0800, origin: 'software', count: 1, packet: { ifname: `eth${EVIL}`, kernelSymbol: EVIL, origLen: 60 } },
  ]);
  assertClean('packets', out);
});

const dir = mkdtempSync(join(tmpdir(), 'dropmon-terminal-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('report text: a recording with hostile names everywhere', () => {
  const file = join(dir, 'evil.db');
  const w = new Recorder(file, { source: `tracefs${EVIL}`, intervalMs: 1000, symbols });
  for (let s = 1; s <= 3; s++)
    w.record({
      interval: interval([point({ reasonName: EVIL, count: 5, netns: 7, ifindex: 2 })], { seq: s, start: s * 1000, end: (s + 1) * 1000, lost: new Map([[`cpu${EVIL}`, 1]]), lostTotal: 1 }),
      counters: [delta(`link:${EVIL}`, 5, { scope: `eth${EVIL}` })],
    });
  w.close();
  const rec = openRecording(file);
  try {
    assertClean('report', formatReportText(buildReport(rec)));
  } finally {
    rec.close();
  }
});

test('alert lines: a hostile interface or reason in the match', () => {
  assertClean('alert', alertLine({ status: 'firing', rule: 'r', kind: 'interface', match: `eth${EVIL}`, rate: 5, threshold: 1, since: 0, at: 1000, hostname: EVIL }));
});
