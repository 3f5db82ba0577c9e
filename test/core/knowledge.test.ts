/**
 * The knowledge base: every kb file loads and validates, every drop reason the
 * kernel can report has an entry, every cross-reference resolves, fuzzy search
 * finds what operators type, the benign policy holds, bad files give clear
 * errors, and the fuzzy scorer never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { DropmonError } from '../../src/core/errors.js';
import { editDistance, loadKnowledge, tokenize, type KnowledgeBase } from '../../src/core/knowledge.js';
import { parseEventFormat } from '../../src/sources/tracefs/format.js';
import { fixtureText } from '../helpers/fixtures.js';
import { kernelTest, TRACEFS } from '../helpers/env.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);
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

test('loading is cached per folder', () => {
  assert.equal(loadKnowledge(), kb);
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

test('exact lookups accept the spellings kernels and tools print', () => {
  assert.equal(kb.reason('SKB_DROP_REASON_SOCKET_RCVBUFF')?.name, 'SOCKET_RCVBUFF');
  assert.equal(kb.reason('socket_rcvbuff')?.name, 'SOCKET_RCVBUFF');
  assert.equal(kb.reason('PTYPE_ABSENT')?.name, 'UNHANDLED_PROTO', 'the 5.18 name is an alias');
  assert.equal(kb.symbol('udp_destruct_common+0x5c/0x90')?.name, 'udp_destruct_common');
  assert.equal(kb.symbol('nf_hook_slow+0x3a1/0x4c0 [nf_tables]')?.name, 'nf_hook_slow');
  assert.equal(kb.counter('Udp:RcvbufErrors@udp 127.0.0.1:53')?.name, 'Udp:RcvbufErrors');
  assert.equal(kb.counter('udp6:rcvbuferrors')?.name, 'Udp:RcvbufErrors', 'IPv6 twin is an alias');
  assert.equal(kb.counter('ethtool-S:rx_queue_3_drops')?.name, 'ethtool-S:rx_queue_N_drops', 'driver names match patterns');
  assert.equal(kb.counter('trap:blackhole_route')?.name, 'trap:<name>');
  assert.equal(kb.trap('trap:blackhole_route')?.name, 'blackhole_route');
  assert.equal(kb.lookup('trap:tail_drop')?.kind, 'trap', 'a trap name wins over the trap-counter family');
  assert.equal(kb.lookup('SKB_DROP_REASON_NO_SOCKET')?.name, 'NO_SOCKET');
  assert.equal(kb.lookup('conntrack:chaintoolong')?.name, 'conntrack:chainlength');
  assert.equal(kb.lookup('no such thing'), undefined);
});

test('counter <-> reason pairs work from either side (the pairs watch correlates)', () => {
  const pairs: [string, string][] = [
    ['Udp:RcvbufErrors', 'SOCKET_RCVBUFF'],
    ['Udp:InErrors', 'SOCKET_RCVBUFF'],
    ['Udp6:RcvbufErrors', 'SOCKET_RCVBUFF'],
    ['socket:drops', 'SOCKET_RCVBUFF'],
    ['Udp:MemErrors', 'PROTO_MEM'],
    ['Udp:NoPorts', 'NO_SOCKET'],
    ['softnet:dropped', 'CPU_BACKLOG'],
    ['link:rx_dropped', 'UNHANDLED_PROTO'],
    ['link:rx_dropped', 'CPU_BACKLOG'],
    ['link:rx_otherhost_dropped', 'OTHERHOST'],
    ['TcpExt:IPReversePathFilter', 'IP_RPFILTER'],
    ['IpExt:InNoRoutes', 'IP_INNOROUTES'],
    ['Ip:InAddrErrors', 'IP_INADDRERRORS'],
    ['Ip:InHdrErrors', 'IP_CSUM'],
    ['Tcp:InCsumErrors', 'TCP_CSUM'],
    ['TcpExt:TCPBacklogDrop', 'SOCKET_BACKLOG'],
    ['TcpExt:ListenOverflows', 'TCP_LISTEN_OVERFLOW'],
    ['TcpExt:TCPRcvQDrop', 'PROTO_MEM'],
    ['TcpExt:TCPZeroWindowDrop', 'TCP_ZEROWINDOW'],
    ['qdisc:drops', 'QDISC_DROP'],
    ['conntrack:drop', 'NETFILTER_DROP'],
    ['arp_cache:unresolved_discards', 'NEIGH_QUEUEFULL'],
  ];
  for (const [counter, reason] of pairs) {
    assert.ok(kb.reasonsForCounter(counter).includes(reason), `${counter} -> ${reason}: ${kb.reasonsForCounter(counter).join(',')}`);
    const canonical = kb.counter(counter)!.name;
    assert.ok(kb.countersForReason(reason).includes(canonical), `${reason} -> ${canonical}: ${kb.countersForReason(reason).join(',')}`);
  }
  assert.ok(kb.reasonsForCounter('link:rx_dropped').includes('PTYPE_ABSENT'), "old spellings pair too (events of 5.18)");
  assert.deepEqual(kb.reasonsForCounter('link:rx_missed_errors'), [], 'NIC overruns have no drop reason');
  assert.equal(kb.counter('link:rx_missed_errors')?.blindSpot, true);
  assert.equal(kb.counter('softnet:time_squeeze')?.drop, false);
  assert.equal(kb.counter('socket:rx_queue')?.gauge, true);
});

test('benign policy: teardown and promiscuous noise is benign, real loss is not', () => {
  assert.equal(kb.benign('QUEUE_PURGE'), 'usually');
  assert.equal(kb.benign('TCP_CLOSE'), 'usually');
  assert.equal(kb.benign('OTHERHOST'), 'usually');
  assert.equal(kb.benign('UNHANDLED_PROTO'), 'sometimes', 'benign on a promiscuous port, a missing module otherwise');
  assert.equal(kb.benign('SKB_DROP_REASON_NOT_SPECIFIED', 'udp_destruct_common+0x5c/0x90'), 'usually');
  assert.equal(kb.benign('NOT_SPECIFIED', 'unix_release_sock'), 'usually', 'a benign site with no listed reasons covers any reason');
  assert.equal(kb.benign('NOT_SPECIFIED'), 'sometimes');
  assert.equal(kb.benign('SOCKET_RCVBUFF'), 'no');
  assert.equal(kb.benign('SOCKET_RCVBUFF', 'udp_destruct_common'), 'no', 'a symbol decides only for the reasons it lists');
  assert.equal(kb.benign('CPU_BACKLOG', 'tcp_v4_rcv'), 'no');
  assert.equal(kb.benign('SOME_FUTURE_REASON'), 'no', 'unknown reasons are never called benign');
});

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

// ---------------------------------------------------------------------------
// Bad files give a DropmonError naming the file, the entry and the field.

const GOOD_REASON = `- name: SOME_REASON
  layer: socket
  summary: A test reason.
  benign: no
`;

function withKb(files: Partial<Record<'reasons' | 'counters' | 'traps' | 'symbols', string>>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-kb-'));
  try {
    for (const f of ['reasons', 'counters', 'traps', 'symbols'] as const) writeFileSync(join(dir, `${f}.yaml`), files[f] ?? '[]\n');
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertKbError(files: Parameters<typeof withKb>[0], ...parts: RegExp[]): void {
  withKb(files, (dir) => {
    assert.throws(
      () => loadKnowledge(dir),
      (err: unknown) => {
        assert.ok(err instanceof DropmonError, `a DropmonError, not ${String(err)}`);
        for (const p of parts) assert.match(err.message, p);
        return true;
      },
    );
  });
}

test('a minimal valid kb loads', () => {
  withKb({ reasons: GOOD_REASON }, (dir) => {
    const small = loadKnowledge(dir);
    assert.equal(small.reason('SOME_REASON')?.summary, 'A test reason.');
    assert.equal(small.all().length, 1);
  });
});

test('bad kb files: syntax, shape, fields and values are named', () => {
  assertKbError({ reasons: '- name: [unclosed\n' }, /reasons\.yaml/, /not valid YAML/);
  assertKbError({ counters: 'name: not-a-list\n' }, /counters\.yaml/, /YAML list/);
  assertKbError({ reasons: '- just a string\n' }, /entry 1 is not a mapping/);
  assertKbError({ reasons: GOOD_REASON.replace('  layer: socket\n', '') }, /entry 1 \(SOME_REASON\)/, /"layer" is required/);
  assertKbError({ reasons: GOOD_REASON.replace('layer: socket', 'layer: kernel') }, /"layer" must be one of/);
  assertKbError({ reasons: GOOD_REASON.replace('benign: no', 'benign: maybe') }, /"benign" must be one of/);
  assertKbError({ reasons: GOOD_REASON.replace('benign: no', 'benign: usually') }, /"benignWhen" is required/);
  assertKbError({ reasons: GOOD_REASON + '  colour: blue\n' }, /"colour" is not a field/);
  assertKbError({ reasons: GOOD_REASON + '  drop: true\n' }, /"drop" is for counters only/);
  assertKbError({ reasons: GOOD_REASON + '  since: 6.10\n' }, /"since" must be a quoted kernel version/);
  assertKbError({ reasons: GOOD_REASON + '  causes: oops\n' }, /"causes" must be a list/);
  assertKbError({ reasons: GOOD_REASON.replace('A test reason.', 'x'.repeat(101)) }, /"summary" is longer than 100/);
  assertKbError({ reasons: GOOD_REASON + GOOD_REASON }, /entry 2 \(SOME_REASON\)/, /duplicate/);
  assertKbError({ counters: GOOD_REASON.replace('SOME_REASON', 'x:y') }, /counters\.yaml/, /"drop" is required/);
  assertKbError({ counters: GOOD_REASON.replace('SOME_REASON', 'x:y') + "  drop: true\n  pattern: '('\n" }, /"pattern" is not a valid regular expression/);
  withKb({}, (dir) => {
    rmSync(join(dir, 'traps.yaml'));
    assert.throws(() => loadKnowledge(dir), /cannot read kb\/traps\.yaml/);
  });
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
