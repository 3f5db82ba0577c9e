/**
 * For every scenario: run `dropmon diagnose` with no selection flags (no
 * --netns, no --source: the whole host, every namespace) while the drops
 * happen for real and other namespaces make noise, and check the top
 * finding: the true cause, the namespace it happened in, the counter that
 * confirms it, and a fix that says what to change. Usually-benign noise
 * must never rank above it.
 *
 * `--json` is the output format the assertions read and `--duration` a
 * bound: each diagnosis runs until the cause is over, then Ctrl-C ends it
 * with a last interval.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelSkipReason } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { DropmonProcess } from '../helpers/dropmon.js';
import { dropgenBinary } from '../helpers/dropgen.js';
import { patience } from '../helpers/patience.js';
import { SCENARIOS } from './catalog/index.js';
import { background, buildNet, deleteNet, restoreGlobals } from './net.js';
import { Noise } from './noise.js';

interface JsonFinding {
  rank: number;
  key: string;
  kind: 'drops' | 'counter';
  cause: string;
  packets: number;
  benign: string;
  evidence: string[];
  fix: string[];
  netns_name?: string;
  points?: Array<{ location: string; count: number }>;
  counters: Array<{ name: string; scope: string; delta: number; detail?: string; netns?: number; netns_name?: string }>;
}

const SKIP = kernelSkipReason();

/** Only the scenarios named in DROPMON_SCENARIOS (comma-separated, case-insensitive substrings) run, when it is set. */
function chosen(name: string): boolean {
  const only = process.env.DROPMON_SCENARIOS;
  return !only || only.split(',').some((w) => name.toLowerCase().includes(w.trim().toLowerCase()));
}

/** The findings in a line each for a failure's message: key, namespace, packets, where. */
const brief = (fs: JsonFinding[]) =>
  fs
    .slice(0, 6)
    .map((f) => `\n  ${f.key}@${f.netns_name ?? '?'}=${f.packets}${f.benign === 'usually' ? ' (benign)' : ''} ${f.points?.[0]?.location ?? f.counters[0]?.name ?? ''}`)
    .join('');

describe('diagnose of the whole host ranks the true cause first, where it happened', { skip: SKIP }, () => {
  let noise: Noise | undefined;
  before(() => {
    // Built before any diagnosis starts: compiling inside a scenario's window would delay its cause.
    dropgenBinary();
    if (process.env.DROPMON_SCENARIO_NOISE === '0') process.stderr.write('# no noise: DROPMON_SCENARIO_NOISE=0\n');
    else noise = new Noise();
  });
  after(() => {
    noise?.stop();
    background.stopAll();
    restoreGlobals();
    TestNetns.cleanupAll();
  });
  let serial = 0;
  for (const sc of SCENARIOS.filter((s) => chosen(s.name))) {
    const why = SKIP ? undefined : sc.skip?.();
    if (why) process.stderr.write(`# skipping scenario "${sc.name}": ${why}\n`);
    test(sc.name, { skip: why, timeout: patience(90_000) }, async () => {
      assert.ok(sc.counterDeltas?.length || sc.evidence, 'the scenario names what confirms its cause');
      const net = buildNet(`s${serial++}`, sc.net);
      const ns = net[sc.where];
      assert.ok(ns, `the scenario's network has namespace ${sc.where}`);
      let dm: DropmonProcess | undefined;
      try {
        sc.setup?.(net);
        dm = new DropmonProcess(['diagnose', '--json', '--duration', '120']);
        await dm.ready(patience(30_000), 'diagnosing');
        await sc.cause(net);
        const done = await dm.stop('SIGINT', patience(30_000));
        assert.equal(done.code, 0, done.stderr);
        const out = JSON.parse(done.stdout) as { findings: JsonFinding[] };
        // The diagnosis covers the whole host; the ranking judged is that of the namespaces this test made
        // (the scenario's and the noise's). What other programs on the host dropped meanwhile is reported, not failed.
        const ours = new Set([net.a.name, net.b.name, ...(net.c ? [net.c.name] : []), ...(noise?.names() ?? [])]);
        const judged = out.findings.filter((f) => f.netns_name !== undefined && ours.has(f.netns_name));
        const before = out.findings.slice(0, out.findings.indexOf(judged[0] ?? out.findings[0])).filter((f) => f.benign !== 'usually');
        if (before.length) process.stderr.write(`# ${sc.name}: ranked above it, from elsewhere on the host:${brief(before)}\n`);
        const elsewhere = out.findings.filter((f) => !judged.includes(f));
        out.findings = judged;
        assert.ok(out.findings.length > 0, `no finding: ${done.stdout}`);
        const first = out.findings[0];
        const keys = typeof sc.cause_key === 'string' ? [sc.cause_key] : sc.cause_key;
        // On a failure: the run's totals, and what was found outside this test's namespaces (a drop placed in no namespace shows here).
        const summary = () => `${JSON.stringify({ ...out, findings: undefined })}; elsewhere: ${brief(elsewhere) || 'none'}`;
        assert.ok(keys.includes(first.key), `first cause is ${first.key} (${first.cause}), expected ${keys.join(' or ')}; all: ${brief(out.findings)}; summary: ${summary()}`);
        assert.equal(first.kind, sc.kind);
        assert.equal(first.netns_name, ns.name, `the top finding is placed in the scenario's namespace; all: ${brief(out.findings)}`);
        for (const c of sc.counterDeltas ?? []) {
          const mine = first.counters.filter((x) => x.name === c.name && (x.netns_name === undefined || x.netns_name === ns.name));
          const moved = mine.reduce((n, x) => n + x.delta, 0);
          assert.ok(moved >= c.min, `${c.name} moved by ${moved} in the evidence, expected >= ${c.min}: ${JSON.stringify(first.counters)}; all: ${brief(out.findings)}; summary: ${summary()}`);
        }
        if (sc.evidence) assert.ok(first.evidence.some((l) => new RegExp(sc.evidence as string, 'i').test(l)), `evidence /${sc.evidence}/: ${JSON.stringify(first.evidence)}`);
        if (sc.socketOwner) {
          const sock = first.counters.find((x) => x.name === 'socket:drops');
          assert.match(sock?.detail ?? '', new RegExp(`\\(${sc.socketOwner}\\)`), `the socket's owner is named: ${JSON.stringify(sock)}`);
        }
        for (const w of sc.causeMentions ?? []) assert.match(first.cause, new RegExp(w, 'i'));
        assert.ok(
          first.fix.some((f) => new RegExp(sc.fix, 'i').test(f)),
          `a fix mentions /${sc.fix}/: ${JSON.stringify(first.fix)}`,
        );
      } finally {
        // A failed step leaves no diagnosis running into the next scenario.
        if (dm && dm.child.exitCode === null) dm.child.kill('SIGKILL');
        background.stopAll();
        restoreGlobals();
        deleteNet(net);
      }
    });
  }
});
