/**
 * dropmon must leave nothing behind: no instance, no enabled event, after
 * SIGINT, SIGTERM, SIGHUP and --duration; after kill -9 the next start
 * reclaims the dead process's instance.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { kernelTest, TRACEFS } from '../helpers/env.js';
import { DropmonProcess } from '../helpers/dropmon.js';
import { runDropgen } from '../helpers/dropgen.js';

function ourInstances(): string[] {
  return readdirSync(`${TRACEFS}/instances`).filter((n) => n.startsWith('dropmon-'));
}

function assertClean(pid: number): void {
  assert.equal(existsSync(`${TRACEFS}/instances/dropmon-${pid}`), false, `instance dropmon-${pid} removed`);
  assert.equal(readFileSync(`${TRACEFS}/events/skb/kfree_skb/enable`, 'latin1').trim(), '0', 'top-level event untouched');
}

describe('cleanup', kernelTest(), () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) {
    test(`${signal}: exits 0 and removes its instance`, async () => {
      const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--json']);
      await dm.ready();
      assert.ok(existsSync(`${TRACEFS}/instances/dropmon-${dm.pid}`), 'instance exists while running');
      assert.equal(readFileSync(`${TRACEFS}/instances/dropmon-${dm.pid}/events/skb/kfree_skb/enable`, 'latin1').trim(), '1');
      const fin = await dm.stop(signal);
      assert.equal(fin.code, 0, fin.stderr);
      assertClean(dm.pid);
    });
  }

  test('a reader that goes away (watch | head): exits 0 and removes its instance', async () => {
    const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--interval', '0.2']);
    await dm.ready();
    dm.child.stdout!.destroy(); // the pipe's reader is gone: the next line written gets EPIPE
    // Every interval writes a line once a drop is seen: make one (to a closed port on loopback).
    const fin = await Promise.race([
      dm.finished(),
      (async () => {
        for (let i = 0; i < 100 && dm.child.exitCode === null; i++) {
          runDropgen(['-m', 'noport', '-n', '5', '-a', '127.0.0.1', '-p', '9']);
          await new Promise((r) => setTimeout(r, 100));
        }
        return dm.finished();
      })(),
    ]);
    assert.equal(fin.code, 0, fin.stderr);
    assertClean(dm.pid);
  });

  test('--duration: exits 0 on its own and removes its instance', async () => {
    const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--duration', '0.5']);
    const fin = await dm.finished();
    assert.equal(fin.code, 0, fin.stderr);
    assertClean(dm.pid);
  });

  test('kill -9 leaves an instance; the next start reclaims it and cleans up itself', async () => {
    const victim = new DropmonProcess(['watch', '--source', 'tracefs']);
    await victim.ready();
    await victim.stop('SIGKILL');
    assert.ok(ourInstances().includes(`dropmon-${victim.pid}`), 'SIGKILL cannot be caught: the instance is left');
    const next = new DropmonProcess(['watch', '--source', 'tracefs', '--duration', '0.3']);
    const fin = await next.finished();
    assert.equal(fin.code, 0, fin.stderr);
    assert.match(fin.stderr, new RegExp(`^dropmon: cleaned up after dropmons that died: (.*, )?removed tracefs instance dropmon-${victim.pid}(,|$)`, 'm'));
    assertClean(victim.pid);
    assertClean(next.pid);
  });

  test('an instance of a live dropmon is not touched by another', async () => {
    const a = new DropmonProcess(['watch', '--source', 'tracefs']);
    await a.ready();
    const b = new DropmonProcess(['watch', '--source', 'tracefs', '--duration', '0.3']);
    const fin = await b.finished();
    assert.equal(fin.code, 0);
    assert.ok(existsSync(`${TRACEFS}/instances/dropmon-${a.pid}`), 'the running one keeps its instance');
    await a.stop('SIGINT');
    assertClean(a.pid);
  });

  test('in-kernel filters are accepted by the kernel, including 64-bit location ranges', async () => {
    const dm = new DropmonProcess(['watch', '--source', 'tracefs', '--reason', 'NO_SOCKET,NETFILTER_DROP', '--protocol', 'ipv4', '--location', '__udp4_lib_rcv']);
    await dm.ready();
    const filter = readFileSync(`${TRACEFS}/instances/dropmon-${dm.pid}/events/skb/kfree_skb/filter`, 'latin1');
    const fin = await dm.stop();
    assert.equal(fin.code, 0, fin.stderr);
    assert.match(filter, /reason == \d+ \|\| reason == \d+/);
    assert.match(filter, /protocol == 2048/);
    assert.match(filter, /location >= 0xffffffff[0-9a-f]{8}/);
  });
});

describe('errors say what to do', kernelTest(), () => {
  const run = async (args: string[]) => new DropmonProcess(args).finished();

  test('bad usage exits 2 with a hint', async () => {
    for (const args of [
      ['watch', '--interval', 'soon'],
      ['watch', '--bogus'],
      ['watch', '--count', '-1'],
      ['watch', '--reason', 'NO_SUCH_REASON'],
      ['watch', '--protocol', 'ipx9'],
      ['watch', '--location', 'no_such_function_here'],
      ['frobnicate'],
    ]) {
      const fin = await run(args);
      assert.equal(fin.code, 2, `${args.join(' ')}: ${fin.stderr}`);
      assert.match(fin.stderr, /^dropmon: /, args.join(' '));
    }
  });

  test('--help, --version and --list-reasons exit 0', async () => {
    const help = await run(['watch', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--max-points/);
    assert.equal((await run(['--version'])).code, 0);
    const reasons = await run(['watch', '--list-reasons']);
    assert.equal(reasons.code, 0);
    assert.match(reasons.stdout, /\tNO_SOCKET\n/);
  });
});
