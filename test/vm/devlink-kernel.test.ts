/**
 * The netlink counter readers in a kernel with netdevsim (Debian's 6.1, booted
 * by test/vm/kernels.test.ts): devlink trap counters of a
 * netdevsim device against what `devlink -s trap show` says, and the rtnetlink
 * and ethtool readers on this older kernel. Skips, saying why, where the
 * running kernel has no netdevsim (the dev host).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { CounterReading } from '../../src/core/counter.js';
import { readingKey } from '../../src/core/counter.js';
import { resolveNetns, withNetns } from '../../src/kernel/setns.js';
import { readNetlinkCounters } from '../../src/sources/counters/netlink-reader.js';
import { runDropgen } from '../helpers/dropgen.js';
import { TestNetns } from '../helpers/netns.js';

after(() => TestNetns.cleanupAll());

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/sys/bus/netdevsim/new_device')) return 'no netdevsim in this kernel (test/vm/kernels.test.ts runs it in Debian kernels under qemu)';
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping devlink kernel tests: ${SKIP}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ID = 11;
const DEV = `netdevsim/netdevsim${ID}`;
const SMAC = 'source_mac_is_multicast';
const DEBUGFS = `/sys/kernel/debug/netdevsim/netdevsim${ID}`;

interface CliTrap {
  name: string;
  type: string;
  action: string;
  group: string;
  stats?: { rx?: { packets?: number; bytes?: number; dropped?: number } };
}

/** `devlink -s -j trap show DEV`, the reference. */
function devlinkTraps(): CliTrap[] {
  // `trap show DEV` wants a trap name too: list them all, keep DEV's
  const j = JSON.parse(execFileSync('devlink', ['-s', '-j', 'trap', 'show'], { encoding: 'utf8' })) as { trap: Record<string, CliTrap[]> };
  return j.trap[DEV] ?? [];
}

function devlinkSet(trap: string, action: 'trap' | 'drop'): void {
  execFileSync('devlink', ['trap', 'set', DEV, 'trap', trap, 'action', action]);
}

function trapsOf(rs: readonly CounterReading[]): Map<string, CounterReading> {
  return new Map(rs.filter((r) => r.name.startsWith('trap:') && r.scope === DEV).map((r) => [r.name.slice(5), r]));
}

describe('devlink traps of a netdevsim device', { skip: SKIP }, () => {
  before(async () => {
    writeFileSync('/sys/bus/netdevsim/new_device', `${ID} 1`);
    const dir = `/sys/bus/netdevsim/devices/netdevsim${ID}/net`;
    for (let i = 0; i < 50 && !(existsSync(dir) && readdirSync(dir).length); i++) await sleep(100);
    // netdevsim reports packets only for the traps of running ports
    execFileSync('ip', ['link', 'set', readdirSync(dir)[0], 'up']);
  });

  after(() => {
    if (existsSync(`/sys/bus/netdevsim/devices/netdevsim${ID}`)) writeFileSync('/sys/bus/netdevsim/del_device', String(ID));
  });

  test('every drop and exception trap with its group, action and type; control traps left out', () => {
    const r = readNetlinkCounters();
    assert.deepEqual(r.errors, []);
    const mine = trapsOf(r.readings);
    const cli = devlinkTraps();
    assert.ok(cli.length > 5, JSON.stringify(cli));
    assert.deepEqual([...mine.keys()].sort(), cli.filter((t) => t.type !== 'control').map((t) => t.name).sort());
    for (const t of cli) {
      const x = mine.get(t.name);
      if (t.type === 'control') {
        assert.equal(x, undefined, `control trap ${t.name} counts no drops`);
        continue;
      }
      assert.ok(x);
      assert.equal(x.detail, `group ${t.group}, action ${t.action}, type ${t.type}`);
      assert.deepEqual([x.layer, x.source, x.gauge], ['nic', 'devlink', undefined]);
    }
    assert.equal(mine.get(SMAC)?.detail, 'group l2_drops, action drop, type drop');
    assert.equal(mine.get('ttl_value_is_too_small')?.detail, 'group l3_exceptions, action trap, type exception');
  });

  test('a drop trap set to "trap" counts the packets the device hands to the CPU, as devlink does', async () => {
    const cliPackets = () => devlinkTraps().find((t) => t.name === SMAC)?.stats?.rx?.packets ?? NaN;
    const v0 = trapsOf(readNetlinkCounters().readings).get(SMAC)!.value;
    const p0 = cliPackets();
    devlinkSet(SMAC, 'trap');
    await sleep(1200); // netdevsim traps one packet per port every 100 ms
    devlinkSet(SMAC, 'drop');
    await sleep(300); // a report already running finishes
    const v1 = trapsOf(readNetlinkCounters().readings).get(SMAC)!.value;
    const trapped = cliPackets() - p0;
    assert.ok(trapped >= 5, `devlink counted ${trapped} trapped packets`);
    // value = rx_packets + rx_dropped, and netdevsim's rx_dropped is a fake that
    // grows by one each time any trap's statistics are read: a little more
    assert.ok(v1 - v0 >= trapped && v1 - v0 <= trapped + 200, `trap value moved ${v1 - v0}, devlink rx_packets ${trapped}`);
  });

  test('policer drops, per policer', () => {
    const r = readNetlinkCounters({ ethtool: false, ethtoolDriver: false });
    const pol = r.readings.filter((x) => x.name === 'trap-policer:rx_dropped' && x.scope.startsWith(`${DEV} policer `));
    assert.deepEqual(pol.map((x) => x.scope).sort(), [1, 2, 3].map((i) => `${DEV} policer ${i}`));
  });

  test('devlink devices belong to a namespace: none seen from another one', () => {
    const ns = new TestNetns('dlns');
    try {
      const r = withNetns(resolveNetns(ns.name), () => readNetlinkCounters());
      assert.deepEqual(r.errors, []);
      assert.equal(r.readings.filter((x) => x.name.startsWith('trap')).length, 0);
      assert.deepEqual([...r.links.values()].map((l) => l.name), ['lo']);
    } finally {
      ns.delete();
    }
  });

  test('a failing driver counter loses the traps, never the other families', () => {
    if (!existsSync('/sys/kernel/debug/netdevsim')) execFileSync('mount', ['-t', 'debugfs', 'debugfs', '/sys/kernel/debug']);
    const knob = `${DEBUGFS}/fail_trap_drop_counter_get`;
    assert.ok(existsSync(knob), 'netdevsim debugfs knob');
    writeFileSync(knob, 'Y');
    try {
      const r = readNetlinkCounters();
      // 6.1 ends the dump early without an error (the first trap fails, so no trap
      // at all); kernels with the generic devlink dumpit (6.3+) report EINVAL
      assert.ok(r.errors.length <= 1, r.errors.join('\n'));
      if (r.errors.length) assert.match(r.errors[0], /^devlink traps: dumping devlink traps: EINVAL/);
      assert.ok(r.readings.some((x) => x.name === 'link:rx_packets' && x.scope === 'lo'));
      assert.equal(trapsOf(r.readings).size, 0);
    } finally {
      writeFileSync(knob, 'N');
    }
    assert.ok(trapsOf(readNetlinkCounters().readings).size > 0);
  });
});

describe('rtnetlink and ethtool readers on this kernel', { skip: SKIP }, () => {
  test('unknown-EtherType drops in link:rx_dropped; ethtool -S of a veth; no errors', () => {
    const ns = new TestNetns('nl61');
    try {
      ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
      ns.ip('link', 'set', 'va', 'up');
      ns.ip('link', 'set', 'vb', 'up');
      const target = resolveNetns(ns.name);
      const read = () => withNetns(target, () => readNetlinkCounters());
      const before = read();
      assert.deepEqual(before.errors, [], 'the ethtool requests suit this kernel too');
      runDropgen(['-m', 'ethproto', '-n', '40', '-i', 'va'], ns.name);
      const now = read();
      const key = (r: CounterReading) => readingKey(r);
      const get = (rs: readonly CounterReading[], k: string) => rs.find((r) => key(r) === k)?.value ?? NaN;
      assert.equal(get(now.readings, 'link:rx_dropped@vb') - get(before.readings, 'link:rx_dropped@vb'), 40);
      assert.equal(get(now.readings, 'link:rx_dropped@vb'), Number(ns.exec('cat', ['/sys/class/net/vb/statistics/rx_dropped']).trim()));
      const fields = now.readings.filter((r) => r.scope === 'vb' && r.name.startsWith('link:'));
      process.stdout.write(`kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}: ${fields.length} rtnl_link_stats64 fields\n`);
      assert.ok(fields.length >= 23);
      assert.ok(now.readings.some((r) => key(r) === 'ethtool-S:peer_ifindex@va'));
      assert.ok(now.readings.some((r) => key(r) === 'qdisc:drops@va noqueue 0:0 parent root'));
    } finally {
      ns.delete();
    }
  });
});
