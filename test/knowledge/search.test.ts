/**
 * Fuzzy search: what operators type (typos, case, partial words) finds the
 * right entry, and no query throws or costs more than a moment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadKnowledge } from '../../src/knowledge/load.js';
import type { KnowledgeBase } from '../../src/knowledge/base.js';
import { editDistance, tokenize } from '../../src/knowledge/search.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);
const kb: KnowledgeBase = loadKnowledge();

test('fuzzy search finds the right entry for typos, case and partial words', () => {
  const cases: [string, string][] = [
    ['rcvbuf', 'Udp:RcvbufErrors'],
    ['listen overflow', 'TcpExt:ListenOverflows'],
    ['SOCKET_RCVBUF', 'SOCKET_RCVBUFF'],
    ['socket_rcvbuf', 'SOCKET_RCVBUFF'],
    ['no_sockt', 'NO_SOCKET'],
    ['netfliter drop', 'NETFILTER_DROP'],
    ['unresolved discards', 'arp_cache:unresolved_discards'],
    ['tail drop', 'tail_drop'],
    ['udp_destruct', 'udp_destruct_common'],
    ['rx_missed', 'link:rx_missed_errors'],
    ['softnet dropped', 'softnet:dropped'],
    ['rp filter', 'IP_RPFILTER'],
    ['ListenOverflow', 'TcpExt:ListenOverflows'],
    ['cpu backlog', 'CPU_BACKLOG'],
    ['unhandled protocol', 'UNHANDLED_PROTO'],
  ];
  for (const [query, want] of cases) {
    const top = kb.search(query, 3).map((h) => h.entry.name);
    assert.ok(top.includes(want), `"${query}" should find ${want}, found ${top.join(', ')}`);
  }
  assert.equal(kb.search('SOCKET_RCVBUFF', 1)[0].score, 1, 'an exact name scores 1');
  assert.deepEqual(kb.search('zzqqxx', 5), [], 'nothing close gives nothing');
  assert.deepEqual(kb.search('', 5), []);
  assert.ok(kb.search('drop', 3, 'trap').every((h) => h.entry.kind === 'trap'));
});

test('tokenizer and edit distance', () => {
  assert.deepEqual(tokenize('TcpExt:TCPBacklogDrop'), ['tcp', 'ext', 'tcp', 'backlog', 'drop']);
  assert.deepEqual(tokenize('rx_missed_errors'), ['rx', 'missed', 'errors']);
  assert.equal(editDistance('netfliter', 'netfilter'), 1, 'a swap is one edit');
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('a', 'abcdefgh', 2), 3, 'gives up beyond max');
});

test('fuzz: search and lookups never throw and return bounded, sorted results', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), fc.nat(20), (q, limit) => {
      const hits = kb.search(q, limit);
      assert.ok(hits.length <= limit);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1].score >= hits[i].score);
      for (const h of hits) assert.ok(h.score > 0 && h.score <= 1);
      kb.lookup(q);
      kb.counter(q);
      kb.symbol(q);
      kb.benign(q, q);
      kb.reasonsForCounter(q);
      kb.countersForReason(q);
    }),
    { numRuns: RUNS },
  );
  // A pasted megabyte is cut, not scored character by character.
  const started = Date.now();
  kb.search('x'.repeat(1_000_000) + ' rcvbuf');
  assert.ok(Date.now() - started < 2000);
});
