/**
 * The parsers of the netlink counter readers on messages built as the kernel
 * lays them out (older and newer layouts), then fuzzed: truncated, mutated and
 * random messages give a value or a ParseError, never another exception. When
 * the kernel is usable, real dump replies of a namespace are fuzzed as well.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ParseError } from '../../../src/core/errors.js';
import { GENL_HDRLEN, genlPayload } from '../../../src/kernel/netlink/genl.js';
import {
  cstring,
  encodeAttrs,
  encodeMessage,
  flag,
  parseDone,
  parseEach,
  parseMessages,
  u16,
  u32,
  u8,
  type AttrSpec,
  type NlMessage,
} from '../../../src/kernel/netlink/message.js';
import { NETLINK_GENERIC, NETLINK_ROUTE, NetlinkSocket } from '../../../src/kernel/netlink/socket.js';
import { resolveFamily } from '../../../src/kernel/netlink/genl.js';
import { withNetns, resolveNetns } from '../../../src/kernel/setns.js';
import {
  DEVLINK_ATTR_BUS_NAME,
  DEVLINK_ATTR_DEV_NAME,
  DEVLINK_ATTR_STATS,
  DEVLINK_ATTR_STATS_RX_BYTES,
  DEVLINK_ATTR_STATS_RX_DROPPED,
  DEVLINK_ATTR_STATS_RX_PACKETS,
  DEVLINK_ATTR_TRAP_ACTION,
  DEVLINK_ATTR_TRAP_GROUP_NAME,
  DEVLINK_ATTR_TRAP_NAME,
  DEVLINK_ATTR_TRAP_POLICER_ID,
  DEVLINK_ATTR_TRAP_TYPE,
  DEVLINK_CMD_TRAP_NEW,
  DEVLINK_CMD_TRAP_POLICER_NEW,
  parsePolicerMessage,
  parseTrapMessage,
  policerReadings,
  trapReadings,
} from '../../../src/sources/counters/devlink.js';
import {
  ETHTOOL_A_HEADER_DEV_INDEX,
  ETHTOOL_A_HEADER_DEV_NAME,
  ETHTOOL_A_STATS_GRP,
  ETHTOOL_A_STATS_GRP_ID,
  ETHTOOL_A_STATS_GRP_SS_ID,
  ETHTOOL_A_STATS_GRP_STAT,
  ETHTOOL_A_STATS_HEADER,
  ETHTOOL_A_STRING_INDEX,
  ETHTOOL_A_STRING_VALUE,
  ETHTOOL_A_STRINGS_STRING,
  ETHTOOL_A_STRINGSET_ID,
  ETHTOOL_A_STRINGSET_STRINGS,
  ETHTOOL_A_STRINGSETS_STRINGSET,
  ETHTOOL_A_STRSET_HEADER,
  ETHTOOL_A_STRSET_STRINGSETS,
  ETHTOOL_MSG_STATS_GET_REPLY,
  ETHTOOL_MSG_STRSET_GET_REPLY,
  ETH_SS_STATS,
  parseDeviceStatNames,
  parseStatsReply,
  parseStringSets,
  standardReadings,
  statsRequest,
  stringSetsRequest,
  stringTable,
} from '../../../src/sources/counters/ethtool.js';
import {
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_STATS,
  IFLA_STATS64,
  LINK_STATS_FIELDS,
  RTM_GETLINK,
  RTM_GETQDISC,
  RTM_GETTCLASS,
  RTM_NEWLINK,
  RTM_NEWQDISC,
  RTM_NEWTCLASS,
  TCA_KIND,
  TCA_STATS,
  TCA_STATS2,
  TCA_STATS_BASIC,
  TCA_STATS_PKT64,
  TCA_STATS_QUEUE,
  formatTcHandle,
  linkDumpRequest,
  linkReadings,
  parseLinkMessage,
  parseTcMessage,
  tcDumpRequest,
  tcReadings,
} from '../../../src/sources/counters/rtnetlink.js';
import { kernelSkipReason } from '../../helpers/env.js';
import { DevlinkCatalog, parsePortMessage } from '../../../src/sources/counters/devlink-catalog.js';
import { TestNetns } from '../../helpers/netns.js';

const RUNS = Number(process.env.DROPMON_FUZZ_RUNS ?? 2000);

after(() => TestNetns.cleanupAll());

/** A message as parseMessages returns it. */
function message(type: number, payload: Uint8Array, flags = 2 /* NLM_F_MULTI */): NlMessage {
  return parseMessages(encodeMessage({ type, flags, seq: 1, pid: 0 }, payload))[0];
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function u64(n: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

function struct(words: readonly number[], size: 4 | 8): Uint8Array {
  const b = new Uint8Array(words.length * size);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => (size === 8 ? v.setBigUint64(i * 8, BigInt(w), true) : v.setUint32(i * 4, w, true)));
  return b;
}

function ifinfomsg(index: number, flags: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  return b;
}

function tcmsg(ifindex: number, handle: number, parent: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setInt32(4, ifindex, true);
  v.setUint32(8, handle, true);
  v.setUint32(12, parent, true);
  return b;
}

function linkMessage(opts: { stats64?: number; stats32?: number; promisc?: boolean; kind?: string } = {}): NlMessage {
  const attrs: AttrSpec[] = [{ type: IFLA_IFNAME, value: cstring('veth0') }];
  if (opts.kind) attrs.push({ type: IFLA_LINKINFO, value: [{ type: IFLA_INFO_KIND, value: cstring(opts.kind) }] });
  // field i holds 1000 + i, so each value says which field it is
  if (opts.stats64 !== undefined) attrs.push({ type: IFLA_STATS64, value: struct(Array.from({ length: opts.stats64 }, (_, i) => 1000 + i), 8) });
  if (opts.stats32 !== undefined) attrs.push({ type: IFLA_STATS, value: struct(Array.from({ length: opts.stats32 }, (_, i) => 2000 + i), 4) });
  return message(RTM_NEWLINK, concat(ifinfomsg(7, opts.promisc ? 0x1103 : 0x1003), encodeAttrs(attrs)));
}

const gnetBasic = (bytes: number, packets: number) => concat(u64(bytes), u32(packets), new Uint8Array(4));
const gnetQueue = (q: readonly number[]) => struct(q, 4);

function qdiscMessage(stats2: AttrSpec[] | undefined, legacy?: Uint8Array, type = RTM_NEWQDISC): NlMessage {
  const attrs: AttrSpec[] = [{ type: TCA_KIND, value: cstring('tbf') }];
  if (stats2) attrs.push({ type: TCA_STATS2, value: stats2 });
  if (legacy) attrs.push({ type: TCA_STATS, value: legacy });
  return message(type, concat(tcmsg(3, 0x10000, 0xffffffff), encodeAttrs(attrs)));
}

function ethtoolStatsMessage(): NlMessage {
  const stat = (index: number, v: number): AttrSpec => ({ type: ETHTOOL_A_STATS_GRP_STAT, value: [{ type: index, value: u64(v) }] });
  return message(
    21,
    genlPayload(ETHTOOL_MSG_STATS_GET_REPLY, 1, [
      { type: ETHTOOL_A_STATS_HEADER, value: [{ type: ETHTOOL_A_HEADER_DEV_INDEX, value: u32(4) }, { type: ETHTOOL_A_HEADER_DEV_NAME, value: cstring('eth1') }] },
      { type: 5 /* ETHTOOL_A_STATS_SRC */, value: u32(0) },
      { type: ETHTOOL_A_STATS_GRP, value: [{ type: ETHTOOL_A_STATS_GRP_ID, value: u32(0) }, { type: ETHTOOL_A_STATS_GRP_SS_ID, value: u32(17) }, stat(0, 3)] },
      { type: ETHTOOL_A_STATS_GRP, value: [{ type: ETHTOOL_A_STATS_GRP_ID, value: u32(1) }, { type: ETHTOOL_A_STATS_GRP_SS_ID, value: u32(18) }, stat(4, 7), stat(13, 2 ** 40)] },
      // a group the driver does not implement: id and string set, no counters
      { type: ETHTOOL_A_STATS_GRP, value: [{ type: ETHTOOL_A_STATS_GRP_ID, value: u32(3) }, { type: ETHTOOL_A_STATS_GRP_SS_ID, value: u32(20) }] },
    ]),
  );
}

function stringSetMessage(): NlMessage {
  const set = (id: number, names: Record<number, string>): AttrSpec => ({
    type: ETHTOOL_A_STRINGSETS_STRINGSET,
    value: [
      { type: ETHTOOL_A_STRINGSET_ID, value: u32(id) },
      {
        type: ETHTOOL_A_STRINGSET_STRINGS,
        value: Object.entries(names).map(([i, s]) => ({
          type: ETHTOOL_A_STRINGS_STRING,
          value: [{ type: ETHTOOL_A_STRING_INDEX, value: u32(Number(i)) }, { type: ETHTOOL_A_STRING_VALUE, value: cstring(s) }],
        })),
      },
    ],
  });
  return message(
    21,
    genlPayload(ETHTOOL_MSG_STRSET_GET_REPLY, 1, [
      { type: ETHTOOL_A_STRSET_STRINGSETS, value: [set(17, { 0: 'SymbolErrorDuringCarrier' }), set(18, { 4: 'FrameCheckSequenceErrors', 13: 'FramesLostDueToIntMACRcvError' })] },
    ]),
  );
}

function deviceNamesMessage(ifname: string, names: readonly string[]): NlMessage {
  return message(
    21,
    genlPayload(ETHTOOL_MSG_STRSET_GET_REPLY, 1, [
      { type: ETHTOOL_A_STRSET_HEADER, value: [{ type: ETHTOOL_A_HEADER_DEV_INDEX, value: u32(5) }, { type: ETHTOOL_A_HEADER_DEV_NAME, value: cstring(ifname) }] },
      {
        type: ETHTOOL_A_STRSET_STRINGSETS,
        value: [
          {
            type: ETHTOOL_A_STRINGSETS_STRINGSET,
            value: [
              { type: ETHTOOL_A_STRINGSET_ID, value: u32(ETH_SS_STATS) },
              { type: 2 /* ETHTOOL_A_STRINGSET_COUNT */, value: u32(names.length) },
              ...(names.length
                ? [
                    {
                      type: ETHTOOL_A_STRINGSET_STRINGS,
                      value: names.map((n, i) => ({
                        type: ETHTOOL_A_STRINGS_STRING,
                        value: [{ type: ETHTOOL_A_STRING_INDEX, value: u32(i) }, { type: ETHTOOL_A_STRING_VALUE, value: cstring(n) }],
                      })),
                    },
                  ]
                : []),
            ],
          },
        ],
      },
    ]),
  );
}

function trapMessage(opts: { type: number; action: number; dropped32?: boolean; noDropped?: boolean }): NlMessage {
  const stats: AttrSpec[] = [
    { type: DEVLINK_ATTR_STATS_RX_PACKETS, value: u64(40) },
    { type: DEVLINK_ATTR_STATS_RX_BYTES, value: u64(6000) },
  ];
  if (!opts.noDropped) stats.unshift({ type: DEVLINK_ATTR_STATS_RX_DROPPED, value: opts.dropped32 ? u32(5) : u64(5) });
  return message(
    30,
    genlPayload(DEVLINK_CMD_TRAP_NEW, 1, [
      { type: DEVLINK_ATTR_BUS_NAME, value: cstring('netdevsim') },
      { type: DEVLINK_ATTR_DEV_NAME, value: cstring('netdevsim7') },
      { type: DEVLINK_ATTR_TRAP_NAME, value: cstring('source_mac_is_multicast') },
      { type: DEVLINK_ATTR_TRAP_TYPE, value: u8(opts.type) },
      { type: 133 /* DEVLINK_ATTR_TRAP_GENERIC */, value: flag() },
      { type: DEVLINK_ATTR_TRAP_ACTION, value: u8(opts.action) },
      { type: DEVLINK_ATTR_TRAP_GROUP_NAME, value: cstring('l2_drops') },
      { type: DEVLINK_ATTR_STATS, value: stats },
    ]),
  );
}

function policerMessage(): NlMessage {
  return message(
    30,
    genlPayload(DEVLINK_CMD_TRAP_POLICER_NEW, 1, [
      { type: DEVLINK_ATTR_BUS_NAME, value: cstring('pci') },
      { type: DEVLINK_ATTR_DEV_NAME, value: cstring('0000:03:00.0') },
      { type: DEVLINK_ATTR_TRAP_POLICER_ID, value: u32(2) },
      { type: DEVLINK_ATTR_STATS, value: [{ type: DEVLINK_ATTR_STATS_RX_DROPPED, value: u64(99) }] },
    ]),
  );
}

test('link: every field of the 6.x struct, a shorter older struct, the 32-bit fallback, kind and promiscuity', () => {
  const l = parseLinkMessage(linkMessage({ stats64: 25, kind: 'veth', promisc: true }));
  assert.ok(l);
  assert.deepEqual({ index: l.index, name: l.name, kind: l.kind, promiscuous: l.promiscuous }, { index: 7, name: 'veth0', kind: 'veth', promiscuous: true });
  const r = linkReadings(l);
  assert.equal(r.length, 25);
  assert.deepEqual(r[6], { name: 'link:rx_dropped', scope: 'veth0', layer: 'nic', value: 1006, source: 'rtnetlink' });
  assert.deepEqual(r[24], { name: 'link:rx_otherhost_dropped', scope: 'veth0', layer: 'nic', value: 1024, source: 'rtnetlink' });
  // a 5.x kernel (23 fields, no rx_nohandler/rx_otherhost_dropped): the missing fields are absent, not zero
  const old = linkReadings(parseLinkMessage(linkMessage({ stats64: 23 }))!);
  assert.deepEqual(old.map((x) => x.name), LINK_STATS_FIELDS.slice(0, 23).map((f) => `link:${f}`));
  // a struct longer than we know (a future field): the known fields only
  assert.equal(linkReadings(parseLinkMessage(linkMessage({ stats64: 27 }))!).length, 25);
  const s32 = linkReadings(parseLinkMessage(linkMessage({ stats32: 24 }))!);
  assert.equal(s32.length, 24);
  assert.equal(s32[23].name, 'link:rx_nohandler');
  assert.equal(s32[23].value, 2023);
  // 64-bit values win when both are there
  assert.equal(linkReadings(parseLinkMessage(linkMessage({ stats64: 25, stats32: 24 }))!)[0].value, 1000);
  const none = parseLinkMessage(linkMessage({}))!;
  assert.deepEqual([none.kind, none.promiscuous, linkReadings(none)], [undefined, false, []]);
  // values above 2^32 survive
  const big = message(RTM_NEWLINK, concat(ifinfomsg(1, 0), encodeAttrs([{ type: IFLA_IFNAME, value: cstring('eth0') }, { type: IFLA_STATS64, value: u64(2 ** 40 + 5) }])));
  assert.equal(linkReadings(parseLinkMessage(big)!)[0].value, 2 ** 40 + 5);
  assert.equal(parseLinkMessage(message(RTM_NEWQDISC, new Uint8Array(20))), undefined, 'other types are not links');
  assert.throws(() => parseLinkMessage(message(RTM_NEWLINK, ifinfomsg(3, 0))), ParseError, 'a link without a name');
});

test('qdisc and class: TCA_STATS2 basic and queue, 64-bit packets, legacy tc_stats, gauges, scopes', () => {
  const q = parseTcMessage(qdiscMessage([{ type: TCA_STATS_BASIC, value: gnetBasic(5000, 40) }, { type: TCA_STATS_QUEUE, value: gnetQueue([2, 300, 11, 1, 9]) }]));
  assert.ok(q);
  assert.deepEqual(q.stats, { bytes: 5000, packets: 40, qlen: 2, backlog: 300, drops: 11, requeues: 1, overlimits: 9 });
  const r = tcReadings(q, 'veth0', 'qdisc');
  const scope = 'veth0 tbf 1:0 parent root';
  assert.deepEqual(
    r.map((x) => [x.name, x.scope, x.value, x.gauge ?? false, x.layer]),
    [
      ['qdisc:packets', scope, 40, false, 'qdisc'],
      ['qdisc:bytes', scope, 5000, false, 'qdisc'],
      ['qdisc:drops', scope, 11, false, 'qdisc'],
      ['qdisc:overlimits', scope, 9, false, 'qdisc'],
      ['qdisc:requeues', scope, 1, false, 'qdisc'],
      ['qdisc:backlog', scope, 300, true, 'qdisc'],
      ['qdisc:qlen', scope, 2, true, 'qdisc'],
    ],
  );
  // packets above 2^32: TCA_STATS_PKT64 beside the u32 of gnet_stats_basic
  const p64 = parseTcMessage(qdiscMessage([{ type: TCA_STATS_BASIC, value: gnetBasic(1, 0xffffffff) }, { type: TCA_STATS_PKT64, value: u64(2 ** 33) }]))!;
  assert.equal(p64.stats.packets, 2 ** 33);
  // a kernel with only struct tc_stats: bytes, packets, drops, overlimits, bps, pps, qlen, backlog
  const legacy = concat(u64(700), struct([7, 3, 4, 0, 0, 1, 64], 4), new Uint8Array(4));
  const l = parseTcMessage(qdiscMessage(undefined, legacy))!;
  assert.deepEqual(l.stats, { bytes: 700, packets: 7, drops: 3, overlimits: 4, qlen: 1, backlog: 64 });
  assert.ok(!tcReadings(l, 'eth0', 'qdisc').some((x) => x.name === 'qdisc:requeues'), 'no requeues in tc_stats');
  const c = parseTcMessage(qdiscMessage([{ type: TCA_STATS_QUEUE, value: gnetQueue([0, 0, 5, 0, 0]) }], undefined, RTM_NEWTCLASS))!;
  assert.equal(tcReadings(c, 'eth0', 'class').find((x) => x.name === 'class:drops')?.value, 5);
  assert.throws(() => parseTcMessage(message(RTM_NEWQDISC, tcmsg(1, 0, 0))), ParseError, 'no kind');
  assert.throws(() => parseTcMessage(message(RTM_NEWQDISC, new Uint8Array(12))), ParseError, 'short tcmsg');
  assert.throws(() => parseTcMessage(qdiscMessage(undefined, new Uint8Array(20))), ParseError, 'short tc_stats');
});

test('tc handles print as tc writes them (hex maj:min), the root parent as root', () => {
  assert.equal(formatTcHandle(0xffffffff), 'root');
  assert.equal(formatTcHandle(0x10000), '1:0');
  assert.equal(formatTcHandle(0x10010), '1:10');
  assert.equal(formatTcHandle(0xfffffff1), 'ffff:fff1');
  assert.equal(formatTcHandle(0), '0:0');
});

test('requests: link and qdisc dumps for every device, class dumps for one, ethtool stats of four groups', () => {
  assert.equal(linkDumpRequest().length, 16);
  const q = tcDumpRequest();
  assert.equal(new DataView(q.buffer).getInt32(4, true), 0);
  assert.equal(new DataView(tcDumpRequest(9).buffer).getInt32(4, true), 9);
  assert.deepEqual([...q.subarray(20)], [4, 0, 10, 0], 'TCA_DUMP_INVISIBLE');
  assert.ok([RTM_GETLINK, RTM_GETQDISC, RTM_GETTCLASS].every((t) => t % 4 === 2));
  const s = statsRequest();
  assert.equal(s[0], 32, 'ETHTOOL_MSG_STATS_GET');
  assert.ok(s.length > GENL_HDRLEN);
});

test('ethtool standard statistics: named by the kernel string sets, by index without them', () => {
  const s = parseStatsReply(ethtoolStatsMessage());
  assert.ok(s);
  assert.deepEqual([s.ifindex, s.ifname, s.stats.length], [4, 'eth1', 3]);
  const names = parseStringSets(stringSetMessage());
  const r = standardReadings(s, names);
  assert.deepEqual(
    r.map((x) => [x.name, x.scope, x.value, x.layer]),
    [
      ['ethtool:SymbolErrorDuringCarrier', 'eth1', 3, 'nic'],
      ['ethtool:FrameCheckSequenceErrors', 'eth1', 7, 'nic'],
      ['ethtool:FramesLostDueToIntMACRcvError', 'eth1', 2 ** 40, 'nic'],
    ],
  );
  assert.deepEqual(standardReadings(s, new Map()).map((x) => x.name), ['ethtool:eth-phy#0', 'ethtool:eth-mac#4', 'ethtool:eth-mac#13']);
});

test('ethtool -S names of every device from the string set dump', () => {
  assert.deepEqual(parseDeviceStatNames(deviceNamesMessage('va', ['peer_ifindex', 'rx_queue_0_drops', 'rx_queue_0_drops'])), {
    ifname: 'va',
    names: ['peer_ifindex', 'rx_queue_0_drops', 'rx_queue_0_drops#2'],
  });
  assert.deepEqual(parseDeviceStatNames(deviceNamesMessage('lo', [])), { ifname: 'lo', names: [] }, 'a driver without statistics');
  assert.throws(() => parseDeviceStatNames(stringSetMessage()), ParseError, 'a reply without a device');
});

test('ethtool -S string tables: NUL padding, spaces, repeated names', () => {
  const t = new Uint8Array(4 * 32);
  t.set(Buffer.from('rx_drops'), 0);
  t.set(Buffer.from('  tx_errors '), 32);
  t.set(Buffer.from('rx_drops'), 64);
  assert.deepEqual(stringTable(t, 4), ['rx_drops', 'tx_errors', 'rx_drops#2', '#3']);
  // a full 32-byte name has no NUL
  const full = new Uint8Array(32).fill(0x61);
  assert.deepEqual(stringTable(full, 1), ['a'.repeat(32)]);
});

test('devlink traps: rx_packets + rx_dropped (u64 or u32), detail, control traps left out; policers', () => {
  const t = parseTrapMessage(trapMessage({ type: 0, action: 1 }));
  assert.ok(t);
  assert.deepEqual(t, {
    device: 'netdevsim/netdevsim7',
    name: 'source_mac_is_multicast',
    group: 'l2_drops',
    action: 'trap',
    type: 'drop',
    stats: { rxDropped: 5, rxPackets: 40, rxBytes: 6000 },
  });
  assert.deepEqual(trapReadings(t), [
    { name: 'trap:source_mac_is_multicast', scope: 'netdevsim/netdevsim7', layer: 'nic', value: 45, source: 'devlink', detail: 'group l2_drops, action trap, type drop' },
  ]);
  assert.equal(parseTrapMessage(trapMessage({ type: 0, action: 0, dropped32: true }))!.stats.rxDropped, 5, 'NLA_UINT as u32 (kernel 6.8+)');
  assert.equal(trapReadings(parseTrapMessage(trapMessage({ type: 1, action: 1, noDropped: true }))!)[0].value, 40, 'drivers without a drop counter');
  assert.deepEqual(trapReadings(parseTrapMessage(trapMessage({ type: 2, action: 2 }))!), [], 'control traps count no drops');
  assert.equal(parseTrapMessage(trapMessage({ type: 7, action: 9 }))!.action, 'action 9');
  const p = parsePolicerMessage(policerMessage());
  assert.ok(p);
  assert.deepEqual(policerReadings(p), [{ name: 'trap-policer:rx_dropped', scope: 'pci/0000:03:00.0 policer 2', layer: 'nic', value: 99, source: 'devlink' }]);
  assert.equal(parseTrapMessage(policerMessage()), undefined, 'other commands are not traps');
});

test('parseEach: a malformed message is skipped with one error line, the others are kept', () => {
  const errors: string[] = [];
  const good = linkMessage({ stats64: 25 });
  const bad = message(RTM_NEWLINK, ifinfomsg(3, 0));
  const out = parseEach([good, bad, good, bad, bad], parseLinkMessage, errors);
  assert.equal(out.length, 2);
  assert.deepEqual(errors, ['rtnetlink link: no IFLA_IFNAME (at ifindex 3) (and 2 more malformed messages)']);
});

test('NLMSG_DONE: the status of a dump, with the extended ACK message', () => {
  assert.deepEqual(parseDone(message(3, new Uint8Array(4))), { error: 0 });
  assert.deepEqual(parseDone(message(3, new Uint8Array(0))), { error: 0 });
  const failed = concat(struct([0xffffffea], 4), encodeAttrs([{ type: 1, value: cstring('no stats requested') }]));
  assert.deepEqual(parseDone(message(3, failed, 0x200 /* NLM_F_ACK_TLVS */)), { error: -22, message: 'no stats requested' });
});

// ---- fuzzing ----

type Parser = (m: NlMessage) => unknown;

/** Whatever `parse` does with these bytes, only a ParseError may escape; results feed the readings functions. */
function survive(parse: Parser, type: number, payload: Uint8Array, after?: (x: never) => unknown): void {
  let m: NlMessage;
  try {
    m = message(type, payload);
  } catch (e) {
    if (e instanceof ParseError) return;
    throw e;
  }
  try {
    const x = parse(m);
    if (x !== undefined && after) after(x as never);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
  }
}

interface Target {
  readonly what: string;
  readonly parse: Parser;
  readonly after?: (x: never) => unknown;
  readonly samples: NlMessage[];
}

const targets: Target[] = [
  { what: 'link', parse: parseLinkMessage, after: linkReadings, samples: [linkMessage({ stats64: 25, kind: 'veth' }), linkMessage({ stats32: 24 })] },
  {
    what: 'qdisc',
    parse: parseTcMessage,
    after: (x: never) => tcReadings(x, 'eth0', 'qdisc'),
    samples: [
      qdiscMessage([{ type: TCA_STATS_BASIC, value: gnetBasic(1, 2) }, { type: TCA_STATS_QUEUE, value: gnetQueue([1, 2, 3, 4, 5]) }, { type: TCA_STATS_PKT64, value: u64(3) }]),
      qdiscMessage(undefined, new Uint8Array(40)),
    ],
  },
  { what: 'ethtool stats', parse: parseStatsReply, after: (x: never) => standardReadings(x, new Map()), samples: [ethtoolStatsMessage()] },
  { what: 'ethtool strings', parse: parseStringSets, samples: [stringSetMessage()] },
  { what: 'ethtool -S names', parse: parseDeviceStatNames, samples: [deviceNamesMessage('va', ['a', 'b']), deviceNamesMessage('lo', [])] },
  { what: 'devlink trap', parse: parseTrapMessage, after: trapReadings, samples: [trapMessage({ type: 0, action: 1 })] },
  { what: 'devlink policer', parse: parsePolicerMessage, after: policerReadings, samples: [policerMessage()] },
];

/** Real dump replies of a namespace with a tbf and an htb, when the kernel can be used. */
function realMessages(): Map<string, NlMessage[]> {
  const out = new Map<string, NlMessage[]>();
  if (kernelSkipReason()) return out;
  const ns = new TestNetns('nlfuzz');
  try {
    ns.ip('link', 'add', 'fa', 'type', 'veth', 'peer', 'name', 'fb');
    ns.exec('tc', ['qdisc', 'add', 'dev', 'fa', 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '1600', 'limit', '3000']);
    ns.exec('tc', ['qdisc', 'add', 'dev', 'fb', 'root', 'handle', '1:', 'htb']);
    ns.exec('tc', ['class', 'add', 'dev', 'fb', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1mbit']);
    withNetns(resolveNetns(ns.name), () => {
      const route = new NetlinkSocket(NETLINK_ROUTE);
      try {
        out.set('link', route.dump(RTM_GETLINK, linkDumpRequest(), 'links'));
        const fb = out.get('link')!.map(parseLinkMessage).find((l) => l?.name === 'fb')!;
        out.set('qdisc', [...route.dump(RTM_GETQDISC, tcDumpRequest(), 'qdiscs'), ...route.dump(RTM_GETTCLASS, tcDumpRequest(fb.index), 'classes')]);
      } finally {
        route.close();
      }
      const genl = new NetlinkSocket(NETLINK_GENERIC);
      try {
        const f = resolveFamily(genl, 'ethtool');
        if (f) {
          out.set('ethtool stats', genl.dump(f.id, statsRequest(), 'ethtool stats'));
          out.set('ethtool strings', genl.request(f.id, 0, genlPayload(1, 1, [{ type: 1, value: [] }, { type: 2, value: [] }]), 'strings'));
          out.set('ethtool -S names', genl.dump(f.id, stringSetsRequest([ETH_SS_STATS]), 'ethtool -S names'));
        }
      } finally {
        genl.close();
      }
    });
  } finally {
    ns.delete();
  }
  return out;
}

const real = realMessages();

for (const t of targets) {
  const samples = [...t.samples, ...(real.get(t.what) ?? [])];

  test(`fuzz ${t.what}: sample messages truncated and mutated (${samples.length} samples)`, () => {
    fc.assert(
      fc.property(
        fc.nat(samples.length - 1),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 12 }),
        (which, cut, flips) => {
          const m = samples[which];
          const p = Uint8Array.from(m.payload.subarray(0, cut % (m.payload.length + 1)));
          for (const [at, v] of flips) if (p.length) p[at % p.length] = v;
          survive(t.parse, m.type, p, t.after);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test(`fuzz ${t.what}: random payloads`, () => {
    const type = t.samples[0].type;
    const cmd = t.samples[0].payload[0];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, keepHeader) => {
        // half of the cases keep a valid genl command so that attribute parsing is reached
        const p = keepHeader && bytes.length >= 4 ? Uint8Array.from([cmd, 1, 0, 0, ...bytes.subarray(4)]) : bytes;
        survive(t.parse, type, p, t.after);
      }),
      { numRuns: RUNS },
    );
  });
}

test('real replies of this kernel parse without error', { skip: real.size ? false : 'kernel not usable here' }, () => {
  const errors: string[] = [];
  const links = parseEach(real.get('link')!, parseLinkMessage, errors);
  assert.ok(links.some((l) => l.name === 'fa' && l.kind === 'veth' && l.stats.length >= 23));
  const tc = parseEach(real.get('qdisc')!, parseTcMessage, errors);
  assert.ok(tc.some((q) => q.kind === 'tbf' && q.stats.drops === 0));
  assert.ok(tc.some((c) => c.kind === 'htb' && c.handle === 0x10010));
  const names = parseEach(real.get('ethtool -S names') ?? [], parseDeviceStatNames, errors);
  if (real.has('ethtool -S names')) assert.ok(names.some((d) => d.ifname === 'fa' && d.names.includes('peer_ifindex')), JSON.stringify(names));
  assert.deepEqual(errors, []);
});

function portMessage(cmd: number, netdev?: { ifindex: number; name: string }): NlMessage {
  return message(
    30,
    genlPayload(cmd, 1, [
      { type: DEVLINK_ATTR_BUS_NAME, value: cstring('netdevsim') },
      { type: DEVLINK_ATTR_DEV_NAME, value: cstring('netdevsim7') },
      { type: 3 /* DEVLINK_ATTR_PORT_INDEX */, value: u32(1) },
      { type: 4 /* DEVLINK_ATTR_PORT_TYPE */, value: u16(2) },
      ...(netdev ? [{ type: 6, value: u32(netdev.ifindex) }, { type: 7, value: cstring(netdev.name) }] : []),
    ]),
  );
}

test('devlink ports: answered as DEVLINK_CMD_NEW (6.1) or DEVLINK_CMD_PORT_NEW (6.12); the catalog looks traps up by device or port', () => {
  const want = { device: 'netdevsim/netdevsim7', index: 1, ifindex: 4, netdev: 'eth0' };
  assert.deepEqual(parsePortMessage(portMessage(3, { ifindex: 4, name: 'eth0' })), want);
  assert.deepEqual(parsePortMessage(portMessage(7, { ifindex: 4, name: 'eth0' })), want);
  assert.deepEqual(parsePortMessage(portMessage(7)), { device: 'netdevsim/netdevsim7', index: 1 }, 'a port without a net device');
  assert.equal(parsePortMessage(trapMessage({ type: 0, action: 1 })), undefined);
  let dumps = 0;
  const trap = { device: 'netdevsim/netdevsim7', name: 'blackhole_route', type: 'drop', action: 'trap', group: 'l3_drops' };
  const cat = new DevlinkCatalog({
    minRefreshMs: 60_000,
    list: () => {
      dumps++;
      return { traps: [trap], ports: [want] };
    },
  });
  assert.deepEqual(cat.trap('netdevsim/netdevsim7', 'blackhole_route'), { device: trap.device, type: 'drop', action: 'trap', group: 'l3_drops' });
  assert.equal(cat.portIfindex('netdevsim/netdevsim7', 'eth0'), 4);
  assert.equal(cat.trapOnPort(4, 'blackhole_route')?.device, 'netdevsim/netdevsim7');
  assert.equal(cat.trapOnPort(5, 'blackhole_route'), undefined);
  assert.equal(cat.trap('pci/0000:03:00.0', 'blackhole_route'), undefined);
  assert.equal(dumps, 1, 'misses within minRefreshMs do not dump again');
  const warnings: string[] = [];
  const failing = new DevlinkCatalog({ warn: (m) => warnings.push(m), list: () => { throw new Error('dumping devlink traps: EPERM'); } });
  assert.equal(failing.trap('x/y', 'z'), undefined);
  assert.deepEqual(warnings, ['devlink: dumping devlink traps: EPERM; trap types and actions may be missing']);
});
