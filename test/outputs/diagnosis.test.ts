/** The diagnosis for a terminal and for scripts (outputs/diagnosis.ts), from findings written out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../src/core/diagnosis.js';
import { findingPlace, findingWhere, findingsJson, formatFindings, type DiagnosisSummary } from '../../src/outputs/diagnosis.js';

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

// Where: findings of the BPF source (namespace, interfaces), sockets from their counters, names from the attribution.
const WEB1 = 4026532871;
const WEB2 = 4026532999;
const INIT = 4026531840;
const IN_WEB1 = finding(1, 'SOCKET_RCVBUFF', 'a UDP socket receive buffer was full', 1000, {
  evidence: ['1000 drops at udp_queue_rcv_one_skb+0x1c', 'Udp:RcvbufErrors +1000', 'socket:drops +1000 on udp 10.1.0.2:7001 inode 5521 (pid 812 (python3))'],
  fix: ['raise the socket buffer (SO_RCVBUF)'],
  points: [{ location: 'udp_queue_rcv_one_skb+0x1c', reason: 'SOCKET_RCVBUFF', count: 1000 }],
  counters: [
    { name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', delta: 1000, netns: WEB1, netnsName: 'web-1' },
    { name: 'socket:drops', scope: 'udp 10.1.0.2:7001 inode 5521', layer: 'socket', delta: 1000, detail: 'pid 812 (python3)', netns: WEB1, netnsName: 'web-1' },
  ],
  netns: WEB1,
  netnsName: 'web-1',
  container: 'docker 3f2a1b0c9d8e',
  sockets: ['udp 10.1.0.2:7001 pid 812 (python3)'],
});
const ON_HOST = finding(2, 'NO_SOCKET', 'no socket listens on the port', 20, {
  points: [
    { location: '__udp4_lib_rcv+0x4bc', reason: 'NO_SOCKET', count: 12 },
    { location: '__udp6_lib_rcv+0x3a0', reason: 'NO_SOCKET', count: 6 },
    { location: 'tcp_v4_rcv+0x99', reason: 'NO_SOCKET', count: 2 },
  ],
  counters: [
    { name: 'Udp:NoPorts', scope: '', layer: 'udp', delta: 12, netns: INIT, netnsName: 'init' },
    { name: 'Udp6:NoPorts', scope: '', layer: 'udp', delta: 6, netns: INIT, netnsName: 'init' },
    { name: 'Tcp:OutRsts', scope: '', layer: 'tcp', delta: 2, netns: INIT, netnsName: 'init' },
    { name: 'Udp:InErrors', scope: '', layer: 'udp', delta: 1, netns: INIT, netnsName: 'init' },
  ],
  netns: INIT,
  netnsName: 'init',
  interfaces: [{ name: 'lo', ifindex: 1, count: 14 }, { name: 'eth0', ifindex: 2, count: 4 }, { ifindex: 9, count: 2 }],
});
const GONE = finding(3, 'TCP_LISTEN_OVERFLOW', 'the accept queue of a listening socket was full', 50, {
  kind: 'counter',
  blindSpot: true,
  counters: [
    { name: 'TcpExt:ListenOverflows', scope: '', layer: 'tcp', delta: 50, netns: WEB2 },
    { name: 'TcpExt:ListenDrops', scope: '', layer: 'tcp', delta: 50, netns: WEB2 },
  ],
  netns: WEB2,
  container: 'k8s pod 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b containerd 77aa00bb11cc',
  gone: Date.UTC(2024, 0, 2, 3, 4, 5),
});
const UNPLACED = finding(4, 'CPU_BACKLOG', 'the per-CPU backlog queue was full', 300, {
  points: [{ location: 'enqueue_to_backlog+0x1c', reason: 'CPU_BACKLOG', count: 300 }],
  counters: [
    { name: 'softnet:dropped', scope: 'cpu0', layer: 'softnet', delta: 320, hostWide: true },
    { name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', delta: 80, netns: WEB1, netnsName: 'web-1' },
  ],
});
const PURGE_WEB1 = finding(5, 'QUEUE_PURGE', 'a socket was closed with data still queued', 3, { benign: 'usually', netns: WEB1, netnsName: 'web-1' });

test('text: where a cause happened, on one line (the namespace, its container, the drops, interfaces, sockets, counters and where they were read)', () => {
  assert.equal(
    findingWhere(IN_WEB1),
    'netns web-1 (docker 3f2a…): 1000 x SOCKET_RCVBUFF at udp_queue_rcv_one_skb, udp 10.1.0.2:7001 pid 812 (python3); Udp:RcvbufErrors +1000 in that namespace',
  );
  assert.equal(
    findingWhere(ON_HOST),
    'host/init: 12 x NO_SOCKET at __udp4_lib_rcv, 6 x NO_SOCKET at __udp6_lib_rcv, … dev lo, eth0 and 1 more; Udp:NoPorts +12, Udp6:NoPorts +6, Tcp:OutRsts +2 in that namespace; …',
  );
  assert.equal(
    findingWhere(GONE),
    'netns 4026532999 (k8s pod 0f1e2d3c… containerd 77aa…, gone at 03:04:05 UTC): no drop event; TcpExt:ListenOverflows +50, TcpExt:ListenDrops +50 in that namespace',
  );
  assert.equal(
    findingWhere(UNPLACED),
    '300 x CPU_BACKLOG at enqueue_to_backlog; softnet:dropped +320 on cpu0 host-wide; Udp:RcvbufErrors +80 in netns web-1',
    'drops whose namespace the source cannot tell: nothing guessed, the counters say where they were read',
  );
  assert.equal(findingWhere(RCVBUF), undefined, 'nothing known of where: no line');
  assert.equal(findingPlace(IN_WEB1), 'netns web-1 (docker 3f2a…)');
  assert.equal(findingPlace(RCVBUF), '');
});

test('text: the line under each cause, and the namespace of benign ones', () => {
  const summary: DiagnosisSummary = { seconds: 10, intervals: 10, drops: 1303, lost: 0, notRead: [] };
  assert.equal(
    formatFindings([IN_WEB1, GONE, PURGE_WEB1], summary, 5),
    [
      'dropmon diagnose: 1303 drops in 10 s',
      '',
      'Likely causes, most packets first:',
      '',
      ' 1. a UDP socket receive buffer was full  [SOCKET_RCVBUFF, 1000 packets]',
      '     netns web-1 (docker 3f2a…): 1000 x SOCKET_RCVBUFF at udp_queue_rcv_one_skb, udp 10.1.0.2:7001 pid 812 (python3); Udp:RcvbufErrors +1000 in that namespace',
      '     evidence: 1000 drops at udp_queue_rcv_one_skb+0x1c',
      '               Udp:RcvbufErrors +1000',
      '               socket:drops +1000 on udp 10.1.0.2:7001 inode 5521 (pid 812 (python3))',
      '     fix:      raise the socket buffer (SO_RCVBUF)',
      '',
      ' 2. the accept queue of a listening socket was full  [TCP_LISTEN_OVERFLOW, 50 packets, seen only in counters]',
      '     netns 4026532999 (k8s pod 0f1e2d3c… containerd 77aa…, gone at 03:04:05 UTC): no drop event; TcpExt:ListenOverflows +50, TcpExt:ListenDrops +50 in that namespace',
      '',
      'Usually benign (expected in normal operation):',
      '  - QUEUE_PURGE (netns web-1): 3 packets: a socket was closed with data still queued',
      '',
    ].join('\n'),
  );
});

test('JSON: where, when known: netns, netns_name, container, gone; interfaces and sockets always', () => {
  const out = findingsJson([IN_WEB1, GONE, RCVBUF], { seconds: 1, intervals: 1, drops: 1, lost: 0, notRead: [] }) as { findings: Record<string, unknown>[] };
  const [web1, gone, nowhere] = out.findings;
  assert.deepEqual(
    [web1.netns, web1.netns_name, web1.container, web1.gone, web1.interfaces, web1.sockets],
    [WEB1, 'web-1', 'docker 3f2a1b0c9d8e', undefined, [], ['udp 10.1.0.2:7001 pid 812 (python3)']],
  );
  assert.deepEqual((web1.counters as unknown[])[0], { name: 'Udp:RcvbufErrors', scope: '', layer: 'udp', delta: 1000, netns: WEB1, netns_name: 'web-1' });
  assert.deepEqual(
    [gone.netns, gone.netns_name, gone.container, gone.gone],
    [WEB2, undefined, 'k8s pod 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b containerd 77aa00bb11cc', '2024-01-02T03:04:05.000Z'],
  );
  assert.ok(!('netns' in nowhere) && !('netns_name' in nowhere) && !('container' in nowhere) && !('gone' in nowhere), 'nothing said of where when not known');
  assert.deepEqual([nowhere.interfaces, nowhere.sockets], [[], []]);
});
