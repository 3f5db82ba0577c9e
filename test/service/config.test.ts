/**
 * The service configuration: defaults, the YAML file, flags over the file,
 * and errors that name the key. Fuzzed: whatever the document, the result
 * is a config or a ConfigError, never another exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  ConfigError,
  DEFAULT_CONFIG,
  applyConfig,
  applyRuntimeChange,
  checkExposure,
  isLoopback,
  loadConfigFile,
  parseListen,
  publicConfig,
  resolveToken,
} from '../../src/service/config.js';
import { HttpError, parseTimeParam, tokenMatches } from '../../src/service/http.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

function throwsAt(fn: () => unknown, key: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.match(err.message, typeof key === 'string' ? new RegExp(`config: ${key.replace(/[.[\]]/g, '\\$&')}:`) : key);
    return true;
  });
}

test('defaults: loopback, 1 s intervals, counters on, a recording with retention', () => {
  assert.equal(DEFAULT_CONFIG.listen, '127.0.0.1:9947');
  assert.equal(DEFAULT_CONFIG.intervalMs, 1000);
  assert.equal(DEFAULT_CONFIG.counters.enabled, true);
  assert.ok(DEFAULT_CONFIG.recording.file.endsWith('.db'));
  assert.ok(DEFAULT_CONFIG.recording.maxAgeMs! > 0 && DEFAULT_CONFIG.recording.maxBytes! > 0);
});

test('the example config in contrib/ is valid', () => {
  const c = loadConfigFile(join(PROJECT_ROOT, 'contrib', 'dropmon.yaml'));
  assert.equal(c.listen, '127.0.0.1:9947');
  assert.ok(c.alerts.rules.length > 0, 'the example shows alert rules');
});

test('a YAML file: durations, sizes, filters as lists or comma strings, alerts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-config-'));
  try {
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      `listen: "[::1]:9000"
interval: 500ms
filters:
  reasons: NO_SOCKET, NETFILTER_DROP
  protocols: [ipv4]
counters: { netns: blue, driver: false }
recording: { file: /tmp/x.db, maxAge: 12h, maxSize: 200M }
alerts:
  rules:
    - { name: udp, kind: reason, match: NO_SOCKET, above: 100, below: 10, for: 30s }
  webhooks:
    - http://127.0.0.1:9/hook
`,
    );
    const c = loadConfigFile(file);
    assert.equal(c.listen, '[::1]:9000');
    assert.equal(c.intervalMs, 500);
    assert.deepEqual(c.filters.reasons, ['NO_SOCKET', 'NETFILTER_DROP']);
    assert.deepEqual(c.filters.protocols, ['ipv4']);
    assert.deepEqual(c.counters, { enabled: true, driver: false, netns: 'blue' });
    assert.deepEqual(c.recording, { file: '/tmp/x.db', maxAgeMs: 12 * 3_600_000, maxBytes: 200 * 1024 ** 2 });
    assert.deepEqual(c.alerts.rules[0], { name: 'udp', kind: 'reason', match: 'NO_SOCKET', above: 100, below: 10, forMs: 30_000 });
    assert.equal(c.alerts.webhooks[0].url, 'http://127.0.0.1:9/hook');
    writeFileSync(file, 'listen: [1, 2\n');
    assert.throws(() => loadConfigFile(file), /is not valid YAML/);
    writeFileSync(file, 'listen: a\nlisten: b\n');
    assert.throws(() => loadConfigFile(file), ConfigError, 'duplicate keys are an error');
    writeFileSync(file, 'filters:\n  reason: [NO_SOCKET]\n');
    assert.throws(() => loadConfigFile(file), /c\.yaml: config: filters\.reason: unknown key; known keys here: reasons, protocols, locations/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every error names the key and what was expected', () => {
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { sorce: 'tracefs' }), 'sorce');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { source: 'pcap' }), 'source');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { intervalMs: 5 }), 'intervalMs');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { interval: 'soon' }), 'interval');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { filters: { reasons: ['A', 3, {}] } }), 'filters.reasons[2]');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { listen: '1.2.3:80' }), 'listen');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { listen: '127.0.0.1:70000' }), 'listen');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { token: 'short' }), 'token');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { recording: { maxSize: '1K' } }), 'recording.maxSize');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { alerts: { rules: [{ name: 'a', kind: 'reason', match: 'X' }] } }), 'alerts.rules[0].above');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { alerts: { rules: [{ name: 'a', kind: 'reason', match: 'X', above: 1, below: 2 }] } }), 'alerts.rules[0].below');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { alerts: { rules: [{ name: 'a', kind: 'moon', match: 'X', above: 1 }] } }), 'alerts.rules[0].kind');
  const rule = { name: 'a', kind: 'reason', match: 'X', above: 1 };
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { alerts: { rules: [rule, rule] } }), 'alerts.rules[1].name');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { alerts: { webhooks: ['file:///etc/passwd'] } }), 'alerts.webhooks[0].url');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { filters: { locations: ['a\nb'] } }), 'filters.locations[0]');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, [1, 2]), /must be a mapping/);
});

test('run-time changes: only source, mode, intervalMs, filters and counters', () => {
  const c = applyRuntimeChange(DEFAULT_CONFIG, { intervalMs: 2000, filters: { reasons: ['NO_SOCKET'] }, counters: false });
  assert.equal(c.intervalMs, 2000);
  assert.deepEqual(c.filters, { reasons: ['NO_SOCKET'], protocols: [], locations: [] });
  assert.equal(c.counters.enabled, false);
  throwsAt(() => applyRuntimeChange(DEFAULT_CONFIG, { listen: '0.0.0.0:1' }), /listen: cannot be changed at run time/);
  throwsAt(() => applyRuntimeChange(DEFAULT_CONFIG, { recording: false }), /recording: cannot be changed/);
  throwsAt(() => applyRuntimeChange(DEFAULT_CONFIG, 'x'), /body: must be a JSON object/);
});

test('a token is required beyond loopback, and never shown', () => {
  assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost') && isLoopback('127.8.9.1'));
  assert.ok(!isLoopback('0.0.0.0') && !isLoopback('::') && !isLoopback('10.0.0.1'));
  checkExposure(DEFAULT_CONFIG, undefined);
  throwsAt(() => checkExposure({ ...DEFAULT_CONFIG, listen: '0.0.0.0:9947' }, undefined), /no token is set/);
  checkExposure({ ...DEFAULT_CONFIG, listen: '0.0.0.0:9947' }, 'x'.repeat(32));
  assert.equal(resolveToken(DEFAULT_CONFIG, { DROPMON_TOKEN: 'abcdefghijklmnopq' }), 'abcdefghijklmnopq');
  assert.throws(() => resolveToken(DEFAULT_CONFIG, { DROPMON_TOKEN: 'abc' }), ConfigError);
  const withToken = applyConfig(DEFAULT_CONFIG, { token: 's3cret-s3cret-s3cret' });
  assert.ok(!JSON.stringify(publicConfig(withToken)).includes('s3cret'));
  assert.deepEqual(parseListen('listen', '[::]:80'), { host: '::', port: 80 });
  assert.deepEqual(parseListen('listen', '9000'), { host: '127.0.0.1', port: 9000 });
});

test('http: public reads off by default; connection bounds as durations and counts, checked against each other', () => {
  assert.equal(DEFAULT_CONFIG.http.readOnlyPublic, false);
  const c = applyConfig(DEFAULT_CONFIG, { stateDir: '/srv/dropmon', http: { readOnlyPublic: true, maxConnections: 32, headersTimeout: '5s', idleTimeout: 30, eventStreamsPerClient: 2 } });
  assert.equal(c.stateDir, '/srv/dropmon');
  assert.deepEqual(c.http, { ...DEFAULT_CONFIG.http, readOnlyPublic: true, maxConnections: 32, headersTimeoutMs: 5000, idleTimeoutMs: 30_000, eventStreamsPerClient: 2 });
  assert.deepEqual(applyConfig(c, { http: { maxConnections: 64 } }).http.readOnlyPublic, true, 'keys left out keep their value');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { http: { headersTimeout: '40s' } }), /http\.headersTimeout: must not be longer than requestTimeout/);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { http: { eventStreams: 4, eventStreamsPerClient: 5 } }), /http\.eventStreamsPerClient/);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { http: { maxConnections: 0 } }), /http\.maxConnections/);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { http: { public: true } }), /http\.public: unknown key/);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { stateDir: 'relative/dir' }), /stateDir: must be an absolute path/);
  throwsAt(() => applyRuntimeChange(DEFAULT_CONFIG, { http: { readOnlyPublic: true } }), /http: cannot be changed at run time/);
});

test('queries: threads, queue, time limit and budget, checked; the time limit stays under the idle timeout', () => {
  assert.deepEqual(DEFAULT_CONFIG.queries, { workers: 2, queue: 16, timeoutMs: 20_000, maxRangeMs: 31 * 86_400_000, maxPoints: 1000, maxBuckets: 2000 });
  assert.ok(DEFAULT_CONFIG.queries.timeoutMs < DEFAULT_CONFIG.http.idleTimeoutMs);
  const c = applyConfig(DEFAULT_CONFIG, { queries: { workers: 1, queue: 0, timeout: '5s', maxRange: '7d', maxPoints: 50, maxBuckets: 100 } });
  assert.deepEqual(c.queries, { workers: 1, queue: 0, timeoutMs: 5000, maxRangeMs: 7 * 86_400_000, maxPoints: 50, maxBuckets: 100 });
  assert.equal(applyConfig(c, { queries: { workers: 2 } }).queries.timeoutMs, 5000, 'keys left out keep their value');
  assert.deepEqual(publicConfig(c).queries, c.queries);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { workers: 0 } }), 'queries.workers');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { workers: 17 } }), 'queries.workers');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { queue: -1 } }), 'queries.queue');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { timeout: 'soon' } }), 'queries.timeout');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { maxBuckets: 2001 } }), 'queries.maxBuckets');
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { rows: 5 } }), /queries\.rows: unknown key/);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { queries: { timeout: '60s' } }), /queries\.timeout: must be shorter than http\.idleTimeout \(60 s\)/);
  throwsAt(() => applyConfig(DEFAULT_CONFIG, { http: { idleTimeout: '10s' }, queries: { timeout: '15s' } }), 'queries.timeout');
  // An idle timeout below the (default) query time limit takes the limit down with it.
  assert.equal(applyConfig(DEFAULT_CONFIG, { http: { idleTimeout: '2s' } }).queries.timeoutMs, 1000);
  throwsAt(() => applyRuntimeChange(DEFAULT_CONFIG, { queries: { workers: 1 } }), /queries: cannot be changed at run time/);
});

test('fuzz: any document gives a config or a ConfigError', () => {
  const keys = ['listen', 'token', 'stateDir', 'http', 'source', 'mode', 'interval', 'intervalMs', 'filters', 'counters', 'recording', 'alerts', 'metrics', 'memoryIntervals', 'maxPoints', 'x'];
  const value = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.oneof(fc.string(), fc.integer(), fc.dictionary(fc.string(), fc.string())), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('reasons', 'rules', 'webhooks', 'file', 'maxAge', 'enabled', 'name', 'kind', 'above', 'readOnlyPublic', 'maxConnections', 'headersTimeout', 'eventStreamsPerClient'), fc.oneof(fc.string(), fc.integer(), fc.array(fc.anything(), { maxLength: 3 }))),
  );
  fc.assert(
    fc.property(fc.oneof(fc.anything(), fc.dictionary(fc.constantFrom(...keys), value)), (doc) => {
      try {
        applyConfig(DEFAULT_CONFIG, doc);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    }),
    { numRuns: Number(process.env.DROPMON_FUZZ_RUNS ?? 2000) },
  );
});

test('fuzz: query parameters give a time or an HttpError; token comparison never throws', () => {
  fc.assert(
    fc.property(fc.option(fc.string({ maxLength: 80 }), { nil: null }), (v) => {
      try {
        const t = parseTimeParam('from', v, 1_800_000_000_000);
        assert.ok(t === undefined || Number.isFinite(t));
      } catch (err) {
        if (!(err instanceof HttpError) || err.status !== 400) throw err;
      }
    }),
    { numRuns: Number(process.env.DROPMON_FUZZ_RUNS ?? 2000) },
  );
  fc.assert(fc.property(fc.string(), fc.string({ minLength: 1 }), (a, b) => assert.equal(tokenMatches(a, b), a === b)));
  assert.equal(parseTimeParam('to', '-15m', 1_000_000_000), 1_000_000_000 - 900_000);
  assert.equal(parseTimeParam('to', '2026-01-01T00:00:00Z', 0), Date.UTC(2026, 0, 1));
  assert.equal(parseTimeParam('to', '1795641576417', 0), 1795641576417);
  assert.equal(tokenMatches(undefined, 'x'.repeat(20)), false);
});
