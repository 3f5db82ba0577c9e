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
  ['a flood of calls', "const all = []; for (let i = 1; i <= 5000; i++) all.push(frame({ t: 'call', id: i, method: 'counters', why: 'counters' })); ch.write(Buffer.concat(all));", /sent more than 2000 messages in a second/],
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
});
