/**
 * Configuration changes apply one at a time, in the order they were asked
 * for, each from what the one before left (DropService.update): a PUT that
 * arrives while a reload (SIGHUP) is still waiting keeps what the reload sets
 * and is not undone by it; a reload asked for after a PUT makes the file
 * current, as documented. The real service (never started: a change only
 * validates and swaps the configuration) behind the real HTTP API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason } from '../helpers/env.js';
import { DropService } from '../../src/service/service.js';
import { ApiServer } from '../../src/service/http.js';
import { loadConfigFile, type ServiceConfig } from '../../src/service/config.js';

const SKIP = kernelSkipReason();
const TOKEN = 'config-order-token-0123456789';

describe('configuration changes in order', { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-config-order-'));
  const conf = join(dir, 'dropmon.yaml');
  let service: DropService;
  let api: ApiServer;
  let port = 0;

  before(async () => {
    writeFileSync(conf, 'interval: 2s\ncounters: false\nrecording: false\n');
    service = new DropService({ config: loadConfigFile(conf), warn: () => undefined, info: () => undefined });
    api = new ApiServer(service, { token: TOKEN });
    port = (await api.listen('127.0.0.1', 0)).port;
  });
  after(async () => {
    await api?.close();
    await service?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  async function put(body: unknown): Promise<{ status: number; json: ServiceConfig }> {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/config`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, json: (await r.json()) as ServiceConfig };
  }

  /** A reload as `serve` does it on SIGHUP; it reads the file once `gate` opens (its turn, held for the test). */
  function reload(gate: Promise<void>): Promise<ServiceConfig> {
    return service.update(async () => {
      await gate;
      return loadConfigFile(conf);
    }, 'reload');
  }

  test('a PUT that arrives while a reload waits keeps the reload, and the reload does not undo it', async () => {
    writeFileSync(conf, 'interval: 500ms\ncounters: false\nrecording: false\n');
    let open!: () => void;
    const reloaded = reload(new Promise<void>((r) => (open = r)));
    const answer = put({ filters: { reasons: ['NO_SOCKET'] } });
    // The PUT is in, behind the reload: it is answered only after the reload applies.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(service.config.intervalMs, 2000, 'nothing applied yet');
    open();
    const a = await answer;
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(a.json.intervalMs, 500, 'the PUT was applied over the reload, not over the configuration before it');
    assert.deepEqual(a.json.filters.reasons, ['NO_SOCKET']);
    assert.equal((await reloaded).intervalMs, 500);
    assert.equal(service.config.intervalMs, 500);
    assert.deepEqual(service.config.filters.reasons, ['NO_SOCKET'], 'the acknowledged PUT stays');
  });

  test('a reload asked for after a PUT makes the file current; a failed one changes nothing', async () => {
    const a = await put({ filters: { reasons: ['NO_SOCKET'] }, intervalMs: 700 });
    assert.equal(a.status, 200);
    writeFileSync(conf, 'interval: 1s\ncounters: false\nrecording: false\n');
    await reload(Promise.resolve());
    assert.equal(service.config.intervalMs, 1000);
    assert.deepEqual(service.config.filters.reasons, [], 'the file has no filter');

    writeFileSync(conf, 'interval: 1s\nfilters:\n  reasons: [NOT_A_REASON_AT_ALL]\n');
    await assert.rejects(reload(Promise.resolve()), /filters\.reasons/);
    const b = await put({ intervalMs: 300 });
    assert.equal(b.status, 200);
    assert.equal(b.json.intervalMs, 300);
    assert.deepEqual(b.json.filters.reasons, []);
  });

  test('many PUTs and reloads at once: each PUT answer holds what was asked, the last change wins', async () => {
    writeFileSync(conf, 'interval: 1s\ncounters: false\nrecording: false\n');
    const answers: Promise<{ status: number; json: ServiceConfig }>[] = [];
    const reloads: Promise<ServiceConfig>[] = [];
    for (let i = 0; i < 10; i++) {
      answers.push(put({ intervalMs: 1000 + (i + 1) * 100 }));
      if (i % 3 === 0) reloads.push(reload(Promise.resolve()));
    }
    const got = await Promise.all(answers);
    await Promise.all(reloads);
    got.forEach((a, i) => assert.equal(a.json.intervalMs, 1000 + (i + 1) * 100, `PUT ${i}`));
    // Every reload was queued before any PUT's request arrived: a PUT is the last change, not the file.
    assert.ok(got.some((a) => a.json.intervalMs === service.config.intervalMs) && service.config.intervalMs !== 1000, String(service.config.intervalMs));
  });
});
