/**
 * NET_DM against a real kernel that has it (Debian's, booted by
 * test/vm/kernels.test.ts runs it there). Skips, saying why, where the
 * running kernel has no NET_DM family (this is the case on the dev host).
 * dropmon and the reference C dropwatch must report the same counts and
 * locations for the same traffic.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetdmClient } from '../../../src/sources/netdm/client.js';
import { runDropgen, PROJECT_ROOT } from '../../helpers/dropgen.js';
import { DropmonProcess, parseJsonLines } from '../../helpers/dropmon.js';
import { TestNetns } from '../../helpers/netns.js';

after(() => TestNetns.cleanupAll());

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    const c = NetdmClient.tryOpen();
    if (!c) return 'this kernel has no NET_DM family (test/vm/kernels.test.ts runs it in Debian kernels under qemu)';
    c.close();
  } catch (err) {
    return `netlink unavailable: ${(err as Error).message}`;
  }
  return false;
}
const SKIP = skipReason();
if (SKIP) process.stderr.write(`# skipping NET_DM kernel tests: ${SKIP}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function monitoring(): boolean | undefined {
  const c = NetdmClient.open();
  try {
    return c.isMonitoring();
  } finally {
    c.close();
  }
}

/** Run dropwatch -l kas with the given setup commands, cause drops, stop it; its output. */
async function dropwatch(setup: string[], cause: () => void, beforeStop?: () => void): Promise<string> {
  const child = spawn('dropwatch', ['-l', 'kas'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise((r) => child.on('close', r));
  try {
    // end stdin: after Ctrl-C dropwatch returns to its prompt and exits at EOF
    child.stdin.end([...setup, 'start', ''].join('\n'));
    // dropwatch's stdout is a pipe, so block-buffered: ask the kernel whether it started
    for (let i = 0; i < 100 && monitoring() !== true; i++) await sleep(100);
    assert.equal(monitoring(), true, `dropwatch started monitoring: ${out}`);
    cause();
    await sleep(2500); // summary alerts come ~1 s after the first drop
    if (beforeStop) {
      beforeStop();
      await sleep(2000);
    }
  } finally {
    child.kill('SIGINT');
    await closed;
  }
  assert.match(out, /Kernel monitoring activated/, out);
  return out;
}

/** dropwatch summary lines by address: "3 drops at f+1f3 (0xffff...) [software]". */
function dropwatchSummary(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const [, n, addr] of out.matchAll(/^(\d+) drops at \S+ \((0x[0-9a-f]+)\) \[software\]/gm)) m.set(addr, (m.get(addr) ?? 0) + Number(n));
  return m;
}

async function watch(args: string[], cause: () => void, settleMs = 2500) {
  const dm = new DropmonProcess(['watch', '--source', 'netdm', '--json', ...args]);
  await dm.ready(30_000);
  cause();
  await sleep(settleMs);
  const fin = await dm.stop('SIGINT', 20_000);
  assert.equal(fin.code, 0, fin.stderr);
  assert.equal(monitoring(), false, 'dropmon stopped NET_DM on exit');
  return { ...parseJsonLines(fin.stdout), stdout: fin.stdout, stderr: fin.stderr };
}

const traffic = () => {
  runDropgen(['-m', 'noport', '-n', '300']);
  runDropgen(['-m', 'ethproto', '-n', '200']);
};

describe('NET_DM in a real kernel', { skip: SKIP }, () => {
  test('summary mode: same counts and locations as dropwatch -l kas', async () => {
    const dm = await watch([], traffic);
    const mine = new Map<string, number>();
    for (const d of dm.drops) mine.set(d.location, (mine.get(d.location) ?? 0) + d.count);
    const udp = dm.drops.find((d) => d.function === '__udp4_lib_rcv');
    const eth = dm.drops.find((d) => d.function?.startsWith('__netif_receive_skb_core'));
    assert.ok(udp && eth, dm.stdout);
    assert.equal(mine.get(udp.location), 300);
    assert.equal(mine.get(eth.location), 200);
    const theirs = dropwatchSummary(await dropwatch([], traffic));
    assert.equal(theirs.get(udp.location), 300, 'dropwatch: same location, same count');
    assert.equal(theirs.get(eth.location), 200);
  });

  test('packet mode: reason, interface, headers; same locations and counts as dropwatch', async () => {
    const dm = await watch(['--mode', 'packet'], () => runDropgen(['-m', 'noport', '-n', '5', '-p', '9']), 1500);
    const pk = dm.stdout.split('\n').filter((l) => l.includes('"type":"packet"')).map((l) => JSON.parse(l));
    const udp = pk.filter((p) => p.reason === 'NO_SOCKET' && p.headers?.l4 === 'udp' && p.headers.dport === 9);
    assert.equal(udp.length, 5, dm.stdout);
    assert.equal(udp[0].ifindex, 1);
    assert.equal(udp[0].orig_len, 58);
    assert.match(udp[0].symbol, /^__udp4_lib_rcv\+0x/);
    const out = await dropwatch(['set alertmode packet'], () => runDropgen(['-m', 'noport', '-n', '5', '-p', '9']));
    const blocks = [...out.matchAll(/drop at: (\S+) \((0x[0-9a-f]+)\)/g)].filter(([, sym]) => sym.startsWith('__udp4_lib_rcv'));
    assert.equal(blocks.length, 5, out);
    assert.equal(blocks[0][2], udp[0].location, 'dropwatch saw the same location');
  });

  test('packet mode pcap: a pcapng file with one frame per drop (tshark checks it on the host)', async () => {
    const dir = join(PROJECT_ROOT, 'dist', 'vm-artifacts');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'netdm-drops.pcapng');
    await watch(['--mode', 'packet', '--pcap', file], () => runDropgen(['-m', 'noport', '-n', '4', '-p', '9']), 1500);
    const b = readFileSync(file);
    assert.equal(b.readUInt32LE(0), 0x0a0d0d0a, 'section header block');
    let off = 0, packets = 0;
    while (off + 12 <= b.length) {
      if (b.readUInt32LE(off) === 6) packets++;
      off += b.readUInt32LE(off + 4);
    }
    assert.ok(packets >= 4, `${packets} packets`);
  });

  test('monitoring started by another program is left alone, unless --force', async () => {
    const child = spawn('dropwatch', ['-l', 'kas'], { stdio: ['pipe', 'ignore', 'ignore'] });
    after(() => child.kill('SIGKILL'));
    child.stdin.end('start\n');
    for (let i = 0; i < 50 && monitoring() !== true; i++) await sleep(100);
    assert.equal(monitoring(), true);
    const refused = await new DropmonProcess(['watch', '--source', 'netdm', '-d', '1']).finished();
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /already running.*\n.*--force/);
    assert.equal(monitoring(), true, 'still running for the other program');
    const forced = await new DropmonProcess(['watch', '--source', 'netdm', '--force', '-d', '1']).finished();
    assert.equal(forced.code, 0, forced.stderr);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    execFileSync(process.execPath, [join(PROJECT_ROOT, 'dist/src/cli/main.js'), 'netdm', 'stop']);
    assert.equal(monitoring(), false);
  });

  test('SIGTERM and --count stop NET_DM too; netdm status and stop', async () => {
    const dm = new DropmonProcess(['watch', '--source', 'netdm']);
    await dm.ready(30_000);
    assert.equal(monitoring(), true);
    assert.equal((await dm.stop('SIGTERM', 20_000)).code, 0);
    assert.equal(monitoring(), false);
    const cli = (...a: string[]) => execFileSync(process.execPath, [join(PROJECT_ROOT, 'dist/src/cli/main.js'), ...a], { encoding: 'utf8' });
    const st = JSON.parse(cli('netdm', 'status', '--json'));
    assert.deepEqual({ mode: st.mode, monitoring: st.monitoring }, { mode: 'summary', monitoring: false });
    assert.deepEqual(JSON.parse(cli('netdm', 'config', '--mode', 'packet', '--trunc', '96', '--queue', '500', '--json')), { mode: 'packet', trunc_len: 96, queue_len: 500 });
    cli('netdm', 'config', '--mode', 'summary', '--trunc', '0', '--queue', '1000');
    cli('netdm', 'stop');
    cli('netdm', 'stop'); // stopping what is stopped is fine
    assert.match(cli('netdm', 'stats'), /software tail drops: \d+/);
  });

  test('from another network namespace: a message that says why', async () => {
    const ns = new TestNetns('netdm');
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn('ip', ['netns', 'exec', ns.name, process.execPath, join(PROJECT_ROOT, 'dist/src/cli/main.js'), 'watch', '--source', 'netdm', '-d', '1']);
      let err = '';
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('close', (code) => resolve({ code, err }));
    });
    ns.delete();
    assert.equal(r.code, 1);
    assert.match(r.err, /initial network namespace/);
  });
});

describe('hardware drops (netdevsim devlink traps)', { skip: SKIP || (!existsSync('/sys/bus/netdevsim/new_device') && 'no netdevsim in this kernel') }, () => {
  const ID = 7;
  const DEV = `netdevsim/netdevsim${ID}`;
  const TRAP = 'source_mac_is_multicast';
  const devlinkTrap = (action: 'trap' | 'drop') => execFileSync('devlink', ['trap', 'set', DEV, 'trap', TRAP, 'action', action]);
  let netdev = '';

  after(() => {
    if (existsSync(`/sys/bus/netdevsim/devices/netdevsim${ID}`)) writeFileSync('/sys/bus/netdevsim/del_device', String(ID));
  });

  test('set up a netdevsim device', async () => {
    writeFileSync('/sys/bus/netdevsim/new_device', `${ID} 1`);
    const dir = `/sys/bus/netdevsim/devices/netdevsim${ID}/net`;
    for (let i = 0; i < 50 && !(existsSync(dir) && readdirSync(dir).length); i++) await sleep(100);
    netdev = readdirSync(dir)[0];
    execFileSync('ip', ['link', 'set', netdev, 'up']);
    assert.match(execFileSync('devlink', ['trap', 'show'], { encoding: 'utf8' }), new RegExp(`name ${TRAP} type drop`));
  });

  test('summary mode: dropmon (listening) and dropwatch (controlling) count the same trap drops', async () => {
    const dm = new DropmonProcess(['watch', '--source', 'netdm', '--passive', '--json']);
    await dm.ready(30_000);
    // netdevsim reports one packet per trap with action "trap" every 100 ms
    const out = await dropwatch(['set hw true', 'set sw false'], () => devlinkTrap('trap'), () => devlinkTrap('drop'));
    const fin = await dm.stop('SIGINT', 20_000);
    assert.equal(fin.code, 0, fin.stderr);
    let theirs = 0;
    for (const [, n] of out.matchAll(new RegExp(`^(\\d+) drops at ${TRAP} \\[hardware\\]`, 'gm'))) theirs += Number(n);
    const mine = parseJsonLines(fin.stdout).drops.filter((d) => (d as { trap?: string }).trap === TRAP).reduce((n, d) => n + d.count, 0);
    assert.ok(theirs > 0, out);
    assert.equal(mine, theirs, 'same alerts, same counts');
  });

  test('packet mode: trap name and group, input port, origin hardware', async () => {
    const dm = new DropmonProcess(['watch', '--source', 'netdm', '--hw', '--mode', 'packet', '--json']);
    await dm.ready(30_000);
    devlinkTrap('trap');
    await sleep(1500);
    devlinkTrap('drop');
    await sleep(1000);
    const fin = await dm.stop('SIGINT', 20_000);
    assert.equal(fin.code, 0, fin.stderr);
    const pk = fin.stdout.split('\n').filter((l) => l.includes('"type":"packet"')).map((l) => JSON.parse(l));
    const t = pk.filter((p) => p.trap === TRAP);
    assert.ok(t.length >= 5, fin.stdout.slice(0, 2000));
    assert.deepEqual({ origin: t[0].origin, group: t[0].trap_group, ifname: t[0].ifname }, { origin: 'hardware', group: 'l2_drops', ifname: netdev });
    assert.equal(monitoring(), false);
  });
});
