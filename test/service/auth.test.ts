/**
 * Who controls `dropmon serve`: an unprivileged local user (uid 65534, curl
 * run through setpriv) is refused every change, and with the default
 * configuration every read too; root, through the CLI's token lookup (the
 * token file the service generated), can do everything. With
 * http.readOnlyPublic the unprivileged user may read, and no answer, event
 * or metric carries a kernel address; a browser on another origin or a page
 * reached through DNS rebinding gets nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveClientToken } from '../../src/sources/remote/auth.js';
import { parseRemoteUrl, RemoteClient } from '../../src/sources/remote/client.js';
import { kernelSkipReason } from '../helpers/env.js';
import { runDropgen } from '../helpers/dropgen.js';
import { TestNetns } from '../helpers/netns.js';
import { Served } from './serve-helper.js';

const SKIP = kernelSkipReason();
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
/** A kernel address as the API would write one: 0xffff... (16 hex digits), with or without 0x. */
const KERNEL_ADDRESS = /\b(?:0x)?ffff[0-9a-f]{12}\b|\b0x[0-9a-f]{16}\b/i;

const READS = [
  '/api/v1/status',
  '/api/v1/config',
  '/api/v1/intervals?limit=100',
  '/api/v1/points?from=-5m&top=50',
  '/api/v1/series?from=-5m',
  '/api/v1/counters',
  '/api/v1/diagnosis?from=-5m',
  '/api/v1/explain/NO_SOCKET',
  '/metrics',
];
const WRITES: [string, string, string | undefined][] = [
  ['POST', '/api/v1/stop', undefined],
  ['POST', '/api/v1/stop', '{}'],
  ['POST', '/api/v1/start', '{}'],
  ['PUT', '/api/v1/config', '{"filters":{"reasons":["NO_SOCKET"]}}'],
  ['PUT', '/api/v1/config', '{"mode":"packet","source":"netdm"}'],
];

interface CurlReply {
  status: number;
  body: string;
}

/** curl as uid/gid 65534 with no groups; the body and the status, also when curl stops at --max-time. */
function curlAsNobody(port: number, path: string, args: string[] = [], maxTime = 10): Promise<CurlReply> {
  return new Promise((resolve, reject) => {
    const full = ['setpriv', ...NOBODY, 'curl', '-sS', '-N', '--max-time', String(maxTime), '-w', '\n%{http_code}', ...args, `http://127.0.0.1:${port}${path}`];
    execFile(full[0], full.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      const code = (err as { code?: number } | null)?.code;
      if (err && code !== 28) return reject(new Error(`${full.join(' ')}: ${err.message}`));
      const i = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) });
    });
  });
}

function write(port: number, method: string, path: string, body: string | undefined, extra: string[] = []): Promise<CurlReply> {
  return curlAsNobody(port, path, ['-X', method, ...(body !== undefined ? ['-H', 'Content-Type: application/json', '-d', body] : []), ...extra]);
}

/** Drops at __udp4_lib_rcv (UDP to a closed port), until the service's memory has some. */
async function causeDrops(s: Served, ns: TestNetns): Promise<void> {
  await s.until('drops in the intervals', async () => {
    runDropgen(['-m', 'noport', '-n', '50', '-p', '9'], ns.name);
    const r = await s.get('/api/v1/intervals?limit=100');
    return (r.json.intervals as { points: unknown[] }[]).some((i) => i.points.length > 0) ? true : undefined;
  });
}

describe('serve, default configuration: only the token holder', { skip: SKIP }, () => {
  let s: Served;
  let ns: TestNetns;
  before(async () => {
    ns = new TestNetns('auth');
    s = await new Served(['--interval', '0.5', '--no-counters']).ready();
    await causeDrops(s, ns);
  });
  after(async () => {
    const fin = await s?.stop();
    ns?.delete();
    assert.equal(fin?.code, 0, fin?.stderr);
  });

  test('an unprivileged user is refused every change and every read, and cannot read the token file', async () => {
    for (const [method, path, body] of WRITES) {
      const r = await write(s.port, method, path, body);
      assert.equal(r.status, 401, `${method} ${path}: ${r.body}`);
      assert.doesNotMatch(r.body, KERNEL_ADDRESS);
    }
    // From a page of the dashboard's own origin too: the origin is no credential.
    const sameOrigin = await write(s.port, 'POST', '/api/v1/stop', '{}', ['-H', `Origin: http://127.0.0.1:${s.port}`]);
    assert.equal(sameOrigin.status, 401);
    for (const path of [...READS, '/api/v1/events']) {
      const r = await curlAsNobody(s.port, path, [], 3);
      assert.equal(r.status, 401, `${path}: ${r.body}`);
      assert.doesNotMatch(r.body, KERNEL_ADDRESS);
    }
    const guess = await curlAsNobody(s.port, '/api/v1/status', ['-H', 'Authorization: Bearer not-the-token-not-the-token']);
    assert.equal(guess.status, 401);
    const cat = await new Promise<number>((resolve) => execFile('setpriv', [...NOBODY, 'cat', join(s.dir, 'token')], (err) => resolve(err ? 1 : 0)));
    assert.equal(cat, 1, 'the token file is root\'s alone');
    assert.equal((await s.get('/api/v1/status')).json.state, 'running', 'nothing changed');
    assert.deepEqual((await s.get('/api/v1/config')).json.filters.reasons, []);
  });

  test('root, through the CLI\'s token lookup (the generated token file), controls it', async () => {
    const url = parseRemoteUrl(`127.0.0.1:${s.port}`);
    const stateTokenFile = join(s.dir, 'token');
    const token = resolveClientToken({ env: {}, stateTokenFile, url });
    assert.equal(token, s.stateToken);
    assert.equal(resolveClientToken({ env: {}, stateTokenFile, url: parseRemoteUrl('192.0.2.1:9947') }), undefined, 'never sent to another host');
    assert.equal(resolveClientToken({ env: {}, stateTokenFile, url, uid: 1000 }), undefined, 'only root looks there');
    const status = await new RemoteClient(url, token).status();
    assert.equal(status.state, 'running');
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(new URL(path, url), {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: (path === 'metrics' ? {} : JSON.parse(text)) as Record<string, unknown> };
    };
    assert.equal((await call('POST', 'api/v1/stop')).json.state, 'stopped');
    assert.equal((await call('POST', 'api/v1/start')).json.state, 'running');
    const put = await call('PUT', 'api/v1/config', { filters: { reasons: ['NO_SOCKET'] } });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.equal((await call('PUT', 'api/v1/config', { filters: { reasons: [] } })).status, 200);
    for (const path of READS) assert.equal((await call('GET', path.slice(1))).status, 200, path);
    const intervals = await s.get('/api/v1/intervals?limit=100');
    assert.match(intervals.text, KERNEL_ADDRESS, 'administrators see the addresses');
  });
});

describe('serve, http.readOnlyPublic: others read, without kernel addresses', { skip: SKIP }, () => {
  let s: Served;
  let ns: TestNetns;
  let dir: string;
  before(async () => {
    ns = new TestNetns('public');
    dir = mkdtempSync(join(tmpdir(), 'dropmon-public-'));
    writeFileSync(join(dir, 'dropmon.yaml'), 'http:\n  readOnlyPublic: true\n');
    s = await new Served(['--config', join(dir, 'dropmon.yaml'), '--interval', '0.5', '--no-counters']).ready();
    await causeDrops(s, ns);
    // A filter on an address, so that the configuration itself carries one.
    const table = (await s.get('/api/v1/intervals?limit=100')).json.intervals.flatMap((i: { points: { location: string }[] }) => i.points);
    const put = await s.call('PUT', '/api/v1/config', { filters: { locations: ['__udp4_lib_rcv', table[0].location] } });
    assert.equal(put.status, 200, put.text);
    await causeDrops(s, ns);
  });
  after(async () => {
    const fin = await s?.stop();
    ns?.delete();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(fin?.code, 0, fin?.stderr);
  });

  test('every read answers, and none carries a kernel address; administrators still see them', async () => {
    for (const path of READS) {
      const r = await curlAsNobody(s.port, path);
      assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 300)}`);
      assert.doesNotMatch(r.body, KERNEL_ADDRESS, path);
    }
    const pub = await curlAsNobody(s.port, '/api/v1/intervals?limit=100');
    const points = (JSON.parse(pub.body) as { intervals: { points: { location: string; function: string }[] }[] }).intervals.flatMap((i) => i.points);
    const udp = points.find((p) => p.function === '__udp4_lib_rcv');
    assert.ok(udp, pub.body.slice(0, 500));
    assert.match(udp.location, /^__udp4_lib_rcv\+0x[0-9a-f]+$/, 'function+offset in place of the address');
    assert.match((await s.get('/api/v1/intervals?limit=100')).text, KERNEL_ADDRESS, 'the token holder sees the addresses');
    assert.match((await s.get('/api/v1/config')).text, KERNEL_ADDRESS);
  });

  test('the event stream: public streams get intervals and states without addresses', async () => {
    const stream = curlAsNobody(s.port, '/api/v1/events', [], 4);
    await new Promise((r) => setTimeout(r, 500));
    runDropgen(['-m', 'noport', '-n', '50', '-p', '9'], ns.name);
    const r = await stream;
    assert.equal(r.status, 200);
    assert.match(r.body, /^event: state$/m);
    assert.match(r.body, /^event: interval$/m);
    assert.match(r.body, /"location":"__udp4_lib_rcv\+0x/);
    assert.doesNotMatch(r.body, KERNEL_ADDRESS);
  });

  test('no change without the token; a wrong token is refused, not taken for the public', async () => {
    for (const [method, path, body] of WRITES) {
      const r = await write(s.port, method, path, body);
      assert.equal(r.status, 401, `${method} ${path}: ${r.body}`);
    }
    assert.equal((await curlAsNobody(s.port, '/api/v1/status', ['-H', 'Authorization: Bearer not-the-token-not-the-token'])).status, 401);
    assert.equal((await curlAsNobody(s.port, '/api/v1/status', ['-H', 'Authorization: Basic eDp5'])).status, 401);
    assert.equal((await s.get('/api/v1/status')).json.state, 'running');
  });

  test('browsers: another origin gets nothing, read or write; another host name (DNS rebinding) neither', async () => {
    assert.equal((await curlAsNobody(s.port, '/api/v1/status', ['-H', 'Origin: http://evil.example'])).status, 403);
    assert.equal((await curlAsNobody(s.port, '/metrics', ['-H', 'Origin: null'])).status, 403);
    assert.equal((await curlAsNobody(s.port, '/api/v1/events', ['-H', 'Origin: http://evil.example'], 3)).status, 403);
    assert.equal((await curlAsNobody(s.port, '/api/v1/status', ['-H', `Host: evil.example:${s.port}`])).status, 403);
    assert.equal((await curlAsNobody(s.port, '/api/v1/status', ['-H', `Origin: http://127.0.0.1:${s.port}`])).status, 200, 'the dashboard\'s own origin');
    assert.equal((await s.get('/api/v1/status', { origin: 'http://evil.example' })).status, 403, 'with the token too');
  });
});
