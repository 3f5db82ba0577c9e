/**
 * Property-based fuzzing of the HTTP API (http.ts) without a kernel: the real
 * router on 127.0.0.1 (an ephemeral port) in front of a stand-in service that
 * holds real intervals, metrics and knowledge, some points symbolized and
 * some not. Whatever the request (method, path with odd encodings, query,
 * headers, body), the server answers with a valid status, never crashes,
 * answers 5xx only where docs/api.md says so, sends JSON that parses, and
 * shows no kernel address to a client without the token.
 *
 * DROPMON_FUZZ_RUNS sets the number of requests per property (`npm run fuzz`
 * runs the nightly size).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { ApiServer } from '../../src/service/http.js';
import { applyRuntimeChange, DEFAULT_CONFIG, type ServiceConfig } from '../../src/service/config.js';
import type { ServiceStatus } from '../../src/service/service.js';
import type { CountersView, ServicePort } from '../../src/service/service-port.js';
import { ServiceMetrics } from '../../src/service/metrics.js';
import { intervalJson, type IntervalJson } from '../../src/service/interval-json.js';
import { KallsymsTable, Symbolizer } from '../../src/kernel/kallsyms.js';
import { loadKnowledge } from '../../src/knowledge/load.js';
import type { Attribution } from '../../src/core/attribution.js';
import type { IntervalReport } from '../../src/core/interval.js';
import { syntheticInterval } from '../recording/synthetic.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 400);
const TOKEN = 'fuzz-token-0123456789';
/** A kernel address as the API must never show it to the public (redact.ts's patterns). */
const KERNEL_ADDRESS = /0x[0-9a-f]{9,16}\b|\bffff[0-9a-f]{12}\b/i;

const kb = loadKnowledge();
// Half of the synthetic points fall in a known function, the other half stay raw addresses.
const symbols = new Symbolizer(KallsymsTable.parse('ffffffff81000000 T __udp4_lib_rcv\nffffffff81000020 T ip_rcv_core\nffffffff81000030 t ovs_dp_process_packet\t[openvswitch]\nffffffff81000040 T _etext\n'));
const attribution: Attribution = {
  netns: (inode) => (inode === 4026531840 ? { name: 'init' } : { name: `ns\u001b[31m${inode}` }),
  ifname: (_n, i) => (i === 1 ? 'lo' : `eth${i}`),
  initInode: 4026531840,
  ownInode: 4026531840,
};

/** The part of DropService the router uses, with real intervals, metrics and knowledge. */
class StandInService extends EventEmitter implements ServicePort {
  config: ServiceConfig = { ...DEFAULT_CONFIG, recording: { file: '' } };
  readonly kb = kb;
  readonly symbols = symbols;
  readonly attribution = attribution;
  readonly metrics = new ServiceMetrics({ topLocations: 20, maxCounterSeries: 500, defaultMetrics: false }, kb, symbols, attribution);
  private running = true;
  private readonly reportsKept: IntervalReport[] = [];
  private readonly jsonKept: IntervalJson[] = [];

  constructor() {
    super();
    const t0 = Date.now() - 120_000;
    for (let seq = 1; seq <= 40; seq++) {
      const r = syntheticInterval(seq, t0, 1000, { points: 8, firstPoint: seq % 5, reasons: ['NO_SOCKET', 'NETFILTER_DROP', 'SOCKET_RCVBUFF', 'NOT_SPECIFIED'] });
      this.reportsKept.push(r);
      this.jsonKept.push(intervalJson(r, symbols, attribution, kb));
      this.metrics.interval(r);
    }
    this.metrics.setSourceUp(true);
  }

  get state(): 'running' | 'stopped' {
    return this.running ? 'running' : 'stopped';
  }

  intervals(limit = Infinity): IntervalJson[] {
    return this.jsonKept.slice(Math.max(0, this.jsonKept.length - limit));
  }

  reports(): readonly IntervalReport[] {
    return this.reportsKept;
  }

  counters(): Promise<CountersView> {
    return Promise.resolve({ enabled: false, at: null, counters: [], notRead: [] });
  }

  scrapeMetrics(): Promise<{ contentType: string; body: string }> {
    return this.metrics.scrape();
  }

  status(): ServiceStatus {
    return {
      version: '0.0.0',
      hostname: 'fuzz',
      kernel: '6.18.0',
      state: this.state,
      source: this.running ? 'tracefs' : null,
      sourceDescription: this.running ? 'kfree_skb via tracefs' : null,
      since: this.running ? new Date(0).toISOString() : null,
      intervalMs: this.config.intervalMs,
      drops: 1,
      lost: 0,
      intervals: this.jsonKept.length,
      recording: { file: null, bytes: 0, intervals: 0, unwritten: 0, state: null },
      counters: this.config.counters.enabled,
      alertsFiring: [],
    };
  }

  start(why = 'start'): Promise<void> {
    this.running = true;
    this.emit('state', { state: 'running', source: 'tracefs', since: new Date().toISOString(), why });
    return Promise.resolve();
  }

  stop(why = 'stop'): Promise<void> {
    this.running = false;
    this.emit('state', { state: 'stopped', source: null, since: null, why });
    return Promise.resolve();
  }

  change(change: unknown, why: string): Promise<ServiceConfig> {
    try {
      this.config = applyRuntimeChange(this.config, change);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.emit('state', { state: this.state, source: null, since: null, why });
    return Promise.resolve(this.config);
  }
}

const service = new StandInService();
let api: ApiServer;
let port = 0;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

before(async () => {
  api = new ApiServer(service, {
    token: TOKEN,
    http: { ...DEFAULT_CONFIG.http, readOnlyPublic: true, eventStreamsPerClient: 64, eventStreams: 64 },
    sse: { heartbeatMs: 60_000 },
  });
  port = (await api.listen('127.0.0.1', 0)).port;
});

after(async () => {
  agent.destroy();
  await api.close();
});

interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request; an event stream is read up to its first event, then closed. */
function send(r: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      const stream = /^text\/event-stream/.test(res.headers['content-type'] ?? '');
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (stream && /\n\n(?:.*\n)*data: .*\n\n/.test(Buffer.concat(chunks).toString('utf8'))) {
          req.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', (e) => (stream ? done() : reject(e)));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${r.method} ${r.path}`)));
    req.end(r.body);
  });
}

const ROUTES = [
  '/api/v1/status',
  '/api/v1/config',
  '/api/v1/start',
  '/api/v1/stop',
  '/api/v1/intervals',
  '/api/v1/points',
  '/api/v1/series',
  '/api/v1/counters',
  '/api/v1/diagnosis',
  '/api/v1/events',
  '/api/v1/explain/NO_SOCKET',
  '/api/v1/explain/',
  '/api/v2/status',
  '/metrics',
  '/',
  '/index.html',
  '/app.js',
  '/style.css',
  '/../package.json',
  '/.hidden.js',
];

/** Text the way a hostile client writes it: unicode, NULs, controls, encodings, huge and negative numbers. */
const oddText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', '0', '-1', '1e309', '-1e309', 'NaN', 'Infinity', '9'.repeat(40), '-9'.repeat(3), '0x10', '1.5', ' 7 ', '\u0000', '%00', '%', '%zz', '%c0%af', '%ff%fe'),
  fc.constantFrom('-15m', '-2h', '+5m', '-0s', '@1795641576', '@-1', '2026-11-25T21:00:00Z', '2026-13-45T99:99:99Z', '-99999999999d', 'now', '-1e400ms'),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.constantFrom('0xffffffff81000010', 'ffffffff81000010', 'NO_SOCKET', '__udp4_lib_rcv', '\u202e\u0007\u001b]0;x\u0007', 'a'.repeat(300)),
);

/** Percent-encode some characters (any byte, or a UTF-8 sequence of a unicode one). */
const encodedSegment = fc.array(fc.oneof(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 3 }), oddText.map(percentBytes), fc.nat(255).map((b) => `%${b.toString(16).padStart(2, '0')}`)), { maxLength: 6 }).map((a) => a.join(''));

/** Only what an HTTP client can put in a request line (node refuses the rest before sending). */
function requestTarget(s: string): string {
  return s.replace(/[^\u0021-\u007e]/gu, percentBytes);
}

/** The UTF-8 bytes of `s` as %XX (a lone surrogate becomes U+FFFD, as a client would send it). */
function percentBytes(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

const path = fc
  .tuple(
    fc.constantFrom(...ROUTES),
    fc.oneof(
      { weight: 8, arbitrary: fc.constant('') },
      fc.constantFrom('/', '//', '/.', '/..', '%2f', '%2F..%2F', '/%00', '%00', '?', '#frag', ';x'),
      encodedSegment.map((s) => `/${s}`),
    ),
    fc.array(fc.tuple(fc.constantFrom('from', 'to', 'limit', 'top', 'buckets', 'token', 'x', 'from[]', ''), fc.oneof(oddText, encodedSegment)), { maxLength: 4 }),
    fc.boolean(),
  )
  .map(([route, tail, query, encodeQuery]) => {
    const q = query.map(([k, v]) => `${k}=${encodeQuery ? percentBytes(v) : v}`).join('&');
    return requestTarget(`${route}${tail}${q ? `?${q}` : ''}`);
  });

const method = fc.oneof({ weight: 8, arbitrary: fc.constant('GET') }, { weight: 4, arbitrary: fc.constantFrom('HEAD', 'POST', 'PUT') }, fc.constantFrom('DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND', 'M-SEARCH'));

type Auth = 'admin' | 'public' | 'wrong';
const auth = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom<[Auth, string | undefined]>(['admin', `Bearer ${TOKEN}`], ['admin', `bearer   ${TOKEN}  `]) },
  { weight: 4, arbitrary: fc.constant<[Auth, string | undefined]>(['public', undefined]) },
  { weight: 1, arbitrary: fc.constantFrom<[Auth, string | undefined]>(['wrong', 'Bearer nope'], ['wrong', `Basic ${TOKEN}`], ['wrong', 'Bearer'], ['wrong', `Bearer ${TOKEN} extra`], ['wrong', `Bearer ${TOKEN}x`]) },
);

/** Config bodies: mostly the keys PUT accepts, with values of every type and size. */
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 0, 1e308, -1e308, 2 ** 53 + 1, 1e-320)),
    fc.boolean(),
    fc.constant(null),
    oddText,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('source', 'mode', 'intervalMs', 'filters', 'counters', 'reasons', 'protocols', 'locations', 'enabled', 'netns', 'scope', 'driver', '__proto__', 'constructor', 'x'), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const configBody = fc.dictionary(
  fc.constantFrom('source', 'mode', 'intervalMs', 'filters', 'counters', 'listen', 'token', 'recording', '__proto__'),
  fc.oneof(jsonValue, fc.constantFrom('auto', 'bpf', 'tracefs', 'netdm', 'summary', 'packet', 1000, 50, 3_600_000)),
  { maxKeys: 4 },
);

const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant<string | undefined>(undefined) },
  configBody.map((o) => JSON.stringify(o)),
  jsonValue.map((v) => JSON.stringify(v)),
  fc.constantFrom('{', '{"source":', 'source: tracefs\nmode: packet\n', '[]', '"x"', 'null', '\u0000', '{"filters":{"reasons":["NO_SOCKET"]}}', `${'['.repeat(5000)}${']'.repeat(5000)}`, `${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`, `{"filters":{"reasons":${'['.repeat(9000)}${']'.repeat(9000)}}}`, `{"counters":${'{"netns":'.repeat(3000)}1${'}'.repeat(3000)}}`, ' '.repeat(70_000)),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

const request$ = fc.record({
  method,
  path,
  auth,
  contentType: fc.oneof({ weight: 4, arbitrary: fc.constant('application/json') }, fc.constantFrom(undefined, 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/yaml', 'application/x-www-form-urlencoded', 'application/jsonp')),
  origin: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, fc.constantFrom('null', 'http://evil.example', 'http://127.0.0.1:PORT', 'not a url', 'http://localhost:PORT')),
  host: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('127.0.0.1:PORT', 'localhost:PORT', '[::1]:PORT') }, fc.constantFrom('evil.example', '127.0.0.1.evil.example', '')),
  extraHeaders: fc.dictionary(fc.constantFrom('x-forwarded-for', 'accept', 'last-event-id', 'cookie', 'x-odd'), oddText.map(requestTarget), { maxKeys: 3 }),
  body,
});

type FuzzRequest = typeof request$ extends fc.Arbitrary<infer T> ? T : never;

function toSent(r: FuzzRequest): { sent: Sent; audience: Auth } {
  const headers: Record<string, string> = { ...r.extraHeaders, host: r.host.replace('PORT', String(port)) };
  if (r.auth[1] !== undefined) headers.authorization = r.auth[1];
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.origin !== undefined) headers.origin = r.origin.replace('PORT', String(port));
  const bodyBytes = r.body === undefined || r.method === 'GET' || r.method === 'HEAD' ? undefined : Buffer.from(r.body, 'utf8');
  if (bodyBytes) headers['content-length'] = String(bodyBytes.length);
  // The token in the query counts on the event stream only (EventSource cannot send headers).
  const audience = r.auth[0] === 'public' && /^\/api\/v1\/events\?(?:.*&)?token=/.test(r.path) ? 'wrong' : r.auth[0];
  return { sent: { method: r.method, path: r.path, headers, body: bodyBytes }, audience };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return unescape(s);
  }
}

/** The properties every answer has, whoever asked. */
function checkAnswer(sent: Sent, audience: Auth, a: Answer): void {
  const what = `${sent.method} ${sent.path} -> ${a.status} ${a.body.slice(0, 300)}`;
  assert.ok(a.status >= 200 && a.status < 600, `a valid status: ${what}`);
  // docs/api.md: 503 for too many event streams or a busy query (with Retry-After), 504 for a range query
  // past its time limit; 500 only for a failure the service itself reports (never the router's "internal error").
  if (a.status >= 500) {
    const range = /^\/api\/v1\/(?:points|series|diagnosis)\b/.test(sent.path);
    const documented = a.status === 500 || (a.status === 503 && (sent.path.startsWith('/api/v1/events') || a.headers['retry-after'] !== undefined)) || (a.status === 504 && range);
    assert.ok(documented, `an undocumented 5xx: ${what}`);
    assert.doesNotMatch(a.body, /internal error/, `the router failed: ${what}`);
  }
  const type = String(a.headers['content-type'] ?? '');
  if (/^application\/json/.test(type) && sent.method !== 'HEAD') {
    const j = JSON.parse(a.body) as unknown;
    if (a.status >= 400) assert.equal(typeof (j as { error?: unknown }).error, 'string', `an error says what: ${what}`);
  }
  if (a.status === 401) assert.notEqual(audience, 'admin', `the token was refused: ${what}`);
  if (audience !== 'admin') {
    // An error may quote what the client sent: an address it wrote itself gives nothing away.
    const asked = `${safeDecode(sent.path)} ${sent.body?.toString('utf8') ?? ''}`.toLowerCase();
    const shown = [...a.body.matchAll(new RegExp(KERNEL_ADDRESS.source, 'gi'))].map((m) => m[0]).filter((m) => !asked.includes(m.toLowerCase()));
    assert.deepEqual(shown, [], `a kernel address shown without the token: ${what}`);
    if (a.status < 300 && !['GET', 'HEAD'].includes(sent.method)) assert.fail(`a change accepted without the token: ${what}`);
  }
}

test('HTTP API: random requests get a valid, documented answer', { timeout: 3_600_000 }, async (t) => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request$, async (r) => {
      const { sent, audience } = toSent(r);
      const a = await send(sent);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      checkAnswer(sent, audience, a);
    }),
    { numRuns: RUNS },
  );
  // What the requests reached (a run that only ever got 404s would prove little).
  t.diagnostic(`answers by status: ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ')}`);
  assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, 'the requests reach the handlers');
  // Still serving, and still the same service.
  const status = await send({ method: 'GET', path: '/api/v1/status', headers: { authorization: `Bearer ${TOKEN}` }, body: undefined });
  assert.equal(status.status, 200);
});

test('HTTP API: every read, public and admin, keeps kernel addresses to admins', async () => {
  const reads = ['/api/v1/status', '/api/v1/config', '/api/v1/intervals?limit=100', '/api/v1/points?from=-1h', '/api/v1/series?from=-1h', '/api/v1/diagnosis?from=-1h', '/api/v1/counters', '/api/v1/events', '/metrics'];
  let adminSawOne = false;
  for (const path of reads) {
    const pub = await send({ method: 'GET', path, headers: { host: `127.0.0.1:${port}` }, body: undefined });
    assert.equal(pub.status, 200, `${path}: ${pub.body.slice(0, 200)}`);
    assert.doesNotMatch(pub.body, KERNEL_ADDRESS, path);
    const adm = await send({ method: 'GET', path, headers: { authorization: `Bearer ${TOKEN}` }, body: undefined });
    assert.equal(adm.status, 200, path);
    adminSawOne ||= KERNEL_ADDRESS.test(adm.body);
  }
  assert.ok(adminSawOne, 'the stand-in has unsymbolized points (else the public check proves nothing)');
});

test('HTTP API: valid config changes with odd values are answered 200 or 400', async () => {
  await fc.assert(
    fc.asyncProperty(configBody, async (b) => {
      const text = JSON.stringify(b);
      const a = await send({ method: 'PUT', path: '/api/v1/config', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }, body: Buffer.from(text) });
      assert.ok(a.status === 200 || a.status === 400, `${text.slice(0, 200)} -> ${a.status} ${a.body.slice(0, 200)}`);
      JSON.parse(a.body);
    }),
    { numRuns: Math.max(10, Math.floor(RUNS / 4)) },
  );
});
