/**
 * Capture decoder fixtures from the running kernel: its layout files and raw
 * ring-buffer pages holding a known number of drops, plus pages with the
 * missed-events flag (a tiny buffer overrun on purpose).
 *
 *   node dist/scripts/capture-fixtures.js test/fixtures/kernel-$(uname -r | cut -d- -f1)
 *
 * Traffic goes to a network namespace created and deleted here.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { execFileSync } from 'node:child_process';
import { TracefsInstance } from '../src/sources/tracefs/instance.js';
import { drainRawPages as drain } from './raw-pages.js';
import { findTracefs } from '../src/sources/tracefs/tracefs.js';
import { KFREE_SKB, parseCpuStats } from '../src/sources/tracefs/source.js';
import { dropgenBinary } from '../test/helpers/dropgen.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: capture-fixtures OUTDIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const root = findTracefs();
for (const [src, dst] of [
  ['events/skb/kfree_skb/format', 'kfree_skb.format'],
  ['events/header_page', 'header_page'],
  ['events/header_event', 'header_event'],
  ['events/ftrace/kernel_stack/format', 'kernel_stack.format'],
]) writeFileSync(join(out, dst), readFileSync(join(root, src))); // tracefs files have no size: copy by reading

const ns = `dropmon-capture-${process.pid}`;
const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
execFileSync('ip', ['netns', 'add', ns]);
const gen = dropgenBinary();


const expected: Record<string, number> = {};
try {
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // 1. pages with a known mix of drops (the capture holds these and any other drops of the host)
  let inst = TracefsInstance.create(root, `dropmon-capture-${process.pid}`);
  try {
    inst.setBufferKb(4096);
    inst.enableEvent(KFREE_SKB);
    inNs(gen, '-m', 'ethproto', '-n', '5000', '-c', '0');
    inNs(gen, '-m', 'noport', '-n', '1000', '-c', '1');
    inNs(gen, '-m', 'ethproto', '-n', '500', '-c', '1');
    inst.write(`events/${KFREE_SKB}/enable`, '0');
    expected.UNHANDLED_PROTO = 5500;
    expected.NO_SOCKET = 1000;
    const pages = drain(inst, join(out, 'pages.bin'));
    writeFileSync(join(out, 'pages.json'), JSON.stringify({ kernel: release(), pages, atLeast: expected }, null, 2) + '\n');
  } finally {
    inst.remove();
  }
  // 2. an overrun: 8 KiB per CPU, 20000 drops on cpu0, nobody reading
  inst = TracefsInstance.create(root, `dropmon-capture-${process.pid}`);
  try {
    inst.setBufferKb(8);
    inst.enableEvent(KFREE_SKB);
    inNs(gen, '-m', 'ethproto', '-n', '20000', '-c', '0');
    inst.write(`events/${KFREE_SKB}/enable`, '0');
    const stats = parseCpuStats(inst.read('per_cpu/cpu0/stats'));
    const pages = drain(inst, join(out, 'pages-overrun.bin'));
    writeFileSync(
      join(out, 'pages-overrun.json'),
      JSON.stringify({ kernel: release(), pages, sent: 20000, cpu0: Object.fromEntries(stats) }, null, 2) + '\n',
    );
  } finally {
    inst.remove();
  }
} finally {
  execFileSync('ip', ['netns', 'delete', ns]);
}
process.stdout.write(`fixtures written to ${out}\n`);
