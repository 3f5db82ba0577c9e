/**
 * What `top --remote` reads from another host: the event-stream framing and
 * the interval payloads. Good input parses to the view's model; any input
 * (fuzzed) either parses or is refused with a RemoteDataError / SseError
 * naming the field, never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SseError, SseParser } from '../../../src/sources/remote/sse.js';
import { RemoteDataError, parseIntervalEvent, parseStateEvent } from '../../../src/sources/remote/interval.js';
import { parseRemoteUrl } from '../../../src/sources/remote/client.js';
import { authHeaders, resolveClientToken } from '../../../src/sources/remote/auth.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 300);

const GOOD = {
  seq: 3,
  start: 1000,
  end: 2000,
  durationMs: 1000,
  drops: 12,
  lost: 1,
  lostByCause: { 'ring-buffer overrun cpu1': 1 },
  points: [
    {
      symbol: '__udp4_lib_rcv+0x4bc/0x6f0', function: '__udp4_lib_rcv', module: null, location: '0xffffffff81abcdef', reason: 'NO_SOCKET',
      protocol: 'ipv4', origin: 'software', count: 12, rate: 12, summary: 's', benign: 'sometimes', ifindex: 2, ifname: 'veth0', netns: 4026532000, netnsName: 'ns1', container: 'docker 3f2a',
    },
  ],
  overflow: { drops: 0, points: 0 },
  counters: [{ name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: 12, rate: 12, value: 99, class: 'drop', meaning: 'm' }],
  correlation: { groups: [{ reasons: ['NO_SOCKET'], counters: ['Udp:NoPorts'], drops: 12 }], blindSpots: [{ counter: 'Udp:NoPorts', scope: '', delta: 12, why: 'w' }] },
};

test('SSE framing: events split across chunks, CRLF, comments, retry, multi-line data', () => {
  const p = new SseParser();
  const text = 'retry: 2000\r\n\r\n: heartbeat\n\nevent: state\ndata: {"a":1}\n\nevent: interval\ndata: x\ndata: y\n\n';
  const events = [];
  for (let i = 0; i < text.length; i += 3) events.push(...p.push(text.slice(i, i + 3)));
  assert.deepEqual(events, [
    { event: 'state', data: '{"a":1}' },
    { event: 'interval', data: 'x\ny' },
  ]);
  assert.equal(p.retryMs, 2000);
});

test('an interval event parses to the live model, names and blind spots kept', () => {
  const r = parseIntervalEvent(GOOD);
  assert.equal(r.points[0].netns, 'ns1');
  assert.equal(r.points[0].container, 'docker 3f2a');
  assert.equal(r.points[0].ifname, 'veth0');
  assert.equal(r.points[0].symbol, '__udp4_lib_rcv+0x4bc');
  assert.equal(r.counters?.[0].blindSpot, 'w');
  assert.deepEqual(r.correlated, [{ reasons: ['NO_SOCKET'], counters: ['Udp:NoPorts'], drops: 12 }]);
  assert.throws(() => parseIntervalEvent({ ...GOOD, points: [{ ...GOOD.points[0], count: 'many' }] }), /interval\.points\[0\]\.count: expected a number/);
  assert.throws(() => parseIntervalEvent({ ...GOOD, end: 10 }), /interval\.end: is before start/);
  assert.equal(parseStateEvent({ state: 'running', source: 'bpf', config: { intervalMs: 500 } }).intervalMs, 500);
});

test('fuzz: any JSON value as an interval parses or is refused with a named field', () => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), fc.record({ ...Object.fromEntries(Object.keys(GOOD).map((k) => [k, fc.jsonValue()])) }, { requiredKeys: [] })), (v) => {
      try {
        const r = parseIntervalEvent(v);
        assert.ok(Array.isArray(r.points));
      } catch (err) {
        assert.ok(err instanceof RemoteDataError, String(err));
      }
    }),
    { numRuns: RUNS },
  );
  // Mutations of a good payload: one field replaced by anything.
  const paths: string[][] = [['seq'], ['drops'], ['points'], ['counters'], ['correlation'], ['lostByCause'], ['overflow'], ['points', '0', 'count'], ['points', '0', 'benign'], ['points', '0', 'netns'], ['correlation', 'groups'], ['correlation', 'blindSpots']];
  fc.assert(
    fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
      const doc = structuredClone(GOOD) as unknown as Record<string, unknown>;
      let o: Record<string, unknown> = doc;
      for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
      o[path[path.length - 1]] = value;
      try {
        parseIntervalEvent(doc);
      } catch (err) {
        assert.ok(err instanceof RemoteDataError, String(err));
      }
    }),
    { numRuns: RUNS },
  );
});

test('fuzz: any byte stream through the SSE parser gives events or an SseError', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom('\n', '\r', '\r\n', 'data: ', 'event: interval\n', 'retry: 9\n', ':x\n')), { maxLength: 60 }), (chunks) => {
      const p = new SseParser();
      try {
        for (const c of chunks) for (const e of p.push(c)) assert.equal(typeof e.data, 'string');
      } catch (err) {
        assert.ok(err instanceof SseError, String(err));
      }
    }),
    { numRuns: RUNS },
  );
});

test('remote URL and token: forms accepted, mistakes named', () => {
  assert.equal(parseRemoteUrl('127.0.0.1:9947').href, 'http://127.0.0.1:9947/');
  assert.equal(parseRemoteUrl('https://mon.example/dropmon').href, 'https://mon.example/dropmon/');
  assert.throws(() => parseRemoteUrl('ftp://x'), /only http/);
  assert.throws(() => parseRemoteUrl('http://u:p@x'), /not in the URL/);
  assert.equal(resolveClientToken({ env: { DROPMON_TOKEN: ' abc ' } }), 'abc');
  assert.equal(resolveClientToken({ token: 't', env: { DROPMON_TOKEN: 'e' } }), 't');
  assert.throws(() => resolveClientToken({ tokenFile: '/nonexistent/dropmon-token' }), /cannot read --token-file/);
  assert.deepEqual(authHeaders('x'), { authorization: 'Bearer x' });
  assert.deepEqual(authHeaders(undefined), {});
});
