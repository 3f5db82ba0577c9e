/**
 * What is shown without secrets: webhook URLs without credentials or query
 * (in GET /api/v1/config, every SSE `state` event and the log), and JSON for
 * clients without the token with function+offset in place of every kernel
 * address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConfig, DEFAULT_CONFIG, publicConfig } from '../../src/service/config.js';
import { redactUrl, withoutKernelAddresses } from '../../src/service/redact.js';
import { WebhookNotifier } from '../../src/service/alerts.js';
import { Served } from './serve-helper.js';

const KERNEL_ADDRESS = /\b(?:0x)?ffff[0-9a-f]{12}\b|\b0x[0-9a-f]{16}\b/i;
const SECRET_URL = 'https://hook-user:hook-pass@hooks.example.com/services/dropmon?token=QUERYSECRET&x=1#FRAGSECRET';
const SECRETS = /hook-user|hook-pass|QUERYSECRET|FRAGSECRET/;

test('webhook URLs: userinfo, query and fragment become ***; scheme, host and path stay', () => {
  assert.equal(redactUrl(SECRET_URL), 'https://***@hooks.example.com/services/dropmon?***#***');
  assert.equal(redactUrl('http://127.0.0.1:8080/hook'), 'http://127.0.0.1:8080/hook');
  assert.equal(redactUrl('http://:only-password@h/'), 'http://***@h/');
  assert.equal(redactUrl('not a url'), '(not a URL)');
  const c = applyConfig(DEFAULT_CONFIG, { alerts: { webhooks: [{ url: SECRET_URL, headers: { Authorization: 'Bearer HEADERSECRET' } }] } });
  const shown = JSON.stringify(publicConfig(c));
  assert.doesNotMatch(shown, SECRETS);
  assert.doesNotMatch(shown, /HEADERSECRET/);
  assert.throws(() => applyConfig(DEFAULT_CONFIG, { alerts: { webhooks: ['https://u:SECRET@[bad'] } }), (err: Error) => !err.message.includes('SECRET'));
});

test('webhook failures are logged without the URL\'s secrets', async () => {
  const warnings: string[] = [];
  for (const url of ['http://user:PASSWORD@127.0.0.1:1/hook?key=QUERYSECRET', 'http://127.0.0.1:1/hook?key=QUERYSECRET']) {
    const w = new WebhookNotifier({ url, headers: {}, timeoutMs: 500 }, { attempts: 1, backoffMs: 10, warn: (m) => warnings.push(m) });
    w.notify({ rule: 'r', status: 'firing', kind: 'reason', match: '*', rate: 1, threshold: 1, at: Date.now(), since: Date.now(), hostname: 'h' });
    await w.idle(3000);
    w.close();
  }
  assert.ok(warnings.length >= 2, warnings.join('\n'));
  for (const m of warnings) assert.doesNotMatch(m, /PASSWORD|QUERYSECRET/, m);
});

const INTERVAL = {
  seq: 3,
  points: [
    { symbol: '__udp4_lib_rcv+0x4bc/0x6f0', function: '__udp4_lib_rcv', module: null, location: '0xffffffff81abcdef', reason: 'NO_SOCKET', protocol: '0x88b5', count: 12 },
    { symbol: 'mlx5e_xmit+0x10/0x200 [mlx5_core]', function: 'mlx5e_xmit', module: 'mlx5_core', location: '0xffffffffc0a01010', reason: '', protocol: 'ipv4', count: 1 },
    { symbol: '0xffffffff81000123', function: null, module: null, location: '0xffffffff81000123', reason: 'NOT_SPECIFIED', protocol: 'ipv6', count: 2 },
  ],
  correlation: { groups: [], blindSpots: [] },
};

test('for the public: function+offset in place of every address; the rest unchanged', () => {
  const pub = withoutKernelAddresses(INTERVAL);
  assert.doesNotMatch(JSON.stringify(pub), KERNEL_ADDRESS);
  assert.equal(pub.points[0].location, '__udp4_lib_rcv+0x4bc');
  assert.equal(pub.points[0].symbol, '__udp4_lib_rcv+0x4bc/0x6f0', 'function+offset/size: no address in it');
  assert.equal(pub.points[0].protocol, '0x88b5', 'short hex numbers are not addresses');
  assert.equal(pub.points[1].location, 'mlx5e_xmit+0x10 [mlx5_core]');
  assert.equal(pub.points[2].location, 'unknown');
  assert.equal(pub.points[2].symbol, 'unknown');
  assert.equal(INTERVAL.points[0].location, '0xffffffff81abcdef', 'the original (the administrators\' copy) is untouched');
  const diagnosis = { findings: [{ evidence: ['12 drops at 0xffffffff81000123', 'link:rx_dropped +3 on lo'], points: [{ location: 'fn+0x12' }] }] };
  assert.deepEqual(withoutKernelAddresses(diagnosis), { findings: [{ evidence: ['12 drops at unknown', 'link:rx_dropped +3 on lo'], points: [{ location: 'fn+0x12' }] }] });
  assert.deepEqual(withoutKernelAddresses({ filters: { locations: ['tcp_v4_rcv', '0xffffffff81abcdef', 'ffffffff81abcdef'] } }), { filters: { locations: ['tcp_v4_rcv', 'unknown', 'unknown'] } });
});

test('dropmon serve: the webhook URL is redacted in GET /api/v1/config, in every state event and in the log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-redact-'));
  const conf = join(dir, 'dropmon.yaml');
  writeFileSync(conf, `alerts:\n  webhooks:\n    - url: "${SECRET_URL}"\n      headers: { Authorization: "Bearer HEADERSECRET" }\n`);
  const s = await new Served(['--config', conf, '--stopped', '--no-counters'], { record: false }).ready();
  try {
    const c = await s.get('/api/v1/config');
    assert.equal(c.status, 200);
    assert.equal(c.json.alerts.webhooks[0].url, 'https://***@hooks.example.com/services/dropmon?***#***');
    assert.doesNotMatch(c.text, SECRETS);
    assert.doesNotMatch(c.text, /HEADERSECRET/);
    // The state event on connect, and the one a change sends to every stream.
    const events = s.events('/api/v1/events', (e, d) => e === 'state' && (d as { why: string }).why === 'config');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await s.call('PUT', '/api/v1/config', { intervalMs: 500 })).status, 200);
    const got = await events;
    const states = got.all.filter((e) => e.event === 'state');
    assert.deepEqual(states.map((e) => (e.data as { why: string }).why), ['connected', 'config']);
    for (const e of states) {
      const text = JSON.stringify(e.data);
      assert.match(text, /hooks\.example\.com\/services\/dropmon\?\*\*\*/);
      assert.doesNotMatch(text, SECRETS);
    }
  } finally {
    const fin = await s.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(fin.code, 0, fin.stderr);
    assert.doesNotMatch(fin.stderr + fin.stdout, SECRETS);
  }
});
