/** The diagnosis for a terminal and for scripts (outputs/diagnosis.ts), from findings written out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../src/core/diagnosis.js';
import { findingsJson, formatFindings, type DiagnosisSummary } from '../../src/outputs/diagnosis.js';

function finding(rank: number, key: string, cause: string, packets: number, more: Partial<Finding> = {}): Finding {
  return { rank, key, kind: 'drops', cause, packets, benign: 'no', known: true, blindSpot: false, evidence: [], check: [], fix: [], points: [], counters: [], interfaces: [], sockets: [], ...more };
}

const RCVBUF = finding(1, 'SOCKET_RCVBUFF', 'a UDP socket receive buffer was full', 120, {
  evidence: ['120 drops at __udp_enqueue_schedule_skb', 'Udp:RcvbufErrors +120'],
  check: ['ss -uam', 'netstat -su'],
  fix: ['raise net.core.rmem_max and the socket buffer (SO_RCVBUF)'],
  points: [{ location: '__udp_enqueue_schedule_skb+0x20', reason: 'SOCKET_RCVBUFF', count: 120 }],
  counters: [{ name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', delta: 120 }],
});
const MISSED = finding(2, 'link:rx_missed_errors', 'the NIC ran out of receive buffers', 50, {
  kind: 'counter',
  blindSpot: true,
  evidence: ['link:rx_missed_errors +50 on eth0'],
  check: ['ethtool -g eth0'],
  counters: [{ name: 'link:rx_missed_errors', scope: 'eth0', layer: 'nic', delta: 50 }],
});
const FIREWALL = finding(3, 'NETFILTER_DROP', 'a firewall rule dropped packets', 8, {
  benign: 'sometimes',
  benignWhen: 'when the rule is meant to drop them',
  evidence: ['8 drops at nft_do_chain'],
  points: [{ location: 'nft_do_chain+0x10 [nf_tables]', reason: 'NETFILTER_DROP', count: 8 }],
});
const PURGE = finding(4, 'QUEUE_PURGE', 'a socket was closed with data still queued', 3, { benign: 'usually', benignWhen: 'applications closing connections' });
const OTHERHOST = finding(5, 'OTHERHOST', 'packets for another host (promiscuous mode)', 2, { benign: 'usually' });
const ALL = [RCVBUF, MISSED, FIREWALL, PURGE, OTHERHOST];

const SUMMARY: DiagnosisSummary = { seconds: 10, intervals: 10, drops: 133, lost: 4, netns: 'ns1', notRead: ['ethtool: eth0: Operation not supported'] };

test('text: the summary, what could not be read, causes most packets first with evidence, check and fix, then the benign ones', () => {
  assert.equal(
    formatFindings(ALL, SUMMARY, 5),
    [
      'dropmon diagnose: 133 drops in 10 s, 4 events lost; counters of netns ns1',
      '  (not read: ethtool: eth0: Operation not supported)',
      '',
      'Likely causes, most packets first:',
      '',
      ' 1. a UDP socket receive buffer was full  [SOCKET_RCVBUFF, 120 packets]',
      '     evidence: 120 drops at __udp_enqueue_schedule_skb',
      '               Udp:RcvbufErrors +120',
      '     check:    ss -uam',
      '               netstat -su',
      '     fix:      raise net.core.rmem_max and the socket buffer (SO_RCVBUF)',
      '',
      ' 2. the NIC ran out of receive buffers  [link:rx_missed_errors, 50 packets, seen only in counters]',
      '     evidence: link:rx_missed_errors +50 on eth0',
      '     check:    ethtool -g eth0',
      '',
      ' 3. a firewall rule dropped packets  [NETFILTER_DROP, 8 packets]',
      '     sometimes benign: when the rule is meant to drop them',
      '     evidence: 8 drops at nft_do_chain',
      '',
      'Usually benign (expected in normal operation):',
      '  - QUEUE_PURGE: 3 packets: a socket was closed with data still queued (applications closing connections)',
      '  - OTHERHOST: 2 packets: packets for another host (promiscuous mode)',
      '',
    ].join('\n'),
  );
});

test('text: --top cuts both lists and says how to see the rest', () => {
  const plain: DiagnosisSummary = { seconds: 2.5, intervals: 3, drops: 133, lost: 0, notRead: [] };
  assert.equal(
    formatFindings(ALL, plain, 1),
    [
      'dropmon diagnose: 133 drops in 2.5 s',
      '',
      'Likely causes, most packets first:',
      '',
      ' 1. a UDP socket receive buffer was full  [SOCKET_RCVBUFF, 120 packets]',
      '     evidence: 120 drops at __udp_enqueue_schedule_skb',
      '               Udp:RcvbufErrors +120',
      '     check:    ss -uam',
      '               netstat -su',
      '     fix:      raise net.core.rmem_max and the socket buffer (SO_RCVBUF)',
      '',
      '  … 2 more causes (--top 3 shows them)',
      '',
      'Usually benign (expected in normal operation):',
      '  - QUEUE_PURGE: 3 packets: a socket was closed with data still queued (applications closing connections)',
      '  … 1 more',
      '',
    ].join('\n'),
  );
});

test('text: only benign drops, and nothing at all, each said plainly', () => {
  const quiet: DiagnosisSummary = { seconds: 5, intervals: 5, drops: 5, lost: 0, notRead: [] };
  assert.equal(
    formatFindings([PURGE, OTHERHOST], quiet, 5),
    [
      'dropmon diagnose: 5 drops in 5 s',
      '',
      'no problem found: only drops that are usually benign',
      'Usually benign (expected in normal operation):',
      '  - QUEUE_PURGE: 3 packets: a socket was closed with data still queued (applications closing connections)',
      '  - OTHERHOST: 2 packets: packets for another host (promiscuous mode)',
      '',
    ].join('\n'),
  );
  assert.equal(formatFindings([], { ...quiet, drops: 0 }, 5), 'dropmon diagnose: 0 drops in 5 s\n\nno packet was dropped and no drop counter moved\n');
});

test('JSON: the summary and every finding with all its fields; netns and benign_when only when set', () => {
  assert.deepEqual(findingsJson([FIREWALL, MISSED], { ...SUMMARY, netns: undefined }), {
    type: 'diagnosis',
    seconds: 10,
    intervals: 10,
    drops: 133,
    lost: 4,
    not_read: ['ethtool: eth0: Operation not supported'],
    findings: [
      {
        rank: 3, key: 'NETFILTER_DROP', kind: 'drops', cause: 'a firewall rule dropped packets', packets: 8, benign: 'sometimes',
        benign_when: 'when the rule is meant to drop them', known: true, blind_spot: false, evidence: ['8 drops at nft_do_chain'], check: [], fix: [],
        points: [{ location: 'nft_do_chain+0x10 [nf_tables]', reason: 'NETFILTER_DROP', count: 8 }], counters: [], interfaces: [], sockets: [],
      },
      {
        rank: 2, key: 'link:rx_missed_errors', kind: 'counter', cause: 'the NIC ran out of receive buffers', packets: 50, benign: 'no',
        known: true, blind_spot: true, evidence: ['link:rx_missed_errors +50 on eth0'], check: ['ethtool -g eth0'], fix: [],
        points: [], counters: [{ name: 'link:rx_missed_errors', scope: 'eth0', layer: 'nic', delta: 50 }], interfaces: [], sockets: [],
      },
    ],
  });
  assert.equal(findingsJson([], SUMMARY).netns, 'ns1');
});
