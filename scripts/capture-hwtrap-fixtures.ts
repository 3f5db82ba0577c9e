/**
 * Capture hardware-drop decoder fixtures in a kernel with netdevsim (the test
 * VM): the devlink:devlink_trap_report and skb:kfree_skb formats, the page and event headers,
 * and raw ring-buffer pages holding the reports of one netdevsim device, with
 * the number of reports per trap that devlink counted meanwhile.
 *
 *   scripts/kernel-vm.sh node dist/scripts/capture-hwtrap-fixtures.js test/fixtures/devlink-6.1
 *
 * The device is created and deleted here; its ports are up only while the
 * event is enabled, so every report devlink counts is in the pages.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { execFileSync } from 'node:child_process';
import { TracefsInstance } from '../src/sources/tracefs/instance.js';
import { findTracefs } from '../src/sources/tracefs/tracefs.js';
import { TRAP_REPORT } from '../src/sources/tracefs/traps.js';
import { drainRawPages } from './raw-pages.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: capture-hwtrap-fixtures OUTDIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const root = findTracefs();
for (const [src, dst] of [
  [`events/${TRAP_REPORT}/format`, 'devlink_trap_report.format'],
  ['events/skb/kfree_skb/format', 'kfree_skb.format'],
  ['events/header_page', 'header_page'],
  ['events/header_event', 'header_event'],
]) writeFileSync(join(out, dst), readFileSync(join(root, src)));

const ID = 21;
const DEV = `netdevsim/netdevsim${ID}`;
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const packets = (): Record<string, number> => {
  const j = JSON.parse(execFileSync('devlink', ['-s', '-j', 'trap', 'show'], { encoding: 'utf8' })) as {
    trap: Record<string, Array<{ name: string; stats?: { rx?: { packets?: number } } }>>;
  };
  return Object.fromEntries((j.trap[DEV] ?? []).map((t) => [t.name, t.stats?.rx?.packets ?? 0]));
};

writeFileSync('/sys/bus/netdevsim/new_device', `${ID} 2`);
const netDir = `/sys/bus/netdevsim/devices/netdevsim${ID}/net`;
for (let i = 0; i < 50 && !(existsSync(netDir) && readdirSync(netDir).length === 2); i++) sleep(100);
const ports = readdirSync(netDir).sort();
const inst = TracefsInstance.create(root, `dropmon-capture-${process.pid}`);
try {
  if (existsSync(inst.path('buffer_subbuf_size_kb'))) inst.write('buffer_subbuf_size_kb', '4');
  inst.setBufferKb(1024);
  execFileSync('devlink', ['trap', 'set', DEV, 'trap', 'source_mac_is_multicast', 'action', 'trap']);
  const before = packets();
  inst.enableEvent(TRAP_REPORT);
  for (const p of ports) execFileSync('ip', ['link', 'set', p, 'up']);
  sleep(1000); // netdevsim reports every trap not set to drop, per running port, every 100 ms
  for (const p of ports) execFileSync('ip', ['link', 'set', p, 'down']);
  sleep(500); // a report pass already running ends
  inst.write(`events/${TRAP_REPORT}/enable`, '0');
  const after = packets();
  const expected = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
  const pages = drainRawPages(inst, join(out, 'pages.bin'));
  writeFileSync(join(out, 'pages.json'), JSON.stringify({ kernel: release(), device: DEV, ports, pages, reports: expected }, null, 2) + '\n');
} finally {
  inst.remove();
  writeFileSync('/sys/bus/netdevsim/del_device', String(ID));
}
process.stdout.write(`fixtures written to ${out}\n`);
