/**
 * Nothing left behind by a killed dropmon, whatever runs next: kill -9 of a
 * `watch` of each source, then a start of each other source, leaves no
 * tracefs instance of the dead one, no NET_DM monitoring it started, no BPF
 * program of it; the service reclaims at its start too. And what is not a
 * dead dropmon's is never touched: a live dropmon's instance and NET_DM
 * monitoring, NET_DM that another program started, an instance of another
 * PID namespace.
 *
 * The NET_DM cases need a kernel with NET_DM: they skip on one without and
 * run in the test VM (test/vm/guest-plan.ts, entry "reclaim").
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason, netdmPresent, TRACEFS } from '../helpers/env.js';
import { CLI, DropmonProcess } from '../helpers/dropmon.js';
import { patience } from '../helpers/patience.js';
import { Served } from '../service/serve-helper.js';
import { bpfUnavailableReason } from '../../src/sources/bpf/availability.js';
import { PROGRAM_NAME } from '../../src/sources/bpf/source.js';
import { listPrograms } from '../../src/kernel/bpf/syscall.js';
import { processStart, selfIdentity, type ProcessIdentity } from '../../src/kernel/process-identity.js';
import { NETDM_OWNER_RECORD, NetdmClient } from '../../src/sources/netdm/client.js';
import { OwnerRecords, ownerRecords } from '../../src/sources/owner-records.js';
import { reclaimedLine, reclaimLeftovers } from '../../src/sources/reclaim.js';
import { instanceRecord } from '../../src/sources/tracefs/instance.js';

type SourceName = 'tracefs' | 'bpf' | 'netdm';
const SOURCES: readonly SourceName[] = ['tracefs', 'bpf', 'netdm'];

const KERNEL = kernelSkipReason();
const NETDM = KERNEL ?? (netdmPresent() ? undefined : 'this kernel has no NET_DM family (the test VM runs these: test/vm/guest-plan.ts)');
if (NETDM && !KERNEL) process.stderr.write(`# skipping NET_DM reclaim tests: ${NETDM}\n`);

function skipFor(...sources: SourceName[]): { skip: string | false } {
  for (const s of sources) {
    const why = s === 'netdm' ? NETDM : s === 'bpf' ? (KERNEL ?? bpfUnavailableReason()) : KERNEL;
    if (why) return { skip: `${s}: ${why}` };
  }
  return { skip: false };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const instances = () => readdirSync(`${TRACEFS}/instances`);
const topLevelEventOff = () => assert.equal(readFileSync(`${TRACEFS}/events/skb/kfree_skb/enable`, 'latin1').trim(), '0', 'top-level skb:kfree_skb untouched');

function netdmMonitoring(): boolean | undefined {
  const c = NetdmClient.open();
  try {
    return c.isMonitoring();
  } finally {
    c.close();
  }
}

/** Ids of the BPF programs (not links) process `pid` holds by file descriptor. */
function heldPrograms(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
    } catch {
      continue;
    }
    const m = /^prog_id:\s*(\d+)/m.exec(info);
    if (m && !info.includes('link_type')) ids.push(Number(m[1]));
  }
  return ids;
}

/** The programs of `ids` still loaded, after waiting for the kernel to free them (an RCU grace period). */
async function stillLoaded(ids: number[]): Promise<number[]> {
  let left = ids;
  for (let i = 0; i < 50 && left.length; i++) {
    await sleep(100);
    const live = new Set(listPrograms().map((p) => p.id));
    left = ids.filter((id) => live.has(id));
  }
  return left;
}

/** A running `dropmon watch` of `source`, and what it changed on the host, checked. */
async function watching(source: SourceName): Promise<{ dm: DropmonProcess; programs: number[] }> {
  const dm = new DropmonProcess(['watch', '--source', source, '--json']);
  await dm.ready();
  let programs: number[] = [];
  if (source === 'tracefs') {
    assert.equal(readFileSync(`${TRACEFS}/instances/dropmon-${dm.pid}/events/skb/kfree_skb/enable`, 'latin1').trim(), '1');
    assert.equal(ownerRecords.read(instanceRecord(`dropmon-${dm.pid}`))?.owner.pid, dm.pid, 'the instance has its owner recorded');
  } else if (source === 'bpf') {
    programs = heldPrograms(dm.pid);
    assert.ok(programs.length >= 1 && listPrograms().some((p) => programs.includes(p.id) && p.name === PROGRAM_NAME), 'the BPF program is loaded');
  } else {
    assert.equal(netdmMonitoring(), true, 'NET_DM monitors');
    assert.equal(ownerRecords.read(NETDM_OWNER_RECORD)?.owner.pid, dm.pid, 'NET_DM monitoring has its owner recorded');
  }
  return { dm, programs };
}

/** Nothing of the dead `source` watch remains; `stderr` (of the next start) said what was reclaimed. */
async function assertNothingLeft(source: SourceName, dead: number, programs: number[], stderr: string): Promise<void> {
  if (source === 'tracefs') {
    assert.match(stderr, new RegExp(`^dropmon: cleaned up after dropmons that died: (.*, )?removed tracefs instance dropmon-${dead}(,|$)`, 'm'));
    assert.ok(!instances().includes(`dropmon-${dead}`), 'no instance of the dead one');
    assert.equal(ownerRecords.read(instanceRecord(`dropmon-${dead}`)), undefined, 'its record is gone');
  } else if (source === 'bpf') {
    // Nothing to reclaim: the programs and links were held by file descriptor and went with the process.
    assert.deepEqual(await stillLoaded(programs), [], 'no BPF program of the dead one');
  } else {
    assert.match(stderr, new RegExp(`^dropmon: cleaned up after dropmons that died: (.*, )?stopped NET_DM monitoring \\(software drops\\) of pid ${dead}(,|$)`, 'm'));
    assert.equal(netdmMonitoring(), false, 'NET_DM no longer monitors');
    assert.equal(ownerRecords.read(NETDM_OWNER_RECORD), undefined, 'its record is gone');
  }
  topLevelEventOff();
}

describe('kill -9 of a watch, then a start of each other source: nothing left', () => {
  for (const victim of SOURCES) {
    for (const next of SOURCES) {
      if (next === victim) continue;
      test(`kill -9 of a ${victim} watch, then a ${next} watch`, skipFor(victim, next), async () => {
        const { dm, programs } = await watching(victim);
        await dm.stop('SIGKILL');
        const fin = await new DropmonProcess(['watch', '--source', next, '--duration', '0.3']).finished();
        assert.equal(fin.code, 0, fin.stderr);
        await assertNothingLeft(victim, dm.pid, programs, fin.stderr);
      });
    }
  }
});

describe('the service reclaims at its start, and is reclaimed after', () => {
  test('kill -9 of a tracefs watch, then serve (bpf); kill -9 of serve (tracefs), then a bpf watch', skipFor('tracefs', 'bpf'), async () => {
    const { dm } = await watching('tracefs');
    await dm.stop('SIGKILL');
    const served = await new Served(['--source', 'bpf', '--no-counters'], { record: false }).ready(patience(30_000));
    try {
      await assertNothingLeft('tracefs', dm.pid, [], served.proc.stderr);
    } finally {
      await served.proc.stop('SIGTERM');
    }
    const serving = await new Served(['--source', 'tracefs', '--no-counters'], { record: false }).ready(patience(30_000));
    const pid = serving.proc.pid;
    assert.ok(instances().includes(`dropmon-${pid}`));
    await serving.proc.stop('SIGKILL');
    rmSync(serving.dir, { recursive: true, force: true });
    const fin = await new DropmonProcess(['watch', '--source', 'bpf', '--duration', '0.3']).finished();
    assert.equal(fin.code, 0, fin.stderr);
    await assertNothingLeft('tracefs', pid, [], fin.stderr);
  });
});

describe('what is not a dead dropmon\'s is left alone', () => {
  test('NET_DM monitoring another program started (no owner record) is left alone', skipFor('netdm', 'tracefs'), async () => {
    assert.equal(ownerRecords.read(NETDM_OWNER_RECORD), undefined);
    const other = NetdmClient.open();
    try {
      other.configure({ mode: 'summary' });
      other.start({ sw: true, hw: false });
      assert.equal(netdmMonitoring(), true);
      for (const next of ['tracefs', 'bpf'] as const) {
        if (skipFor(next).skip) continue;
        const fin = await new DropmonProcess(['watch', '--source', next, '--duration', '0.3']).finished();
        assert.equal(fin.code, 0, fin.stderr);
        assert.doesNotMatch(fin.stderr, /NET_DM/);
        assert.equal(netdmMonitoring(), true, `still monitoring after a ${next} watch`);
      }
    } finally {
      other.stop({ sw: true, hw: true });
      other.close();
    }
  });

  test('a live dropmon\'s NET_DM monitoring is left alone; its clean stop removes its record', skipFor('netdm', 'tracefs'), async () => {
    const { dm } = await watching('netdm');
    const fin = await new DropmonProcess(['watch', '--source', 'tracefs', '--duration', '0.3']).finished();
    assert.equal(fin.code, 0, fin.stderr);
    assert.doesNotMatch(fin.stderr, /cleaned up/);
    assert.equal(netdmMonitoring(), true);
    const end = await dm.stop('SIGINT');
    assert.equal(end.code, 0, end.stderr);
    assert.equal(netdmMonitoring(), false);
    assert.equal(ownerRecords.read(NETDM_OWNER_RECORD), undefined);
  });

  test('an instance of a live dropmon is left alone; its clean stop removes its record', skipFor('tracefs'), async () => {
    const { dm } = await watching('tracefs');
    const fin = await new DropmonProcess(['watch', '--source', 'tracefs', '--duration', '0.3']).finished();
    assert.equal(fin.code, 0, fin.stderr);
    assert.ok(instances().includes(`dropmon-${dm.pid}`));
    const end = await dm.stop('SIGINT');
    assert.equal(end.code, 0, end.stderr);
    assert.ok(!instances().includes(`dropmon-${dm.pid}`));
    assert.equal(ownerRecords.read(instanceRecord(`dropmon-${dm.pid}`)), undefined);
  });
});

describe('whose instance is it: the rule', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-reclaim-'));
  const records = new OwnerRecords(join(dir, 'run'));
  const made: string[] = [];
  const children: ReturnType<typeof spawn>[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const name of made) if (existsSync(`${TRACEFS}/instances/${name}`)) rmdirSync(`${TRACEFS}/instances/${name}`);
    rmSync(dir, { recursive: true, force: true });
  });

  /** An instance named `name`, made by hand (as a dropmon would), and optionally its owner record. */
  function instance(name: string, owner?: ProcessIdentity): string {
    mkdirSync(`${TRACEFS}/instances/${name}`);
    made.push(name);
    if (owner) {
      mkdirSync(join(records.dir, 'tracefs'), { recursive: true, mode: 0o700 });
      writeFileSync(join(records.dir, instanceRecord(name)), JSON.stringify({ ...owner, detail: {} }), { mode: 0o600 });
    }
    return name;
  }

  /** A live process (node, idle) whose command line starts with `argv0`; its identity. */
  async function live(argv0?: string): Promise<ProcessIdentity> {
    const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore', ...(argv0 ? { argv0 } : {}) });
    children.push(c);
    await new Promise((r) => c.once('spawn', r));
    if (argv0) assert.ok(readFileSync(`/proc/${c.pid}/cmdline`, 'latin1').startsWith(`${argv0}\0`));
    return { ...selfIdentity()!, pid: c.pid!, start: processStart(c.pid!)! };
  }

  function deadPid(): number {
    const r = spawnSync('true');
    return r.pid;
  }

  const reclaim = () => reclaimLeftovers({ records, netdm: false });

  test('no record: a pid that is gone, or reused by another program, is dead; a live dropmon keeps its instance', skipFor('tracefs'), async () => {
    const gone = instance(`dropmon-${deadPid()}`);
    const reused = instance(`dropmon-${(await live()).pid}`);
    const dropmon = instance(`dropmon-${(await live('dropmon')).pid}`);
    const done = reclaim();
    assert.ok(done.includes(`removed tracefs instance ${gone}`), done.join());
    assert.ok(done.includes(`removed tracefs instance ${reused}`), done.join());
    assert.ok(instances().includes(dropmon), 'a live dropmon keeps it');
    assert.ok(!instances().includes(gone) && !instances().includes(reused));
  });

  test('a record: alive while its process (same start time) runs, whatever the process looks like; dead once the pid is reused', skipFor('tracefs'), async () => {
    const owner = await live();
    const kept = instance(`dropmon-${owner.pid}`, owner);
    const lookalike = await live('dropmon-lookalike');
    const reused = instance(`dropmon-${lookalike.pid}`, { ...lookalike, start: lookalike.start - 1 });
    const done = reclaim();
    assert.ok(instances().includes(kept), `the recorded owner runs: ${done.join()}`);
    assert.ok(done.includes(`removed tracefs instance ${reused}`), done.join());
    assert.equal(records.read(instanceRecord(reused)), undefined, 'its record goes with it');
    process.kill(owner.pid, 'SIGKILL');
    await sleep(200);
    assert.ok(reclaim().includes(`removed tracefs instance ${kept}`));
  });

  test('an instance of another PID namespace is never removed', skipFor('tracefs'), async () => {
    const me = selfIdentity()!;
    const foreign = instance(`dropmon-${deadPid()}-pidns${me.pidns + 1}`);
    const liveForeign = instance(`dropmon-${(await live()).pid}-pidns${me.pidns + 1}`);
    reclaim();
    assert.ok(instances().includes(foreign) && instances().includes(liveForeign), 'its pids mean nothing here');
    // From a new PID namespace: the host's instance (no suffix) of a pid that is dead here is not touched either.
    const host = instance(`dropmon-${deadPid()}`);
    const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, CLI, 'watch', '--source', 'tracefs', '--duration', '0.3'], { encoding: 'utf8' });
    if (r.status === null || /unshare: /.test(r.stderr)) return; // no unshare here
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /watching skb:kfree_skb via \S+\/instances\/dropmon-1-pidns\d+;/, 'a dropmon there names its instance with its namespace');
    assert.doesNotMatch(r.stderr, /cleaned up/);
    assert.ok(instances().includes(host) && instances().includes(foreign));
    assert.ok(!instances().some((n) => /^dropmon-1-pidns/.test(n)), 'and removes its own on exit');
  });

  test('one line says what was reclaimed, none when nothing was', () => {
    assert.equal(reclaimedLine([]), undefined);
    assert.equal(reclaimedLine(['removed tracefs instance dropmon-1', 'stopped NET_DM monitoring (software drops) of pid 2']), 'cleaned up after dropmons that died: removed tracefs instance dropmon-1, stopped NET_DM monitoring (software drops) of pid 2');
  });
});
