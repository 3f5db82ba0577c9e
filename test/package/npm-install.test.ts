/**
 * The npm package as an operator installs it: the tarball of `npm pack`,
 * installed into empty prefixes with the current npm (11) and Node 20's npm 10
 * (`npx -y npm@10`), globally and through `npx --package`, with nothing but
 * the npm registry: the README's commands. The installation from the current
 * npm then watches real drops (shown within 2 s), explains, diagnoses, records
 * and reports, and serves the dashboard and /metrics; nothing is written into
 * the installation meanwhile.
 *
 * better-sqlite3's install script downloads a prebuilt binary from GitHub and
 * builds from source (node-gyp, minutes) when it cannot. To keep this test
 * short, the download is answered by a loopback mirror
 * (npm_config_better_sqlite3_binary_host, prebuild-install's mirror setting)
 * holding the binary the checkout's own `npm ci` built for this Node: the same
 * version and ABI as GitHub's. DROPMON_PKG_FROM_SOURCE=1 leaves the mirror out,
 * so every install builds from source as it does where GitHub is unreachable.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { kernelSkipReason } from '../helpers/env.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { TestNetns } from '../helpers/netns.js';
import { checkDiagnose, checkExplain, checkRecordReport, checkServe, checkWatch, type Installed } from './exercise.js';

/** What the README tells npm 11 to allow (npm 10 ignores the flag and runs every script). */
export const ALLOW = '--allow-scripts=better-sqlite3,koffi';
const FROM_SOURCE = process.env.DROPMON_PKG_FROM_SOURCE === '1';
const INSTALL_TIMEOUT = FROM_SOURCE ? 900_000 : 300_000;

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string, timeout = INSTALL_TIMEOUT): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env, cwd, timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Installs run asynchronously: the test process serves the prebuilt mirror meanwhile. */
async function install(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  await promisify(execFile)(cmd, args, { encoding: 'utf8', env, timeout: INSTALL_TIMEOUT, maxBuffer: 64 << 20 });
}

function skipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  try {
    sh('npm', ['--version'], process.env, undefined, 30_000);
  } catch {
    return 'npm is not installed';
  }
  try {
    sh('npm', ['ping'], process.env, undefined, 60_000);
  } catch {
    return 'the npm registry is not reachable';
  }
  if (!FROM_SOURCE && !existsSync(join(PROJECT_ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')))
    return "the checkout's better-sqlite3 is not built (npm ci), so there is no binary to mirror; DROPMON_PKG_FROM_SOURCE=1 builds from source";
  return undefined;
}

const why = skipReason();
if (why) process.stderr.write(`# skipping npm package tests: ${why}\n`);

/** A loopback stand-in for better-sqlite3's GitHub releases, serving the checkout's binary. */
class PrebuiltMirror {
  readonly requests: string[] = [];
  private server: Server | undefined;
  private tarball = '';
  private urlPath = '';

  async start(dir: string): Promise<string> {
    const mod = join(PROJECT_ROOT, 'node_modules/better-sqlite3');
    const version = (JSON.parse(readFileSync(join(mod, 'package.json'), 'utf8')) as { version: string }).version;
    const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-linux-${process.arch}.tar.gz`;
    const stage = join(dir, 'prebuilt');
    mkdirSync(join(stage, 'build/Release'), { recursive: true });
    copyFileSync(join(mod, 'build/Release/better_sqlite3.node'), join(stage, 'build/Release/better_sqlite3.node'));
    this.tarball = join(dir, name);
    sh('tar', ['czf', this.tarball, '-C', stage, 'build']);
    this.urlPath = `/v${version}/${name}`;
    this.server = createServer((req, res) => {
      this.requests.push(req.url ?? '');
      if (req.url !== this.urlPath) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(this.tarball));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }

  /** prebuild-install keeps what it downloads in the npm cache, under a hash of the URL: remove ours. */
  forget(host: string, npmCache: string): void {
    const url = host + this.urlPath;
    const digest = createHash('sha512').update(url).digest('hex').slice(0, 6);
    rmSync(join(npmCache, '_prebuilds', `${digest}-${basename(url).replace(/[^a-zA-Z0-9.]+/g, '-')}`), { force: true });
  }

  stop(): void {
    this.server?.close();
  }
}

/** Every file under `dir` with its size and mtime: what an installed dropmon must not change. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p, { throwIfNoEntry: false });
        out.set(p, st ? `${st.size} ${st.mtimeMs}` : 'gone');
      }
    }
  };
  walk(dir);
  return out;
}

describe('npm package', { skip: why ?? false, timeout: FROM_SOURCE ? 3_600_000 : 900_000 }, () => {
  let dir = '';
  let tgz = '';
  let env: NodeJS.ProcessEnv = process.env;
  let host = '';
  let npmCache = '';
  const mirror = new PrebuiltMirror();
  let ns: TestNetns;

  /** The npx cache folders that installed this run's tarball (found by its path in their package.json). */
  const npxInstalls = (): string[] => {
    const root = join(npmCache, '_npx');
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .map((d) => join(root, d))
      .filter((d) => {
        try {
          return readFileSync(join(d, 'package.json'), 'utf8').includes(tgz);
        } catch {
          return false;
        }
      });
  };
  const forgetNpx = () => {
    for (const d of npxInstalls()) rmSync(d, { recursive: true, force: true });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-npm-'));
    npmCache = sh('npm', ['config', 'get', 'cache'], process.env, undefined, 30_000).trim() || join(homedir(), '.npm');
    // `npm pack` builds first (prepack); the suite has just built dist/, so pack
    // it as prepack would leave it: with the lock file as npm-shrinkwrap.json.
    const shrinkwrap = join(PROJECT_ROOT, 'npm-shrinkwrap.json');
    const mine = !existsSync(shrinkwrap);
    if (mine) copyFileSync(join(PROJECT_ROOT, 'package-lock.json'), shrinkwrap);
    try {
      const out = sh('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], process.env, PROJECT_ROOT, 120_000);
      tgz = join(dir, out.trim().split('\n').pop()!);
    } finally {
      if (mine) rmSync(shrinkwrap, { force: true });
    }
    env = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
    if (FROM_SOURCE) {
      // node-gyp needs Node's headers: those of the installed Node when it has them, else it downloads them.
      const prefix = dirname(dirname(process.execPath));
      if (existsSync(join(prefix, 'include/node/node.h'))) env.npm_config_nodedir ??= prefix;
    } else {
      host = await mirror.start(dir);
      env.npm_config_better_sqlite3_binary_host = host;
    }
    ns = new TestNetns('npm');
  });

  after(() => {
    ns?.delete();
    TestNetns.cleanupAll();
    mirror.stop();
    if (host) mirror.forget(host, npmCache);
    forgetNpx();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the tarball holds the program, the compiled knowledge base, the dashboard, contrib/ and the locked versions', () => {
    const files = new Set(sh('tar', ['tzf', tgz]).split('\n'));
    for (const f of ['dist/src/cli/main.js', 'dist/kb.compiled.json', 'kb/reasons.yaml', 'web/index.html', 'web/app.js', 'contrib/dropmon.service', 'contrib/dropmon.yaml', 'contrib/grafana-dropmon.json', 'npm-shrinkwrap.json', 'README.md'])
      assert.ok(files.has(`package/${f}`), `${f} is in the tarball`);
    assert.ok(![...files].some((f) => f.startsWith('package/dist/test/') || f.endsWith('.map')), 'no tests or source maps');
  });

  test('npm 11: npm install -g into an empty prefix; watch, explain, diagnose, record + report, serve; the installation stays unchanged', async (t) => {
    const prefix = join(dir, 'npm11');
    const t0 = Date.now();
    await install('npm', ['install', '-g', '--prefix', prefix, ALLOW, tgz], env);
    t.diagnostic(`npm ${sh('npm', ['--version']).trim()} install: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (!FROM_SOURCE) assert.ok(mirror.requests.length > 0, "better-sqlite3's install script fetched the prebuilt binary");
    const dm: Installed = { label: 'npm 11 -g', command: [join(prefix, 'bin/dropmon')] };
    const installed = join(prefix, 'lib/node_modules');
    const before = snapshot(installed);
    assert.match(sh(dm.command[0], ['--version']), /^dropmon \d+\.\d+\.\d+/);
    await checkExplain(dm);
    const w = await checkWatch(dm, ns);
    t.diagnostic(`watch: "watching" ${w.startMs} ms after start; drops shown ${w.shownMs} ms after being caused`);
    await checkDiagnose(dm, ns);
    await checkRecordReport(dm, ns, dir);
    await checkServe(dm, ns, dir);
    assert.deepEqual([...snapshot(installed)].filter(([p, v]) => before.get(p) !== v), [], 'nothing was written into the installation');
  });

  test('npm 10: npm install -g into an empty prefix; explain, record + report', async (t) => {
    const prefix = join(dir, 'npm10');
    const t0 = Date.now();
    await install('npx', ['-y', 'npm@10', 'install', '-g', '--prefix', prefix, ALLOW, tgz], env);
    t.diagnostic(`npm ${sh('npx', ['-y', 'npm@10', '--version'], env).trim()} install: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const dm: Installed = { label: 'npm 10 -g', command: [join(prefix, 'bin/dropmon')] };
    await checkExplain(dm);
    await checkRecordReport(dm, ns, dir);
  });

  for (const [label, npx] of [
    ['npx (npm 11)', ['npx', '-y', ALLOW]],
    ['npx (npm 10)', ['npx', '-y', 'npm@10', 'exec', '-y', ALLOW]],
  ] as const) {
    test(`${label} --package the tarball: explain, record + report`, async () => {
      forgetNpx(); // each npm installs it itself
      const dm: Installed = { label, command: [...npx, '--package', tgz, '--', 'dropmon'], env };
      await checkExplain(dm);
      assert.equal(npxInstalls().length, 1, 'npx installed the tarball into its cache');
      await checkRecordReport(dm, ns, dir);
    });
  }
});
