/**
 * Drop reasons the knowledge base does not have (a newer kernel's, another
 * subsystem's): an honest generic entry, whatever the spelling.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadKnowledge } from '../../src/knowledge/load.js';
import type { KnowledgeBase } from '../../src/knowledge/base.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);
const kb: KnowledgeBase = loadKnowledge();

test('a reason the knowledge base does not have gets an honest generic entry', () => {
  const e = kb.explainReason('SKB_DROP_REASON_BRAND_NEW_THING');
  assert.equal(e.name, 'BRAND_NEW_THING');
  assert.equal(e.known, false);
  assert.equal(e.benign, 'no', 'an unknown reason is never called benign');
  assert.match(e.summary, /^BRAND_NEW_THING: a drop reason not in this version's knowledge base/);
  assert.match(e.meaning ?? '', /include\/net\/dropreason-core\.h.*SKB_DROP_REASON_BRAND_NEW_THING/);
  assert.ok(e.check.some((c) => c.includes('dropmon watch -r BRAND_NEW_THING --stack')));
  assert.ok(e.fix.length > 0);
  // The drop location's entry adds what it knows.
  const at = kb.explainReason('BRAND_NEW_THING', 'udp_queue_rcv_one_skb+0x1c/0x90');
  const sym = kb.symbol('udp_queue_rcv_one_skb');
  if (sym) {
    assert.match(at.meaning ?? '', /udp_queue_rcv_one_skb/);
    assert.deepEqual(at.symbols, ['udp_queue_rcv_one_skb']);
  }
  // A reason of a subsystem the knowledge base does not know points at that subsystem's header;
  // one of a known subsystem falls back to the subsystem's entry.
  assert.match(kb.explainReason('NEWSUBSYS/SOMETHING_NEW').meaning ?? '', /newsubsys subsystem/);
  assert.equal(kb.explainReason('OPENVSWITCH/SOMETHING_NEW').known, undefined);
  // Known entries are not marked.
  assert.equal(kb.explainReason('NO_SOCKET').known, undefined);
  // explain(): a reason of the running kernel is answered generically, not with a look-alike.
  const answer = kb.explain('SOCKET_RCVBUFF_NEW', 5, undefined, (n) => n === 'SOCKET_RCVBUFF_NEW');
  assert.equal(answer?.match, 'unknown');
  assert.equal(answer?.entry.known, false);
  assert.equal(kb.explain('SOCKET_RCVBUF', 5)?.match, 'fuzzy', 'a typo of a known reason still finds it');
});

test('unknown reasons of any spelling never throw and always say what they are', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.option(fc.string({ maxLength: 40 }), { nil: undefined }), (name, sym) => {
      const e = kb.explainReason(name, sym);
      assert.ok(e.summary.length > 0 && e.summary.length <= 100);
      assert.ok(e.check.length > 0 && e.fix.length > 0);
    }),
    { numRuns: Math.min(RUNS, 500) },
  );
});
