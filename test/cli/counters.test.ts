/**
 * `dropmon counters` and the counters beside the drops in `dropmon watch`,
 * on real drops caused in a test namespace.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { kernelSkipReason } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { runDropgen } from '../helpers/dropgen.js';
import { CLI, DropmonProcess } from '../helpers/dropmon.js';

const SKIP = kernelSkipReason();

function dropmon(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Wait until a UDP socket is bound to `port` inside the namespace (the receiver has started). */
function waitForUdpPort(ns: TestNetns, port: number): void {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (let i = 0; i < 100; i++) {
    if (ns.exec('cat', ['/proc/net/udp']).includes(hex)) return;
    execFileSync('sleep', ['0.1']);
  }
  throw new Error(`nothing bound UDP port ${port} in ${ns.name}`);
}

interface JsonCounter {
  name: string;
  scope: string;
  layer: string;
  value: number;
  class: string;
  meaning: string;
  detail?: string;
}

describe('dropmon counters', { skip: SKIP }, () => {
  after(() => TestNetns.cleanupAll());

  test('usage errors exit 2 with a message', () => {
    const r = dropmon(['counters', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bogus/);
    const r2 = dropmon(['counters', '--interval', '1']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /--watch/);
    const r3 = dropmon(['counters', '--netns', 'no-such-namespace-here']);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /no namespace named/);
  });

  test('a namespace with drops: non-zero drop counters, grouped by layer, with meanings and the socket owner', () => {
    const ns = new TestNetns('ctr');
    runDropgen(['-m', 'noport', '-n', '120'], ns.name);
    // A receiver that never reads stays alive while counters are read.
    const keep = execFileSync('sh', ['-c', `ip netns exec "$0" python3 -c 'import socket,time
s=socket.socket(2,2); s.setsockopt(1,8,1); s.bind(("127.0.0.1",47011)); time.sleep(20)' >/dev/null 2>&1 & echo $!`, ns.name], { encoding: 'utf8' });
    try {
      waitForUdpPort(ns, 47011);
      runDropgen(['-m', 'udp', '-n', '500', '-p', '47011', '-l', '300'], ns.name);
      const r = dropmon(['counters', '--netns', ns.name, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { counters: JsonCounter[]; netns: string };
      assert.equal(out.netns, ns.name);
      const get = (name: string) => out.counters.filter((c) => c.name === name);
      assert.equal(get('Udp:NoPorts')[0]?.value, 120);
      assert.equal(get('Udp:NoPorts')[0]?.layer, 'udp');
      assert.ok(get('Udp:NoPorts')[0]?.meaning.length > 10, 'each counter says what it means');
      const rcv = get('Udp:RcvbufErrors')[0];
      assert.ok(rcv && rcv.value > 0 && rcv.class === 'drop');
      const sock = get('socket:drops')[0];
      assert.ok(sock, `socket drops listed: ${r.stdout}`);
      assert.equal(sock.value, rcv.value, 'the socket counted every datagram Udp:RcvbufErrors counted');
      assert.match(sock.scope, /127\.0\.0\.1:47011/);
      assert.match(sock.detail ?? '', /\(python3\)/);
      assert.ok(out.counters.every((c) => c.value !== 0), 'only non-zero counters by default');
      assert.ok(!out.counters.some((c) => c.name === 'Udp:InDatagrams'), 'traffic counters only with --all');

      const all = JSON.parse(dropmon(['counters', '--netns', ns.name, '--json', '--all']).stdout) as { counters: JsonCounter[] };
      assert.ok(all.counters.length > out.counters.length);
      assert.ok(all.counters.some((c) => c.name === 'Udp:InDatagrams'));

      const text = dropmon(['counters', '--netns', ns.name]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /^UDP$/m);
      assert.match(text.stdout, /Udp:NoPorts\s+120\s+\S/);
    } finally {
      try {
        process.kill(Number(keep.trim()), 'SIGKILL');
      } catch {
        /* gone */
      }
      ns.delete();
    }
  });

  test('--watch: Ctrl-C stops it with exit 0', async () => {
    const dm = new DropmonProcess(['counters', '--watch', '-i', '0.2']);
    await dm.ready(30_000, 'watching counters');
    const done = await dm.stop('SIGINT');
    assert.equal(done.code, 0, done.stderr);
  });

  test('--watch prints what moved with rates, and stops at --duration', async () => {
    const ns = new TestNetns('ctw');
    try {
      const dm = new DropmonProcess(['counters', '--watch', '--netns', ns.name, '--json', '-i', '0.5', '-d', '2.2']);
      await dm.ready(30_000, 'watching counters');
      await new Promise((r) => setTimeout(r, 600));
      runDropgen(['-m', 'noport', '-n', '77'], ns.name);
      const done = await dm.finished();
      assert.equal(done.code, 0, done.stderr);
      const lines = done.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; moved: Array<{ name: string; delta: number; rate: number }> });
      assert.ok(lines.length >= 3, `several intervals: ${done.stdout}`);
      const moved = lines.flatMap((l) => l.moved).filter((m) => m.name === 'Udp:NoPorts');
      assert.equal(moved.reduce((n, m) => n + m.delta, 0), 77);
      assert.ok(moved.every((m) => m.rate > 0));
    } finally {
      ns.delete();
    }
  });
});

describe('dropmon watch: counters beside the drops', { skip: SKIP }, () => {
  after(() => TestNetns.cleanupAll());

  test('counter deltas are joined with the drop points that explain them; blind spots named', async () => {
    const ns = new TestNetns('wcor');
    const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--counters-netns', ns.name, '-i', '1', '-d', '120']);
    try {
      // However slow the machine, the watch lasts until the drops are made; Ctrl-C ends it with a last interval.
      await dm.ready(30_000);
      runDropgen(['-m', 'noport', '-n', '150'], ns.name);
      runDropgen(['-m', 'listen', '-n', '40', '-p', '47012'], ns.name);
      const done = await dm.stop('SIGINT', 30_000);
      assert.equal(done.code, 0, done.stderr);
      // tracefs sees every namespace: NO_SOCKET drops elsewhere on the host may join the 150 made here.
      const joined = /^= .*Udp:NoPorts \+(\d+).*\s<->\s+(\d+) x NO_SOCKET at __udp4_lib_rcv/m.exec(done.stdout);
      assert.ok(joined && Number(joined[1]) === 150 && Number(joined[2]) >= 150, `Udp:NoPorts +150 joined with the NO_SOCKET drops: ${done.stdout}`);
      assert.match(done.stdout, /^! blind spot: TcpExt:Listen(Overflows|Drops) \+\d+/m);
    } finally {
      // A failed step leaves no watch running into the next test.
      if (dm.child.exitCode === null) dm.child.kill('SIGKILL');
      ns.delete();
    }
  });

  test('JSON: one "counters" object per interval; the noise policy sets benign drops apart', async () => {
    const ns = new TestNetns('wjs');
    const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--counters-netns', ns.name, '--json', '-i', '1', '-d', '120']);
    try {
      await dm.ready(30_000);
      // rcvbuf mode closes its socket with datagrams queued: NOT_SPECIFIED at udp_destruct_common, usually benign.
      runDropgen(['-m', 'rcvbuf', '-n', '400'], ns.name);
      // The socket's queue is freed as dropgen exits: wait for the interval that saw it, however slow the machine.
      await dm.printed(/udp_destruct_common/);
      const done = await dm.stop('SIGINT', 30_000);
      const objs = done.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const counters = objs.filter((o) => o.type === 'counters') as Array<{ correlated: Array<{ reasons: string[]; counters: Array<{ name: string }> }>; benign: Array<{ reason: string; function: string }> }>;
      assert.ok(counters.length >= 1, done.stdout);
      const g = counters.flatMap((c) => c.correlated).find((x) => x.reasons.includes('SOCKET_RCVBUFF'));
      assert.ok(g && g.counters.some((c) => c.name === 'Udp:RcvbufErrors'), JSON.stringify(counters));
      const benign = counters.flatMap((c) => c.benign);
      assert.ok(benign.some((b) => b.function === 'udp_destruct_common'), `benign drops listed: ${JSON.stringify(benign)}`);
      // In JSON the benign points stay in the drop lines (scripts see everything).
      assert.ok(objs.some((o) => o.type === 'drop' && o.function === 'udp_destruct_common'));
    } finally {
      // A failed step leaves no watch running into the next test.
      if (dm.child.exitCode === null) dm.child.kill('SIGKILL');
      ns.delete();
    }
  });

  test('text: benign drops on one line by default, hidden with --quiet-benign, flat with --all', async () => {
    const run = async (flag: string[]) => {
      const ns = new TestNetns('wnz');
      try {
        const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--no-counters', '-i', '1', '-d', '2.5', '-l', 'udp_destruct_common', ...flag]);
        await dm.ready(30_000);
        runDropgen(['-m', 'rcvbuf', '-n', '300'], ns.name);
        return (await dm.finished()).stdout;
      } finally {
        ns.delete();
      }
    };
    assert.match(await run([]), /^~ usually benign: \d+ drops \(\d+ NOT_SPECIFIED at udp_destruct_common\)/m);
    const quiet = await run(['--quiet-benign']);
    assert.doesNotMatch(quiet, /udp_destruct_common/);
    assert.match(await run(['--all']), /^\d+ drops at udp_destruct_common\+0x[0-9a-f]+ .*NOT_SPECIFIED/m);
  });
});
