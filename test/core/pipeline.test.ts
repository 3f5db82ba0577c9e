/** The pipeline's own logic (stop conditions, held intervals) with an in-process source. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from '../../src/core/pipeline.js';
import type { IntervalReport } from '../../src/core/interval.js';
import type { DropSink, DropSource } from '../../src/core/drop.js';

class ScriptedSource implements DropSource {
  readonly name = 'scripted';
  sink: DropSink | undefined;
  closed = false;
  constructor(private readonly perDrain: number) {}
  async start(sink: DropSink) {
    this.sink = sink;
  }
  drain() {
    this.sink!.drops([{ location: 0xffffffff81000000n, reason: 3, reasonName: 'NO_SOCKET', protocol: 0x800, origin: 'software', count: this.perDrain }]);
    this.sink!.loss({ lost: 1, cause: 'test' });
  }
  describe() {
    return 'a scripted source';
  }
  close() {
    this.closed = true;
  }
}

test('stops on --duration and reports every interval with its losses', async () => {
  const reports: IntervalReport[] = [];
  const p = new Pipeline({ source: new ScriptedSource(5), outputs: [{ interval: (r) => reports.push(r) }], intervalMs: 50, durationMs: 180 });
  assert.equal(await p.run(), 'duration');
  assert.ok(reports.length >= 3);
  assert.ok(reports.every((r) => r.drops === 5 && r.lostTotal === 1));
  assert.equal(p.drops, reports.length * 5);
});

test('stops once the drop count is reached', async () => {
  const source = new ScriptedSource(7);
  const p = new Pipeline({ source, outputs: [], intervalMs: 20, countLimit: 20 });
  assert.equal(await p.run(), 'count');
  assert.ok(p.drops >= 20);
});

test('filters apply to every sample', async () => {
  const reports: IntervalReport[] = [];
  const p = new Pipeline({ source: new ScriptedSource(5), outputs: [{ interval: (r) => reports.push(r) }], intervalMs: 20, durationMs: 70, filter: { reasons: [6] } });
  await p.run();
  assert.equal(p.drops, 0);
});

test('intervals wait for outputsReady, in order, and the end waits too', async () => {
  const reports: number[] = [];
  let ready!: () => void;
  const outputsReady = new Promise<void>((r) => (ready = r));
  setTimeout(ready, 120);
  const p = new Pipeline({ source: new ScriptedSource(1), outputs: [{ interval: (r) => reports.push(r.seq) }], intervalMs: 30, durationMs: 100, outputsReady });
  await p.run();
  assert.ok(reports.length >= 3);
  assert.deepEqual(reports, [...reports].sort((a, b) => a - b));
});
