/**
 * What moved between two readings of a namespace's configuration: the
 * packets of each counted drop rule, the drops of each qdisc and their
 * kind-specific counters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configMoved, type ConfigFacts, type NftRuleFact } from '../../src/core/config-facts.js';

const rule = (handle: number, packets?: number): NftRuleFact => ({ family: 'inet', table: 't', chain: 'input', handle, text: `rule ${handle}`, verdict: 'drop', ...(packets !== undefined ? { packets } : {}) });

test('configMoved: rule counters and qdisc drops since the first reading', () => {
  const before: ConfigFacts = {
    sysctls: {},
    nft: { dropRules: [rule(1, 10), rule(2, 5), rule(3)], dropPolicies: [], rules: 3 },
    qdiscs: [{ iface: 'eth0', kind: 'fq_codel', handle: '0:0', parent: 'root', drops: 100, params: { limit: 10240, dropOverlimit: 7 } }],
  };
  const after: ConfigFacts = {
    sysctls: {},
    nft: { dropRules: [rule(1, 40), rule(2, 5), rule(3), rule(4, 9), rule(5, 2)], dropPolicies: [], rules: 5 },
    qdiscs: [
      { iface: 'eth0', kind: 'fq_codel', handle: '0:0', parent: 'root', drops: 130, params: { limit: 10240, dropOverlimit: 27 } },
      { iface: 'eth1', kind: 'tbf', handle: '1:0', parent: 'root', drops: 3 },
    ],
  };
  const m = configMoved(before, after);
  assert.deepEqual(
    m.nft?.dropRules.map((r) => [r.handle, r.moved ?? null]),
    [
      [1, 30],
      [2, 0],
      [3, null],
      [4, 9],
      [5, 2],
    ],
    'a rule new since the first reading moved by its whole count',
  );
  assert.equal(m.qdiscs?.[0].moved, 30);
  assert.deepEqual(m.qdiscs?.[0].movedParams, { dropOverlimit: 20 }, 'only counting parameters are diffed');
  assert.equal(m.qdiscs?.[1].moved, 3);
  // A counter that went down (the rule replaced, the qdisc reset) moved by its new value.
  const reset = configMoved(after, { ...after, nft: { ...after.nft!, dropRules: [rule(1, 4)] } });
  assert.equal(reset.nft?.dropRules[0].moved, 4);
  // A single reading stays one: nothing moved is claimed.
  assert.equal(configMoved(undefined, after), after);
});
