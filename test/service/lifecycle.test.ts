/**
 * The service's life: stop/start through the API and SIGTERM undo what the
 * source changed on the host (the tracefs instance); SIGHUP re-reads the
 * config file and applies it, and keeps the old one when the new one is bad;
 * alerts fire and resolve on a real drop storm, to a webhook receiver in the
 * test and to stdout.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kernelSkipReason, TRACEFS } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { dropgenBinary } from '../helpers/dropgen.js';
import { openRecording } from '../../src/recording/recording.js';
import { Served } from './serve-helper.js';

const SKIP = kernelSkipReason();
const run = promisify(execFile);

/** dropgen without blocking this process's event loop (the webhook receiver lives here). */
async function dropgenAsync(args: string[], netns: string): Promise<void> {
  await run('ip', ['netns', 'exec', netns, dropgenBinary(), ...args], { timeout: 60_000 });
}

describe('serve: lifecycle', { skip: SKIP }, () => {
  test('stop, start and SIGTERM remove the tracefs instance; the recording is closed and readable', async () => {
    const s = await new Served(['--source', 'tracefs', '--interval', '0.5', '--no-counters']).ready();
    const instance = `${TRACEFS}/instances/dropmon-${s.proc.pid}`;
    let finished = false;
    try {
      assert.ok(existsSync(instance), 'instance while running');
      assert.equal((await s.call('POST', '/api/v1/stop')).json.state, 'stopped');
      assert.ok(!existsSync(instance), 'no instance once stopped');
      assert.equal((await s.call('POST', '/api/v1/start')).json.state, 'running');
      assert.ok(existsSync(instance), 'instance again');
      await new Promise((r) => setTimeout(r, 1200));
      const db = s.db;
      const fin = await s.proc.stop('SIGTERM', 15_000);
      finished = true;
      assert.equal(fin.code, 0, fin.stderr);
      assert.match(fin.stderr, /SIGTERM: stopping/);
      assert.ok(!existsSync(instance), 'no instance after SIGTERM');
      const rec = openRecording(db);
      try {
        const meta = rec.meta();
        assert.equal(meta.sessions.length, 2, 'one session per run');
        assert.ok(meta.sessions.every((x) => x.endedMs !== null), 'every session was closed');
        assert.ok(rec.totals().intervals >= 2);
      } finally {
        rec.close();
      }
    } finally {
      if (!finished) await s.stop();
      else await s.stop().catch(() => undefined);
    }
  });

  test('SIGHUP re-reads the config file and applies it; a bad file leaves the running config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropmon-reload-'));
    const conf = join(dir, 'dropmon.yaml');
    writeFileSync(conf, 'interval: 1s\ncounters: false\n');
    const t = await new Served(['--config', conf], { record: false }).ready();
    try {
      assert.equal((await t.get('/api/v1/status')).json.intervalMs, 1000);
      writeFileSync(conf, 'interval: 500ms\ncounters: false\nfilters:\n  reasons: [NO_SOCKET]\n');
      t.proc.child.kill('SIGHUP');
      await t.until('reloaded', async () => ((await t.get('/api/v1/config')).json.intervalMs === 500 ? true : undefined));
      const c = (await t.get('/api/v1/config')).json;
      assert.deepEqual(c.filters.reasons, ['NO_SOCKET']);
      assert.equal((await t.get('/api/v1/status')).json.state, 'running');
      assert.match(t.proc.stderr, /configuration reloaded/);

      writeFileSync(conf, 'interval: 500ms\nfilters:\n  reasons: [NOT_A_REASON_AT_ALL]\n');
      t.proc.child.kill('SIGHUP');
      await t.until('reload refused', async () => (/reload failed, the previous configuration stays: .*filters\.reasons/.test(t.proc.stderr) ? true : undefined));
      assert.deepEqual((await t.get('/api/v1/config')).json.filters.reasons, ['NO_SOCKET']);
      assert.equal((await t.get('/api/v1/status')).json.state, 'running');
      // Several reloads in a row are not a stop signal.
      t.proc.child.kill('SIGHUP');
      t.proc.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await t.get('/api/v1/status')).json.state, 'running');
    } finally {
      const fin = await t.stop();
      rmSync(dir, { recursive: true, force: true });
      assert.equal(fin.code, 0, fin.stderr);
    }
  });

  test('an alert fires during a drop storm and resolves after it, on stdout and to a webhook', { timeout: 60_000 }, async () => {
    const received: { status: string; rule: string; rate: number }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { status: string; rule: string; rate: number });
        res.statusCode = 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const ns = new TestNetns('alert');
    const dir = mkdtempSync(join(tmpdir(), 'dropmon-alerts-'));
    const conf = join(dir, 'alerts.yaml');
    writeFileSync(
      conf,
      `interval: 500ms
counters: false
alerts:
  rules:
    - { name: no-socket-storm, kind: reason, match: NO_SOCKET, above: 1000, below: 10, for: 1s }
  webhooks:
    - url: http://127.0.0.1:${port}/hook
`,
    );
    const s = await new Served(['--config', conf], { record: false }).ready();
    try {
      await dropgenAsync(['-m', 'noport', '-d', '3', '-p', '9'], ns.name);
      await s.until('firing and resolved at the webhook', async () => (received.some((r) => r.status === 'resolved') ? true : undefined), 15_000);
      assert.deepEqual(received.map((r) => r.status), ['firing', 'resolved']);
      assert.equal(received[0].rule, 'no-socket-storm');
      assert.ok(received[0].rate > 1000);
      assert.match(s.proc.stdout, /^dropmon: alert FIRING no-socket-storm: drops NO_SOCKET at [\d.]+\/s > 1000\/s for \d+ s$/m);
      assert.match(s.proc.stdout, /^dropmon: alert RESOLVED no-socket-storm: drops NO_SOCKET at [\d.]+\/s < 10\/s$/m);
    } finally {
      const fin = await s.stop();
      rmSync(dir, { recursive: true, force: true });
      ns.delete();
      server.close();
      assert.equal(fin.code, 0, fin.stderr);
    }
  });
});
