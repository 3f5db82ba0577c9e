/**
 * The Debian package: scripts/build-deb.sh builds it (lintian-clean where
 * lintian is installed), dpkg installs it on this machine, the service starts
 * (with systemd when systemd runs, else the unit's own command line), serves
 * the dashboard and /metrics with the drops caused here, and a purge leaves
 * nothing behind: no file, user, group, unit state or tracefs instance.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kernelSkipReason, TRACEFS } from '../helpers/env.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { TestNetns } from '../helpers/netns.js';
import { DropmonProcess } from '../helpers/dropmon.js';
import { checkService, until } from './exercise.js';

const systemd = existsSync('/run/systemd/system');

function sh(cmd: string, args: string[], timeout = 300_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function ok(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args, 60_000);
    return true;
  } catch {
    return false;
  }
}

function installed(): boolean {
  try {
    return /install ok installed|config-files|unpacked/.test(sh('dpkg-query', ['-W', '-f=${Status}', 'dropmon'], 30_000));
  } catch {
    return false;
  }
}

function skipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  if (!ok('dpkg-deb', ['--version']) || !ok('dpkg-shlibdeps', ['--version'])) return 'dpkg-deb or dpkg-shlibdeps (dpkg-dev) is missing';
  if (!ok('dpkg-query', ['-W', 'nodejs'])) return 'Node.js is not installed from a Debian package (the package depends on nodejs)';
  if (installed()) return 'a dropmon Debian package is installed on this machine: the test leaves it alone';
  if (!existsSync(join(PROJECT_ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))) return "the checkout's better-sqlite3 is not built (npm ci)";
  return undefined;
}

const why = skipReason();
if (why) process.stderr.write(`# skipping Debian package tests: ${why}\n`);

/** Everything the package or its scripts may leave behind, for the purge check. */
const TRACES = [
  '/usr/lib/dropmon',
  '/usr/bin/dropmon',
  '/etc/dropmon',
  '/var/lib/dropmon',
  '/lib/systemd/system/dropmon.service',
  '/usr/lib/systemd/system/dropmon.service',
  '/etc/systemd/system/dropmon.service',
  '/etc/systemd/system/multi-user.target.wants/dropmon.service',
  '/var/lib/systemd/deb-systemd-helper-enabled/dropmon.service.dsh-also',
  '/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/dropmon.service',
  '/var/lib/systemd/deb-systemd-helper-masked/dropmon.service',
  '/usr/share/doc/dropmon',
  '/usr/share/man/man1/dropmon.1.gz',
  '/usr/share/lintian/overrides/dropmon',
];

describe('Debian package', { skip: why ?? false, timeout: 900_000 }, () => {
  let dir = '';
  let deb = '';
  let ns: TestNetns;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-deb-'));
    // The suite has built dist/: package it as it is.
    deb = sh(join(PROJECT_ROOT, 'scripts/build-deb.sh'), ['--no-build', dir]).trim().split('\n').pop()!;
    ns = new TestNetns('deb');
  });

  after(() => {
    ns?.delete();
    TestNetns.cleanupAll();
    if (installed()) ok('dpkg', ['--purge', 'dropmon']);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the package: its files, conffile, dependencies; lintian finds nothing', async (t) => {
    const info = sh('dpkg-deb', ['-f', deb]);
    assert.match(info, /^Depends: nodejs \(>= \d+\), nodejs \(<< \d+\), adduser/m);
    const files = sh('dpkg-deb', ['-c', deb]);
    for (const f of ['./usr/bin/dropmon', './usr/lib/dropmon/dist/src/cli/main.js', './usr/lib/dropmon/dist/kb.compiled.json', './usr/lib/dropmon/kb/reasons.yaml',
      './usr/lib/dropmon/web/index.html', './usr/lib/dropmon/node_modules/better-sqlite3/build/Release/better_sqlite3.node', './lib/systemd/system/dropmon.service',
      './etc/dropmon/dropmon.yaml', './usr/share/doc/dropmon/copyright'])
      assert.ok(files.includes(` ${f}\n`), `${f} is in the package`);
    assert.equal(sh('dpkg-deb', ['-I', deb, 'conffiles']).trim(), '/etc/dropmon/dropmon.yaml');
    if (!ok('lintian', ['--version'])) {
      t.diagnostic('lintian is not installed (scripts/setup.sh installs it): not checked');
      return;
    }
    const r = await promisify(execFile)('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 600_000 }).catch((e: { stdout: string; stderr: string }) => e);
    const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
    assert.deepEqual(tags, [], 'lintian errors and warnings');
  });

  test('installed: the user, state directory and unit; the service serves the dashboard and /metrics; purge leaves nothing', async (t) => {
    sh('dpkg', ['-i', deb]);
    assert.ok(installed());
    assert.match(sh('getent', ['passwd', 'dropmon']), /^dropmon:x:\d+:\d+:[^:]*:\/var\/lib\/dropmon:\/usr\/sbin\/nologin$/m);
    assert.ok(ok('getent', ['group', 'dropmon']));
    assert.ok(existsSync('/var/lib/dropmon'));
    assert.ok(existsSync('/etc/dropmon/dropmon.yaml'));
    assert.match(sh('/usr/bin/dropmon', ['--version']), /^dropmon \d/);
    assert.match(sh('/usr/bin/dropmon', ['explain', 'NO_SOCKET']), /NO_SOCKET/);

    const unit = readFileSync('/lib/systemd/system/dropmon.service', 'utf8');
    const execStart = /^ExecStart=(.+)$/m.exec(unit)?.[1].trim().split(/\s+/);
    assert.ok(execStart && execStart[0] === '/usr/bin/dropmon', `ExecStart runs the installed command: ${execStart}`);
    if (systemd) {
      // The unit as installed (postinst started it): its configured address.
      t.diagnostic('systemd runs: systemctl start dropmon');
      sh('systemctl', ['start', 'dropmon']);
      try {
        const listen = /^listen:\s*(\S+)/m.exec(readFileSync('/etc/dropmon/dropmon.yaml', 'utf8'))?.[1] ?? '127.0.0.1:9947';
        const port = Number(listen.split(':').pop());
        assert.ok(await until(() => ok('systemctl', ['is-active', '--quiet', 'dropmon']), 20_000), 'the unit is active');
        await checkService('systemd unit', port, ns, '/var/lib/dropmon', 'dropmon');
      } finally {
        sh('systemctl', ['stop', 'dropmon']);
      }
    } else {
      // No systemd here (PID 1 is something else): the unit's command line, on a free port.
      t.diagnostic(`systemd is not PID 1: running the unit's ExecStart (${execStart.join(' ')})`);
      const p = new DropmonProcess([...execStart.slice(1), '--listen', '127.0.0.1:0', '--source', 'tracefs'], [execStart[0]]);
      try {
        await p.ready(30_000, 'serving on');
        const port = Number(/serving on http:\/\/[^ ]*:(\d+)\//.exec(p.stderr)?.[1]);
        await checkService('unit command line', port, ns, '/var/lib/dropmon', 'dropmon');
        assert.ok(existsSync('/var/lib/dropmon/dropmon.db'), 'the recording is in the state directory');
      } finally {
        const fin = await p.stop('SIGTERM');
        assert.equal(fin.code, 0, fin.stderr);
      }
    }

    sh('dpkg', ['--purge', 'dropmon']);
    assert.ok(!installed(), 'dpkg forgot the package');
    assert.deepEqual(TRACES.filter((f) => existsSync(f)), [], 'files left after purge');
    assert.ok(!ok('getent', ['passwd', 'dropmon']), 'the dropmon user is gone');
    assert.ok(!ok('getent', ['group', 'dropmon']), 'the dropmon group is gone');
    const instances = readdirSync(join(TRACEFS, 'instances')).filter((n) => /^dropmon-/.test(n) && !isLive(Number(n.slice(8))));
    assert.deepEqual(instances, [], 'no tracefs instance left behind');
  });
});

/** Instances of dropmons still running (other tests') are theirs, not leftovers. */
function isLive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
