/**
 * The contents of kb/: entries of every kind, every drop reason a kernel can
 * report has one (pinned tables of real kernels; the running kernel's missing
 * ones are reported, not failed), every cross-reference resolves, names are
 * unambiguous, and list items are whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadKnowledge } from '../../src/knowledge/load.js';
import type { KnowledgeBase } from '../../src/knowledge/base.js';
import { parseEventFormat } from '../../src/sources/tracefs/format.js';
import { fixtureText } from '../helpers/fixtures.js';
import { kernelTest, TRACEFS } from '../helpers/env.js';

const kb: KnowledgeBase = loadKnowledge();

/** The reason names of a kfree_skb format's __print_symbolic table (MAX is not a reason). */
function reasonTable(formatText: string): string[] {
  const table = parseEventFormat(formatText).symbolic.get('reason');
  assert.ok(table, 'the format has a reason table');
  return [...table.values()].filter((n) => n !== 'MAX');
}

test('every kb file loads and validates, with entries of every kind', () => {
  assert.ok(kb.all('reason').length >= 120);
  assert.ok(kb.all('counter').length >= 100);
  assert.ok(kb.all('trap').length >= 30);
  assert.ok(kb.all('symbol').length >= 20);
  for (const e of kb.all()) {
    assert.ok(e.summary.length <= 100, `${e.name}: summary too long`);
    if (e.benign !== 'no') assert.ok(e.benignWhen, `${e.name}: benign ${e.benign} needs benignWhen`);
  }
});

/**
 * Completeness is checked against reason tables captured from real kernels
 * and pinned in fixtures, so the result never depends on the host's kernel:
 * 5.17 (the first table), Debian 12's 6.1 and its backports' 6.12, two 6.18
 * builds (6.18.44 added SKB_RX_HEADROOM and renumbered the reasons after 98).
 */
for (const kernel of ['5.17', '6.1', '6.12', '6.18', '6.18.44']) {
  test(`every reason of the pinned ${kernel} table has an entry`, () => {
    const missing = reasonTable(fixtureText(`kernel-${kernel}/kfree_skb.format`)).filter((n) => !kb.reason(n));
    assert.deepEqual(missing, [], `add these to kb/reasons.yaml: ${missing.join(', ')}`);
  });
}

test('the running kernel: reasons the knowledge base lacks are reported, not failed (npm run check:reasons)', kernelTest(), (t) => {
  const missing = reasonTable(readFileSync(`${TRACEFS}/events/skb/kfree_skb/format`, 'latin1')).filter((n) => !kb.reason(n));
  // A kernel newer than the knowledge base is not a failure: dropmon explains such reasons generically.
  t.diagnostic(missing.length ? `reasons of this kernel not in kb/reasons.yaml: ${missing.join(', ')}` : 'every reason of this kernel has an entry');
  for (const n of missing) {
    const e = kb.explainReason(n);
    assert.equal(e.known, false);
    assert.match(e.summary, /not in this version's knowledge base/);
  }
});

test('every counters/reasons/symbols reference resolves to an entry or a pattern', () => {
  assert.deepEqual(kb.danglingReferences(), []);
});

test('no two entries of different kinds share a name; reason and function differ by case', () => {
  const seen = new Map<string, { kind: string; name: string }>();
  for (const e of kb.all()) {
    const key = e.name.toLowerCase();
    const other = seen.get(key);
    if (other && other.kind !== e.kind) {
      assert.ok(other.name !== e.name, `${e.name} is both a ${other.kind} and a ${e.kind}`);
      assert.equal(kb.lookup(e.name)?.kind, e.kind, `lookup(${e.name}) follows the case`);
      assert.equal(kb.lookup(other.name)?.kind, other.kind, `lookup(${other.name}) follows the case`);
    }
    seen.set(key, { kind: e.kind, name: e.name });
  }
  assert.equal(kb.lookup('QDISC_DROP')?.kind, 'reason');
  assert.equal(kb.lookup('qdisc_drop')?.kind, 'symbol');
});

test('list items are whole: no fix, check or cause split at a comma inside parentheses', () => {
  const kb = loadKnowledge();
  for (const e of kb.all())
    for (const field of ['fix', 'check', 'causes'] as const)
      for (const item of e[field]) {
        const open = (item.match(/\(/g) ?? []).length;
        const close = (item.match(/\)/g) ?? []).length;
        assert.equal(open, close, `${e.file} ${e.name} ${field}: ${JSON.stringify(item)} (quote items that contain commas)`);
      }
});
