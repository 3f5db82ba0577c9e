/**
 * `dropmon dwdump`: dwdump's flags, defaults and precedence, usage errors
 * (exit 2, fuzzed), the `dwdump` names (bin alias symlink, contrib/dwdump).
 * The capture itself runs against a real NET_DM in selftest-vm.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { UsageError } from '../../src/core/errors.js';
import { parseDwdumpArgs, type DwdumpOptions } from '../../src/cli/dwdump.js';
import { CLI } from '../helpers/dropmon.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { netdmPresent } from '../helpers/env.js';

const parse = (...a: string[]) => parseDwdumpArgs(a) as DwdumpOptions;
const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 500);

test("dwdump's defaults: everything to stdout, both origins, whole packets, queue 1000", () => {
  assert.deepEqual(parse(), {
    action: 'capture',
    file: '-',
    origins: { sw: true, hw: true },
    truncLen: 0xffff,
    queueLen: 1000,
    rcvbuf: undefined,
    passive: false,
  });
});

test('flags in short, joined, long and abbreviated long forms mean what they mean to dwdump', () => {
  assert.deepEqual(parse('-o', 'sw').origins, { sw: true, hw: false });
  assert.deepEqual(parse('--origin=hw').origins, { sw: false, hw: true });
  assert.deepEqual(parse('--orig', 'hw').origins, { sw: false, hw: true });
  assert.equal(parse('-wdrops.pcap').file, 'drops.pcap');
  assert.equal(parse('--write', '-').file, '-');
  assert.equal(parse('--wri=x.pcap').file, 'x.pcap');
  assert.equal(parse('-t', '96').truncLen, 96);
  assert.equal(parse('-t', '0').truncLen, 0xffff, '0: no truncation');
  assert.equal(parse('-t', '100000').truncLen, 0xffff, 'past 16 bits: no truncation');
  assert.equal(parse('-l', '50').queueLen, 50);
  assert.equal(parse('--limit=0').queueLen, 0);
  assert.equal(parse('-b', '1048576').rcvbuf, 1048576);
  assert.equal(parse('-p').passive, true);
  assert.equal(parse('-po', 'sw').passive, true);
});

test('-q before -s before -e, whatever their order, as dwdump answers them', () => {
  assert.equal(parse('-e', '-s', '-q').action, 'query');
  assert.equal(parse('-e', '-s').action, 'stats');
  assert.equal(parse('--exit', '-o', 'hw').action, 'exit');
  assert.equal(parseDwdumpArgs(['-h']), 'help');
  assert.equal(parseDwdumpArgs(['-w', 'f', '--help']), 'help');
});

test('bad usage is a UsageError (exit 2) that says what was wrong', () => {
  const bad: Array<[string[], RegExp]> = [
    [['-o', 'both'], /invalid origin "both"/],
    [['-t', 'abc'], /-t takes a whole number/],
    [['-t', '-1'], /-t|argument/],
    [['-l', '1.5'], /-l takes a whole number/],
    [['-l', '99999999999'], /-l takes a number up to 4294967295/],
    [['-b', '0'], /greater than 0/],
    [['-w', ''], /-w takes a file name/],
    [['-x'], /Unknown option '-x'/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['-w'], /argument missing/],
    [['extra'], /unexpected argument "extra"/],
  ];
  for (const [argv, msg] of bad)
    assert.throws(() => parseDwdumpArgs(argv), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && msg.test(e.message), argv.join(' '));
});

test('fuzz: any argument list parses or is a UsageError, never a crash', () => {
  const token = fc.oneof(
    fc.constantFrom('-w', '-t', '-q', '-l', '-p', '-s', '-b', '-o', '-e', '-h', '--', '-', 'sw', 'hw', '0', '65536', '--orig', '--write=', '--b', '-pq'),
    fc.string({ maxLength: 12 }),
  );
  fc.assert(
    fc.property(fc.array(token, { maxLength: 8 }), (argv) => {
      try {
        const o = parseDwdumpArgs(argv);
        if (o !== 'help') {
          assert.ok(o.truncLen >= 1 && o.truncLen <= 0xffff);
          assert.ok(o.origins.sw || o.origins.hw);
        }
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
});

function run(cmd: string, args: string[]) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
}

test('as a program: --help exits 0, bad flags exit 2 on stderr; the dwdump names run it', () => {
  const help = run(process.execPath, [CLI, 'dwdump', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: dwdump \[-w FILE\]/);
  const bad = run(process.execPath, [CLI, 'dwdump', '-o', 'all']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /invalid origin "all".*\n.*dwdump --help/);
  assert.match(run(join(PROJECT_ROOT, 'contrib', 'dwdump'), ['-h']).stdout, /^Usage: dwdump/);
  // npm links the bin alias to main.js under the name dwdump
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-dwdump-'));
  try {
    symlinkSync(CLI, join(dir, 'dwdump'));
    const viaLink = run(process.execPath, [join(dir, 'dwdump'), '-h']);
    assert.equal(viaLink.status, 0);
    assert.match(viaLink.stdout, /^Usage: dwdump/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without NET_DM: exit 1 and why', { skip: netdmPresent() && 'this kernel has NET_DM (the VM test runs the capture)' }, () => {
  for (const args of [['-w', join(tmpdir(), `dropmon-dwdump-${process.pid}.pcap`)], ['-q'], ['-s'], ['-e']]) {
    const r = run(process.execPath, [CLI, 'dwdump', ...args]);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, /NET_DM/);
  }
  rmSync(join(tmpdir(), `dropmon-dwdump-${process.pid}.pcap`), { force: true });
});
