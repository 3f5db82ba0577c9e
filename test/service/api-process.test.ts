/**
 * The monitor against a hostile API process: programs in its place that
 * send a frame longer than allowed, bytes that are not JSON, a message they
 * may not send, or a flood of calls. Each is ended and a new one started,
 * and the monitor (this test's process) goes on; the address stays held
 * meanwhile, so nobody else can bind it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiProcess } from '../../src/service/api-process.js';
import { resolveApiUser } from '../../src/service/api-user.js';
import { DEFAULT_CONFIG, DEFAULT_HTTP } from '../../src/service/config.js';
import { DropService } from '../../src/service/service.js';
import { FrameReader, encodeFrame } from '../../src/service/api-frames.js';
import { CALLS, parseApiMessage } from '../../src/service/api-channel.js';
import fc from 'fast-check';

/** Cases per property (`npm run fuzz` raises it). */
const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);

const SKIP = process.getuid?.() !== 0 ? 'not root: only root starts a process as another user' : undefined;

/** A stand-in API process: says ready when the monitor's first message comes, then does `misbehave`. */
function stand(misbehave: string): string {
  return `
const net = require('node:net');
const ch = new net.Socket({ fd: 3, readable: true, writable: true });
const frame = (o) => { const p = Buffer.from(JSON.stringify(o)); const h = Buffer.alloc(4); h.writeUInt32BE(p.length); return Buffer.concat([h, p]); };
let started = false;
ch.on('data', () => {
  if (started) return;
  started = true;
  ch.write(frame({ t: 'ready', host: '127.0.0.1', port: 1 }));
  setTimeout(() => { ${misbehave} }, 200);
});
ch.on('close', () => process.exit(0));
ch.on('error', () => process.exit(0));
`;
}

const CASES: [string, string, RegExp][] = [
  ['a frame longer than allowed', 'const h = Buffer.alloc(4); h.writeUInt32BE(0x7fffffff); ch.write(h);', /sent a message of 2147483647 bytes \(at most 262144\)/],
  ['bytes that are not JSON', "const p = Buffer.from('{\"t\": call'); const h = Buffer.alloc(4); h.writeUInt32BE(p.length); ch.write(Buffer.concat([h, p]));", /sent a message it may not send/],
  ['a message it may not send', "ch.write(frame({ t: 'exec', command: 'id' }));", /sent a message it may not send/],
  ['a flood of calls', "const all = []; for (let i = 1; i <= 20000; i++) all.push(frame({ t: 'call', id: i, method: 'counters', why: 'counters' })); ch.write(Buffer.concat(all));", /sent more than 2000 messages in a second/],
];

describe('a hostile API process', { skip: SKIP }, () => {
  let dir: string;
  let service: DropService;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dropmon-apiproc-'));
    chmodSync(dir, 0o755);
    service = new DropService({ config: { ...DEFAULT_CONFIG, recording: { file: '' }, counters: { ...DEFAULT_CONFIG.counters, enabled: false } }, warn: () => undefined, info: () => undefined });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [what, misbehave, said] of CASES) {
    test(`sending ${what}: ended, replaced, and the monitor goes on`, async () => {
      const entry = join(dir, `${what.replace(/\W+/g, '-')}.cjs`);
      writeFileSync(entry, stand(misbehave), { mode: 0o644 });
      const warnings: string[] = [];
      const p = await ApiProcess.start(service, { token: 't'.repeat(32), http: DEFAULT_HTTP, host: '127.0.0.1', port: 0, entry }, resolveApiUser(undefined), (m) => warnings.push(m));
      try {
        const first = p.separate.pid;
        const t0 = Date.now();
        while (!warnings.some((w) => said.test(w)) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
        assert.ok(warnings.some((w) => said.test(w)), warnings.join('\n'));
        // Its end is reported and the next one starts, on the address the monitor kept.
        while (!warnings.some((w) => /the API process exited .*starts again in 1 s/.test(w)) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
        assert.ok(warnings.some((w) => /starts again in 1 s/.test(w)), warnings.join('\n'));
        const other = createServer();
        const bind = await new Promise<string>((resolve) => {
          other.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          other.listen(p.bound.port, '127.0.0.1', () => resolve('bound'));
        });
        other.close();
        assert.equal(bind, 'EADDRINUSE', 'the address stays the monitor\'s while the API process is replaced');
        while ((p.separate.pid === first || p.separate.pid === undefined) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
        assert.notEqual(p.separate.pid, first);
        assert.equal(service.status().state, 'stopped'); // the monitor answers, as it was
      } finally {
        await p.close();
      }
    });
  }
});

describe('frames', () => {
  test('split anywhere, frames come out whole; one over the limit is refused and ends the reading', () => {
    const msgs = ['a', 'bb'.repeat(1000), '', 'x'.repeat(70_000)].map((s) => Buffer.from(s));
    const stream = Buffer.concat(msgs.map((m) => encodeFrame(m)));
    for (const step of [1, 3, 4, 5, 64, 4096, stream.length]) {
      const r = new FrameReader(100_000);
      const got: string[] = [];
      for (let i = 0; i < stream.length; i += step) for (const f of r.push(stream.subarray(i, i + step))) got.push(f.toString());
      assert.deepEqual(got, msgs.map((m) => m.toString()), `step ${step}`);
    }
    const small = new FrameReader(10);
    assert.deepEqual(small.push(Buffer.concat([encodeFrame(Buffer.from('ok')), encodeFrame(Buffer.from('much too long'))])).map(String), ['ok']);
    assert.match(small.failed ?? '', /13 bytes \(at most 10\)/);
    assert.deepEqual(small.push(encodeFrame(Buffer.from('ok'))), []);
  });

  test('fuzz: any bytes, cut anywhere, never make the reader throw, and every frame it gives is one that was sent', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.nat(400), { maxLength: 10 }), (chunks, cuts) => {
        const r = new FrameReader(256);
        const all = Buffer.concat(chunks);
        let at = 0;
        for (const c of [...cuts, all.length]) {
          for (const f of r.push(all.subarray(at, at + c))) assert.ok(f.length <= 256);
          at += c;
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('fuzz: whatever JSON the API process sends, the monitor takes only the shapes it knows', () => {
    const message = fc.oneof(
      fc.jsonValue(),
      fc.record({ t: fc.constantFrom('call', 'ready', 'failed', 'exec', '__proto__'), id: fc.oneof(fc.integer(), fc.double(), fc.string()), method: fc.oneof(fc.constantFrom(...CALLS, 'constructor', 'toString'), fc.string()), why: fc.oneof(fc.string(), fc.constantFrom('config', 'stop')), change: fc.jsonValue(), host: fc.oneof(fc.string(), fc.integer()), port: fc.oneof(fc.integer(), fc.string()), message: fc.jsonValue() }, { requiredKeys: [] }),
    );
    fc.assert(
      fc.property(message, (m) => {
        const parsed = parseApiMessage(JSON.parse(JSON.stringify(m ?? null)));
        if (!parsed) return;
        assert.ok(['call', 'ready', 'failed'].includes(parsed.t));
        if (parsed.t === 'call') {
          assert.ok((CALLS as readonly string[]).includes(parsed.method));
          assert.ok(Number.isSafeInteger(parsed.id));
          assert.match(parsed.why, /^[a-z-]{1,20}$/);
        }
        if (parsed.t === 'failed') assert.ok(parsed.message.length <= 200);
      }),
      { numRuns: RUNS },
    );
  });
});
