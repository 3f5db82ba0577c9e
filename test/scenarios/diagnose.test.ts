/**
 * For every scenario: run `dropmon diagnose` while the drops happen for real,
 * and check that the true cause is ranked first, with the counters that
 * moved as its evidence.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelSkipReason } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { DropmonProcess } from '../helpers/dropmon.js';
import { dropgenBinary } from '../helpers/dropgen.js';
import { SCENARIOS, buildNet } from './scenarios.js';

interface JsonFinding {
  rank: number;
  key: string;
  kind: 'drops' | 'counter';
  cause: string;
  packets: number;
  benign: string;
  evidence: string[];
  fix: string[];
  counters: Array<{ name: string; scope: string; delta: number; detail?: string }>;
}

const SKIP = kernelSkipReason();

describe('diagnose ranks the true cause first', { skip: SKIP }, () => {
  after(() => TestNetns.cleanupAll());
  // Built before any diagnosis starts: compiling inside a scenario's window would delay its cause.
  if (!SKIP) dropgenBinary();
  let serial = 0;
  for (const sc of SCENARIOS) {
    const why = SKIP ? undefined : sc.skip?.();
    if (why) process.stderr.write(`# skipping scenario "${sc.name}": ${why}\n`);
    test(sc.name, { skip: why, timeout: 60_000 }, async () => {
      const net = buildNet(`s${serial++}`);
      try {
        sc.setup?.(net);
        const ns = sc.counters === 'a' ? net.a : net.b;
        // However slow the machine, every drop falls inside the diagnosis: it runs until
        // the cause is over, then Ctrl-C ends it with a last interval (drops and counters).
        const dm = new DropmonProcess(['diagnose', '--duration', '120', '--interval', '1', '--netns', ns.name, '--json']);
        await dm.ready(30_000, 'diagnosing');
        await sc.cause(net);
        const done = await dm.stop('SIGINT', 30_000);
        assert.equal(done.code, 0, done.stderr);
        const out = JSON.parse(done.stdout) as { findings: JsonFinding[] };
        const real = out.findings.filter((f) => f.benign !== 'usually');
        assert.ok(real.length > 0, `no finding: ${done.stdout}`);
        const first = real[0];
        const keys = typeof sc.cause_key === 'string' ? [sc.cause_key] : sc.cause_key;
        assert.ok(keys.includes(first.key), `first cause is ${first.key} (${first.cause}), expected ${keys.join(' or ')}; all: ${real.map((f) => `${f.key}=${f.packets}`).join(', ')}`);
        assert.equal(first.kind, sc.kind);
        for (const c of sc.counterDeltas ?? []) {
          const moved = first.counters.filter((x) => x.name === c.name).reduce((n, x) => n + x.delta, 0);
          assert.ok(moved >= c.min, `${c.name} moved by ${moved} in the evidence, expected >= ${c.min}: ${JSON.stringify(first.counters)}`);
        }
        if (sc.socketOwner) {
          const sock = first.counters.find((x) => x.name === 'socket:drops');
          assert.match(sock?.detail ?? '', new RegExp(`\\(${sc.socketOwner}\\)`), `the socket's owner is named: ${JSON.stringify(sock)}`);
        }
        for (const w of sc.causeMentions ?? []) assert.match(first.cause, new RegExp(w, 'i'));
        assert.ok(first.fix.length > 0 || first.evidence.length > 0, 'a finding says what to do');
      } finally {
        sc.restore?.();
        net.a.delete();
        net.b.delete();
      }
    });
  }
});
