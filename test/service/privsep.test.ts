/**
 * Privilege separation of `dropmon serve`: the API (HTTP, JSON, dashboard,
 * range queries) runs in a process of its own as an unprivileged user, with
 * no capability and no supplementary group, while the monitor stays root; a
 * killed API process is replaced and the monitoring never stops; the
 * recording is readable by the API's group and nobody else; and the channel
 * between them takes only the messages it knows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reclaimLeftovers } from '../../src/sources/reclaim.js';
import { parseApiMessage } from '../../src/service/api-channel.js';
import { configForApi } from '../../src/service/api-process.js';
import { parsePasswd, resolveApiUser } from '../../src/service/api-user.js';
import { applyConfig, DEFAULT_CONFIG, publicConfig } from '../../src/service/config.js';
import { ConfigError } from '../../src/service/config.js';
import { kernelSkipReason } from '../helpers/env.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { DropmonProcess } from '../helpers/dropmon.js';
import { Served } from './serve-helper.js';

/**
 * The API process runs dropmon's own files as another user: a checkout that
 * user cannot read (one under a home folder closed to others) makes `serve`
 * keep the API in its own process, which the other serve tests cover.
 */
function apiProcessSkipReason(): string | undefined {
  const kernel = kernelSkipReason();
  if (kernel) return kernel;
  const user = resolveApiUser(undefined);
  const entry = join(PROJECT_ROOT, 'dist', 'src', 'service', 'api-process-main.js');
  const r = spawnSync(process.execPath, [entry], { uid: user.uid, gid: user.gid, cwd: '/', encoding: 'utf8', timeout: 60_000 });
  if (r.status === 2 && /not by hand/.test(r.stderr)) return undefined;
  return `user ${user.name} cannot run dropmon from this checkout (${PROJECT_ROOT}): ${(r.stderr || r.error?.message || '').split('\n')[0]}; serve keeps the API in its own process here`;
}

const SKIP = apiProcessSkipReason();

/** The Uid, Gid, Groups and capability lines of /proc/PID/status. */
function credentials(pid: number): { uid: number[]; gid: number[]; groups: string; capEff: string; capPrm: string } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = (k: string) => new RegExp(`^${k}:[ \\t]*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return {
    uid: line('Uid').split(/\s+/).map(Number),
    gid: line('Gid').split(/\s+/).map(Number),
    groups: line('Groups'),
    capEff: line('CapEff'),
    capPrm: line('CapPrm'),
  };
}

describe('the API process', { skip: SKIP }, () => {
  let s: Served;
  before(async () => {
    s = await new Served(['--source', 'tracefs', '--interval', '0.5']).ready(60_000);
  });
  after(async () => {
    await s?.stop();
  });

  test('answers as an unprivileged user with no capability, while the monitor stays root', async () => {
    const st = (await s.get('/api/v1/status')).json;
    assert.equal(st.api.separate, true, JSON.stringify(st.api));
    assert.notEqual(st.api.pid, s.proc.pid);
    assert.ok(st.api.uid > 0, `uid ${st.api.uid}`);
    assert.match(s.proc.stderr, new RegExp(`the API runs as user ${st.api.user} \\(pid ${st.api.pid}\\)`));
    const api = credentials(st.api.pid);
    assert.ok(api.uid.every((u) => u === st.api.uid), `Uid: ${api.uid.join(' ')}`);
    assert.ok(api.gid.every((g) => g > 0), `Gid: ${api.gid.join(' ')}`);
    // Only its own group: root's supplementary groups are gone.
    assert.ok(api.groups === '' || api.groups === String(api.gid[0]), `Groups: ${api.groups}`);
    assert.equal(BigInt(`0x${api.capEff}`), 0n, `CapEff ${api.capEff}`);
    assert.equal(BigInt(`0x${api.capPrm}`), 0n, `CapPrm ${api.capPrm}`);
    assert.equal(credentials(s.proc.pid).uid[0], 0);
  });

  test('the recording is the API group\'s to read, and range queries come from it', async () => {
    const st = (await s.get('/api/v1/status')).json;
    await s.until('a recorded interval', async () => ((await s.get('/api/v1/status')).json.recording.intervals > 0 ? true : undefined), 30_000);
    const f = statSync(s.db);
    assert.equal(f.gid, credentials(st.api.pid).gid[0]);
    assert.equal(f.mode & 0o777, 0o640);
    const points = (await s.get('/api/v1/points?from=-5m')).json;
    assert.equal(points.source, 'recording', JSON.stringify(points).slice(0, 300));
  });

  test('changes go through the monitor: stop, a bad change refused with its reason, start', async () => {
    assert.equal((await s.call('POST', '/api/v1/stop', {})).json.state, 'stopped');
    const bad = await s.call('PUT', '/api/v1/config', { intervalMs: 5 });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /intervalMs/);
    const good = await s.call('PUT', '/api/v1/config', { intervalMs: 500 });
    assert.equal(good.status, 200, good.text);
    assert.equal(good.json.intervalMs, 500);
    assert.equal((await s.call('POST', '/api/v1/start', {})).json.state, 'running');
    const m = await s.get('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /dropmon_intervals_total \d+/);
    // The API process's own memory, beside the monitor's process_* series.
    assert.match(m.text, /^dropmon_api_process_resident_memory_bytes [1-9]\d*$/m);
    assert.match(m.text, /^dropmon_api_process_heap_used_bytes [1-9]\d*$/m);
    const c = await s.get('/api/v1/counters');
    assert.equal(c.status, 200);
    assert.equal(c.json.enabled, true);
  });

  test('killed with SIGKILL, it is replaced and the monitoring goes on', async () => {
    const before = (await s.get('/api/v1/status')).json;
    process.kill(before.api.pid, 'SIGKILL');
    const said = /the API process exited \(SIGKILL\); the monitoring goes on/;
    await s.until('the warning', () => Promise.resolve(said.test(s.proc.stderr) ? true : undefined), 10_000);
    const after = await s.until(
      'a new API process',
      async () => {
        try {
          const st = (await s.get('/api/v1/status')).json;
          return st.api.pid !== before.api.pid ? st : undefined;
        } catch {
          return undefined; // refused while the new one starts
        }
      },
      60_000,
    );
    assert.equal(after.state, 'running');
    assert.ok(after.intervals > before.intervals, `intervals ${before.intervals} -> ${after.intervals}`);
    assert.equal(after.api.separate, true);
    assert.ok(after.api.uid > 0);
  });
});

test('a monitor killed with SIGKILL takes its API process with it', { skip: SKIP }, async () => {
  const s = await new Served(['--source', 'tracefs', '--no-counters'], { record: false }).ready(60_000);
  try {
    const api = (await s.get('/api/v1/status')).json.api;
    assert.equal(api.separate, true);
    process.kill(s.proc.pid, 'SIGKILL');
    await s.until('the API process to exit', () => Promise.resolve(existsSync(`/proc/${api.pid}`) ? undefined : true), 15_000);
  } finally {
    await s.stop('SIGKILL');
    reclaimLeftovers(); // the killed monitor's tracefs instance, as the next dropmon's start would
  }
});

test('a configured API user that does not exist is a configuration error (exit 2)', { skip: kernelSkipReason() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-privsep-'));
  try {
    writeFileSync(join(dir, 'c.yaml'), 'apiUser: no-such-user-dmt\n');
    const p = new DropmonProcess(['serve', '--config', join(dir, 'c.yaml'), '--listen', '127.0.0.1:0', '--no-record', '--state-dir', dir]);
    const fin = await p.finished();
    assert.equal(fin.code, 2, fin.stderr);
    assert.match(fin.stderr, /apiUser: no user "no-such-user-dmt"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('the channel and the API user', () => {
  test('the monitor takes only the messages it knows from the API process', () => {
    assert.deepEqual(parseApiMessage({ t: 'call', id: 3, method: 'stop', why: 'stop' }), { t: 'call', id: 3, method: 'stop', why: 'stop' });
    assert.deepEqual(parseApiMessage({ t: 'call', id: 4, method: 'change', why: 'config', change: { intervalMs: 500 } })?.t, 'call');
    for (const junk of [
      null,
      'call',
      [],
      { t: 'call', id: 1, method: 'exec', why: 'x' },
      { t: 'call', id: 1.5, method: 'stop', why: 'stop' },
      { t: 'call', id: '1', method: 'stop', why: 'stop' },
      { t: 'call', id: 1, method: 'stop', why: 'stop\u001b[2J' },
      { t: 'call', id: 1, method: 'stop', why: 'x'.repeat(1000) },
      { t: 'call', id: 1, method: 'constructor', why: 'x' },
      { t: 'ready', host: 1, port: 'x' },
      { t: '__proto__' },
    ]) {
      assert.equal(parseApiMessage(junk), undefined, JSON.stringify(junk));
    }
    // Every change body is still the monitor's config code's to validate (as an HTTP body would be).
    assert.equal(parseApiMessage({ t: 'failed', message: 'x'.repeat(5000) })?.t, 'failed');
  });

  test('the API process is not given the token in the config, nor webhook secrets', () => {
    const c = applyConfig(DEFAULT_CONFIG, {
      token: 'secret-token-123',
      alerts: { webhooks: [{ url: 'https://user:pw@hooks.example/x?key=abc', headers: { authorization: 'Bearer hook-secret' } }] },
    });
    const seen = JSON.stringify(configForApi(c));
    for (const secret of ['secret-token-123', 'pw@', 'key=abc', 'hook-secret']) assert.ok(!seen.includes(secret), `${secret} in ${seen}`);
    // What the API shows of it is what it showed before the split.
    assert.deepEqual(publicConfig(configForApi(c)), publicConfig(c));
  });

  test('the API user: the configured one, else dropmon, else nobody; never root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropmon-passwd-'));
    try {
      const file = join(dir, 'passwd');
      const base = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbroken line\n';
      writeFileSync(file, base);
      assert.deepEqual(resolveApiUser(undefined, file), { name: 'nobody', uid: 65534, gid: 65534 });
      writeFileSync(file, `${base}dropmon:x:998:997::/var/lib/dropmon:/usr/sbin/nologin\n`);
      assert.deepEqual(resolveApiUser(undefined, file), { name: 'dropmon', uid: 998, gid: 997 });
      assert.deepEqual(resolveApiUser('nobody', file).uid, 65534);
      assert.throws(() => resolveApiUser('root', file), ConfigError);
      assert.throws(() => resolveApiUser('ghost', file), /no user "ghost"/);
      writeFileSync(file, 'toor:x:0:0::/:/bin/sh\n');
      assert.throws(() => resolveApiUser('toor', file), /uid or gid 0/);
      assert.deepEqual(parsePasswd('a:x:1:2:::\nb:x:y:2:::\n'), [{ name: 'a', uid: 1, gid: 2 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('apiUser in the config: a user name other than root', () => {
    assert.equal(applyConfig(DEFAULT_CONFIG, { apiUser: 'dropmon' }).apiUser, 'dropmon');
    assert.throws(() => applyConfig(DEFAULT_CONFIG, { apiUser: 'root' }), /other than root/);
    assert.throws(() => applyConfig(DEFAULT_CONFIG, { apiUser: '../x' }), /other than root/);
  });
});
