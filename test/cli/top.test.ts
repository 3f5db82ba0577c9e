/**
 * `dropmon top` in a real pseudo-terminal, read as a terminal renders it:
 * real drops caused in a namespace of the test appear with their reason and
 * namespace; keys sort, filter and open the explanation; a resize redraws at
 * the new width; Ctrl-C and SIGTERM give the terminal back (the shell's
 * stty settings after top are checked); without a terminal top refuses;
 * and --remote reads a real `dropmon serve` with its token.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpfUnavailableReason } from '../../src/sources/bpf/availability.js';
import { kernelSkipReason } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { CLI, DropmonProcess } from '../helpers/dropmon.js';
import { PtyScreen, ptySkipReason } from '../helpers/pty.js';
import { Served } from '../service/serve-helper.js';

after(() => TestNetns.cleanupAll());

function skip(): { skip: string | false } {
  const why = kernelSkipReason() ?? ptySkipReason() ?? bpfUnavailableReason();
  return { skip: why ?? false };
}

/** A namespace whose lo drops UDP to port 9 (no socket: NO_SOCKET) and port 7777 (an nft rule: NETFILTER_DROP), paced. */
function dropper(label: string): { ns: TestNetns; start: () => ChildProcess } {
  const ns = new TestNetns(label);
  ns.exec('nft', ['-f', '-'], 'table inet dmtop {\n  chain c {\n    type filter hook input priority 0;\n    udp dport 7777 drop\n  }\n}\n');
  return {
    ns,
    // 40 NO_SOCKET and 10 NETFILTER_DROP a second for at most 40 s.
    start: () =>
      spawn('ip', ['netns', 'exec', ns.name, 'bash', '-c', 'for i in $(seq 800); do echo x >/dev/udp/127.0.0.1/9; echo x >/dev/udp/127.0.0.1/9; [ $((i % 4)) = 0 ] && echo y >/dev/udp/127.0.0.1/7777; sleep 0.05; done'], { stdio: 'ignore' }),
  };
}

/** top inside bash, which prints top's exit status and the terminal's settings after it. */
function topInShell(args: string[], env: Record<string, string | undefined> = {}, cols = 80, rows = 24): PtyScreen {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new PtyScreen('bash', ['--norc', '--noprofile', '-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} top ${quoted}; echo "EXIT=$?"; stty -a | tr '\\n' ' '; echo; sleep 0.3`], { cols, rows, env });
}

function rowIndex(lines: string[], re: RegExp): number {
  return lines.findIndex((l) => re.test(l));
}

test('top without a terminal refuses and points to watch', async () => {
  const p = new DropmonProcess(['top']);
  const fin = await p.finished();
  assert.equal(fin.code, 2);
  assert.match(fin.stderr, /needs a terminal/);
  assert.match(fin.stderr, /dropmon watch/);
});

test('local: drops in a namespace on screen; sort, filter, explanation, resize; Ctrl-C restores the terminal', skip(), async () => {
  const { ns, start } = dropper('top');
  const traffic = start();
  const top = topInShell(['--source', 'bpf', '--netns', ns.name, '--no-counters']);
  try {
    let s = await top.waitFor((t) => /NO_SOCKET +__udp4_lib_rcv/.test(t) && /NETFILTER_DROP/.test(t));
    assert.equal(top.bufferType(), 'alternate');
    let lines = s.split('\n');
    assert.match(lines[0], /dropmon top +host .* kernel .* source bpf/);
    const noSocket = lines.find((l) => /NO_SOCKET/.test(l))!;
    assert.ok(noSocket.includes(ns.name.slice(0, 6)), `namespace shown: ${noSocket}`);
    assert.match(noSocket, /\blo\b/);
    assert.match(lines[1], /netns with drops 1/);
    // Sorted by rate: NO_SOCKET (40/s) above NETFILTER_DROP (10/s); by name, the other way round.
    assert.ok(rowIndex(lines, /NO_SOCKET/) < rowIndex(lines, /NETFILTER_DROP/));
    top.key('s');
    top.key('s');
    s = await top.waitFor(/sort name/);
    lines = s.split('\n');
    assert.ok(rowIndex(lines, /NETFILTER_DROP/) < rowIndex(lines, /NO_SOCKET/), s);
    // Filter to the nft drops, then explain the row.
    top.key('/');
    top.key('netfilter');
    await top.waitFor(/\/ filter: netfilter/);
    top.key('\r');
    s = await top.waitFor((t) => /filter netfilter/.test(t) && !/NO_SOCKET/.test(t) && /NETFILTER_DROP/.test(t));
    top.key('\r');
    s = await top.waitFor(/explanation and evidence/);
    assert.match(s, /Reason NETFILTER_DROP/);
    assert.match(s, /Evidence|Check:|Fix:/);
    top.key('\x1b');
    await top.waitFor(/q quit +\? help/);
    // Resize: redrawn at the new width (the column header ends at the last column).
    top.resize(100, 30);
    s = await top.waitFor((t) => t.split('\n').some((l) => /^ REASON .*TOTAL$/.test(l) && l.length === 100));
    top.resize(80, 24);
    await top.waitFor((t) => t.split('\n').some((l) => /^ REASON .*TOTAL$/.test(l) && l.length === 80));
    top.key('\x03');
    const out = await top.end();
    assert.equal(out.exitCode, 0);
    assert.equal(top.bufferType(), 'normal', 'the alternate screen was left');
    assert.match(top.raw, /EXIT=0/);
    const stty = /EXIT=0[\s\S]*/.exec(top.raw)![0];
    assert.match(stty, /(^|\s)icanon(\s|$)/, 'canonical mode back');
    assert.match(stty, /(^|\s)echo(\s|$)/, 'echo back');
    assert.ok(top.raw.lastIndexOf('\x1b[?25h') > top.raw.lastIndexOf('\x1b[?25l'), 'cursor shown again');
  } finally {
    traffic.kill();
    top.proc.kill('SIGKILL');
    ns.delete();
  }
});

test('SIGTERM restores the terminal too; NO_COLOR leaves colours out', skip(), async () => {
  const top = topInShell(['--source', 'bpf', '--no-counters', '-i', '0.5'], { NO_COLOR: '1' });
  try {
    await top.waitFor(/drops\/s/);
    await new Promise((r) => setTimeout(r, 300));
    // The child of bash running node: find it by its parent.
    const pid = Number(execFileSync('pgrep', ['-P', String(top.proc.pid), '-f', 'main.js top'], { encoding: 'utf8' }).trim().split('\n')[0]);
    process.kill(pid, 'SIGTERM');
    const out = await top.end();
    assert.equal(out.exitCode, 0);
    assert.match(top.raw, /EXIT=0/);
    assert.match(/EXIT=0[\s\S]*/.exec(top.raw)![0], /(^|\s)icanon(\s|$)/);
    assert.equal(top.bufferType(), 'normal');
    assert.ok(!new RegExp(String.fromCharCode(27) + '\\[[0-9;]*;3[1-7]m').test(top.raw), 'no colour codes with NO_COLOR');
  } finally {
    top.proc.kill('SIGKILL');
  }
});

test('remote: top --remote reads a dropmon serve with its token; without the token it says so', skip(), async () => {
  const token = 'top-test-token-0123456789';
  const { ns, start } = dropper('remote');
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-top-token-'));
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  const served = await new Served(['--source', 'bpf', '-r', 'NO_SOCKET', '--token-file', join(dir, 'token')], { record: false, token }).ready();
  const traffic = start();
  const url = `http://127.0.0.1:${served.port}`;
  let top: PtyScreen | undefined;
  try {
    const refused = topInShell(['--remote', url], { DROPMON_TOKEN: '' });
    await refused.end();
    // Root also tries the token a local service generated (/var/lib/dropmon/token), when there is one: not this service's.
    assert.match(refused.raw, /(wants a token|refused the token)[\s\S]*EXIT=1/);
    top = topInShell(['--remote', url, '--token-file', join(dir, 'token')]);
    const s = await top.waitFor((t) => t.split('\n').some((l) => /NO_SOCKET +__udp4_lib_rcv/.test(l) && l.includes(ns.name.slice(0, 6))));
    assert.match(s.split('\n')[0], new RegExp(`via 127\\.0\\.0\\.1:${served.port}`));
    assert.match(s.split('\n')[0], /source bpf/);
    top.key('q');
    const out = await top.end();
    assert.equal(out.exitCode, 0);
    assert.equal(top.bufferType(), 'normal');
  } finally {
    traffic.kill();
    top?.proc.kill('SIGKILL');
    await served.stop();
    ns.delete();
    rmSync(dir, { recursive: true, force: true });
  }
});
