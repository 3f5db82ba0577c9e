/**
 * Hardware drops from netdevsim's devlink traps, counted by every source at
 * once in one window: the tracefs source (devlink:devlink_trap_report), the
 * BPF source (a program on that tracepoint), NET_DM's hardware alerts, and
 * devlink's own trap statistics (`devlink -s trap show`), which must all agree
 * by trap name. Runs in a Debian kernel with netdevsim (scripts/kernel-vm.sh:
 * test/vm/kernels.test.ts runs it); skips, saying why, elsewhere.
 *
 * Exact counts despite netdevsim's periodic reporting (one packet per trap
 * not set to "drop", per running port, every 100 ms): the three dropmon
 * processes start while the ports are down (nothing is reported), the ports go
 * up, then down again, and once devlink's counters stop moving the window is
 * closed: every report devlink counted is one the sources must show.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { NetdmClient } from '../../src/sources/netdm/client.js';
import { DropmonProcess } from '../helpers/dropmon.js';

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/sys/bus/netdevsim/new_device')) return 'no netdevsim in this kernel (test/vm/kernels.test.ts runs it in Debian kernels under qemu)';
  if (!existsSync('/sys/kernel/tracing/events/devlink/devlink_trap_report')) return 'no devlink:devlink_trap_report event in this kernel';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping hardware-drop kernel tests: ${SKIP}\n`);

function netdmReason(): string | false {
  try {
    const c = NetdmClient.tryOpen();
    if (!c) return 'this kernel has no NET_DM (drop_monitor)';
    try {
      if (c.isMonitoring()) return 'NET_DM is in use by another program';
    } finally {
      c.close();
    }
  } catch (err) {
    return `NET_DM unavailable: ${(err as Error).message}`;
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ID = 31;
const DEV = `netdevsim/netdevsim${ID}`;
/** Drop traps switched to "trap", so that they report too (their default action is "drop"). */
const TRAPPED = ['source_mac_is_multicast', 'blackhole_route'];

interface CliTrap {
  name: string;
  type: string;
  stats?: { rx?: { packets?: number } };
}

function devlinkTraps(): CliTrap[] {
  const j = JSON.parse(execFileSync('devlink', ['-s', '-j', 'trap', 'show'], { encoding: 'utf8' })) as { trap: Record<string, CliTrap[]> };
  return j.trap[DEV] ?? [];
}

const devlinkPackets = () => new Map(devlinkTraps().map((t) => [t.name, t.stats?.rx?.packets ?? 0]));

interface HwDrop {
  type: string;
  count: number;
  origin: string;
  trap?: string;
  trap_type?: string | null;
  ifname?: string | null;
  devlink?: string | null;
}

/** Hardware drop objects printed so far (complete lines only). */
function hwDrops(out: string): HwDrop[] {
  const lines = out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => l.startsWith('{'));
  return lines.map((l) => JSON.parse(l) as HwDrop).filter((o) => o.type === 'drop' && o.origin === 'hardware');
}

function byKey(drops: readonly HwDrop[], key: (d: HwDrop) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const d of drops) m.set(key(d), (m.get(key(d)) ?? 0) + d.count);
  return new Map([...m].sort());
}

const sameMap = (a: Map<string, number>, b: Map<string, number>) => JSON.stringify([...a]) === JSON.stringify([...b]);

describe('hardware drops: tracefs, BPF, NET_DM and devlink agree', { skip: SKIP }, () => {
  let ports: string[] = [];
  const procs: DropmonProcess[] = [];

  before(async () => {
    writeFileSync('/sys/bus/netdevsim/new_device', `${ID} 2`);
    const dir = `/sys/bus/netdevsim/devices/netdevsim${ID}/net`;
    for (let i = 0; i < 50 && !(existsSync(dir) && readdirSync(dir).length === 2); i++) await sleep(100);
    ports = readdirSync(dir).sort();
    for (const t of TRAPPED) execFileSync('devlink', ['trap', 'set', DEV, 'trap', t, 'action', 'trap']);
  });

  after(async () => {
    for (const p of procs) if (p.child.exitCode === null) await p.stop('SIGKILL');
    if (existsSync(`/sys/bus/netdevsim/devices/netdevsim${ID}`)) writeFileSync('/sys/bus/netdevsim/del_device', String(ID));
  });

  test('one window, four counts, equal by trap name (NET_DM: all but control traps)', async (t) => {
    const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    const netdmSkip = netdmReason();
    if (netdmSkip) t.diagnostic(`NET_DM left out of the comparison: ${netdmSkip}`);
    const sources = netdmSkip ? ['tracefs', 'bpf'] : ['tracefs', 'bpf', 'netdm'];
    const base = devlinkPackets();
    for (const s of sources) procs.push(new DropmonProcess(['watch', '--source', s, '--hw', '--json', '-i', '0.5', '--no-counters']));
    await Promise.all(procs.map((p) => p.ready(120_000)));

    // the window: ports up until a trap has reported 20 packets, then down until devlink stops counting
    for (const p of ports) execFileSync('ip', ['link', 'set', p, 'up']);
    for (let i = 0; i < 300 && (devlinkPackets().get(TRAPPED[0]) ?? 0) - (base.get(TRAPPED[0]) ?? 0) < 20; i++) await sleep(100);
    for (const p of ports) execFileSync('ip', ['link', 'set', p, 'down']);
    let end = devlinkPackets();
    for (let i = 0; i < 20; i++) {
      await sleep(300); // three report periods: a pass that was running has ended
      const again = devlinkPackets();
      if (sameMap(again, end)) break;
      end = again;
    }
    const types = new Map(devlinkTraps().map((x) => [x.name, x.type]));
    const expected = new Map([...end].map(([k, v]) => [k, v - (base.get(k) ?? 0)] as [string, number]).filter(([, v]) => v > 0).sort());
    assert.ok((expected.get(TRAPPED[0]) ?? 0) >= 20, `devlink counted ${JSON.stringify([...expected])}`);
    assert.ok([...expected.keys()].some((k) => types.get(k) === 'control'), 'netdevsim reports control traps too');
    const want = (s: string) => (s === 'netdm' ? new Map([...expected].filter(([k]) => types.get(k) !== 'control')) : expected);
    const totals = (p: DropmonProcess) => byKey(hwDrops(p.stdout), (d) => d.trap ?? '?');

    // NET_DM sends its hardware summary about a second after the first report: wait for every source
    for (let i = 0; i < 150 && !sources.every((s, j) => sameMap(totals(procs[j]), want(s))); i++) await sleep(100);
    const fins = await Promise.all(procs.map((p) => p.stop('SIGINT', 20_000)));
    const out: Record<string, Map<string, number>> = {};
    sources.forEach((s, j) => {
      assert.equal(fins[j].code, 0, `${s}: ${fins[j].stderr}`);
      out[s] = byKey(hwDrops(fins[j].stdout), (d) => d.trap ?? '?');
    });
    t.diagnostic(`kernel ${kernel}: devlink ${JSON.stringify([...expected])}`);
    for (const s of sources) assert.deepEqual(out[s], want(s), `${s} counted what devlink counted (kernel ${kernel})`);

    // the sources that name the input port agree per port too, and say each trap's type
    const tr = hwDrops(fins[0].stdout), bp = hwDrops(fins[1].stdout);
    const perPort = (d: HwDrop) => `${d.trap} ${d.ifname}`;
    assert.deepEqual(byKey(tr, perPort), byKey(bp, perPort));
    assert.deepEqual(new Set(tr.map((d) => d.ifname)), new Set(ports));
    for (const d of [...tr, ...bp]) {
      assert.equal(d.trap_type, types.get(d.trap!), `${d.trap}: type`);
      assert.equal(d.devlink, DEV);
    }
  });

  test('--packets with --hw alone: a usage error that says what to add', async () => {
    const r = await new DropmonProcess(['watch', '--source', 'bpf', '--hw', '--packets', '-d', '1']).finished();
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--packets records software drops: add --sw to --hw/);
  });
});
