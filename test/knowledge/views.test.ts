/**
 * The knowledge base as its consumers ask it: the remembered view answers as
 * the knowledge base does (the generic entry of an unknown reason included),
 * and a report's counter classes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadKnowledge } from '../../src/knowledge/load.js';
import { cachedKnowledgeView, counterClassifier } from '../../src/knowledge/views.js';

const kb = loadKnowledge();

test('the remembered view answers as the knowledge base does', () => {
  const view = cachedKnowledgeView(kb);
  for (const name of ['Udp:RcvbufErrors', 'ethtool-S:rx_queue_3_drops', 'no:such_counter']) {
    assert.equal(view.counter(name), kb.counter(name));
    assert.equal(view.counter(name), view.counter(name), 'asked twice, one answer');
    assert.deepEqual(view.reasonsForCounter(name), kb.reasonsForCounter(name));
  }
  assert.deepEqual(view.countersForReason('SOCKET_RCVBUFF'), kb.countersForReason('SOCKET_RCVBUFF'));
  assert.equal(view.reason('NO_SOCKET'), kb.reason('NO_SOCKET'));
  assert.equal(view.symbol('udp_destruct_common+0x5c/0x90'), kb.symbol('udp_destruct_common'));
  assert.equal(view.trap('blackhole_route'), kb.trap('blackhole_route'));
  assert.equal(view.benign('NOT_SPECIFIED', 'unix_release_sock'), kb.benign('NOT_SPECIFIED', 'unix_release_sock'));
  assert.equal(view.explainReason('NO_SOCKET'), kb.reason('NO_SOCKET'));
  const unknown = view.explainReason('BRAND_NEW_THING', 'udp_queue_rcv_one_skb+0x1c/0x90');
  assert.equal(unknown.known, false);
  assert.deepEqual(unknown, kb.explainReason('BRAND_NEW_THING', 'udp_queue_rcv_one_skb+0x1c/0x90'));
});

test('counter classes: drops, related errors, the rest information', () => {
  const classify = counterClassifier(kb);
  assert.equal(classify('Udp:RcvbufErrors').class, 'drop');
  assert.match(classify('Udp:RcvbufErrors').meaning, /\S/);
  assert.equal(classify('ethtool-S:made_up_rx_discards').class, 'drop', 'an unknown driver name decides by its words');
  assert.equal(classify('ethtool-S:made_up_rx_crc_errors').class, 'related');
  assert.deepEqual(classify('ethtool-S:made_up_rx_packets'), { class: 'info', meaning: '' });
});
