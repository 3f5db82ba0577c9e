/**
 * The knowledge base's subsystem reasons (kb/subsystems.yaml): every reason of
 * openvswitch and mac80211 has a complete entry, found by its SUBSYS/REASON
 * name and by its bare name; a reason the kb does not list falls back to its
 * subsystem's entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadKnowledge } from '../../src/knowledge/load.js';

const kb = loadKnowledge();
const subsys = kb.all('reason').filter((e) => e.file === 'subsystems.yaml');

// net/openvswitch/drop.h OVS_DROP_REASONS
const OVS = ['OVS_DROP_LAST_ACTION', 'OVS_DROP_ACTION_ERROR', 'OVS_DROP_EXPLICIT', 'OVS_DROP_EXPLICIT_WITH_ERROR', 'OVS_DROP_METER', 'OVS_DROP_RECURSION_LIMIT',
  'OVS_DROP_DEFERRED_LIMIT', 'OVS_DROP_FRAG_L2_TOO_LONG', 'OVS_DROP_FRAG_INVALID_PROTO', 'OVS_DROP_CONNTRACK', 'OVS_DROP_IP_TTL'];
// net/mac80211/drop.h MAC80211_DROP_REASONS_UNUSABLE (newest list) and _MONITOR (until 6.12)
const UNUSABLE = ['MIC_FAIL', 'REPLAY', 'BAD_MMIE', 'DUP', 'SPURIOUS', 'DECRYPT_FAIL', 'NO_KEY_ID', 'BAD_CIPHER', 'OOM', 'NONSEQ_PN', 'BAD_KEY_COLOR', 'BAD_4ADDR',
  'BAD_AMSDU', 'BAD_AMSDU_CIPHER', 'INVALID_8023', 'RUNT_ACTION', 'UNPROT_ACTION', 'UNPROT_DUAL', 'UNPROT_UCAST_MGMT', 'UNPROT_MCAST_MGMT', 'UNPROT_BEACON',
  'UNPROT_UNICAST_PUB_ACTION', 'UNPROT_ROBUST_ACTION', 'ACTION_UNKNOWN_SRC', 'REJECTED_ACTION_RESPONSE', 'EXPECT_DEFRAG_PROT', 'WEP_DEC_FAIL', 'NO_IV', 'NO_ICV',
  'AP_RX_GROUPCAST', 'SHORT_MMIC', 'MMIC_FAIL', 'SHORT_TKIP', 'TKIP_FAIL', 'SHORT_CCMP', 'SHORT_CCMP_MIC', 'SHORT_GCMP', 'SHORT_GCMP_MIC', 'SHORT_CMAC',
  'SHORT_CMAC256', 'SHORT_GMAC', 'UNEXPECTED_VLAN_4ADDR', 'UNEXPECTED_STA_4ADDR', 'UNEXPECTED_VLAN_MCAST', 'NOT_PORT_CONTROL', 'UNKNOWN_ACTION_REJECTED',
  'UNEXPECTED_4ADDR_FRAME', 'BAD_BCN_KEYIDX', 'BAD_MGMT_KEYIDX'].map((n) => `RX_DROP_U_${n}`);
const MONITOR = ['RX_DROP_MONITOR', 'RX_DROP_M_UNEXPECTED_4ADDR_FRAME', 'RX_DROP_M_BAD_BCN_KEYIDX', 'RX_DROP_M_BAD_MGMT_KEYIDX'];

test('every openvswitch and mac80211 reason has an entry, by SUBSYS/REASON and by its bare name', () => {
  const want = [...OVS.map((n) => `OPENVSWITCH/${n}`), 'MAC80211_UNUSABLE/RX_DROP_UNUSABLE', ...UNUSABLE.map((n) => `MAC80211_UNUSABLE/${n}`), ...MONITOR.map((n) => `MAC80211_MONITOR/${n}`)];
  for (const name of want) {
    const e = kb.reason(name);
    assert.equal(e?.name, name, name);
    assert.equal(kb.reason(name.slice(name.indexOf('/') + 1)), e, `bare ${name}`);
    assert.equal(kb.lookup(name.slice(name.indexOf('/') + 1))?.name, name, `explain ${name}`);
  }
  assert.equal(kb.reason('openvswitch/ovs_drop_last_action')?.name, 'OPENVSWITCH/OVS_DROP_LAST_ACTION', 'case does not matter');
});

test('each subsystem entry says what it means, why, what to check, what to change and where the kernel raises it', () => {
  assert.ok(subsys.length >= 69);
  for (const e of subsys) {
    assert.match(e.name, /^(SUBSYS_[A-Z0-9_]+|[A-Z0-9_]+\/[A-Z0-9_]+)$/, e.name);
    assert.ok(e.meaning && e.causes.length && e.check.length && e.kernel, `${e.name}: meaning, causes, check and kernel`);
    assert.ok(e.fix.length || e.benign === 'usually', `${e.name}: a fix unless usually benign`);
    assert.match(e.kernel!, /^(net|include)\//, `${e.name}: a kernel source file`);
    const slash = e.name.indexOf('/');
    if (slash > 0) assert.ok(kb.reason(`SUBSYS_${e.name.slice(0, slash)}`), `${e.name}: its subsystem has an entry`);
  }
});

test('a reason the kb does not list falls back to its subsystem; other unknown names are left alone', () => {
  assert.equal(kb.reason('OPENVSWITCH/code 12')?.name, 'SUBSYS_OPENVSWITCH');
  assert.equal(kb.reason('OPENVSWITCH/OVS_DROP_SOMETHING_NEW')?.name, 'SUBSYS_OPENVSWITCH');
  assert.equal(kb.reason('MAC80211_UNUSABLE/RX_DROP_U_NEW')?.name, 'SUBSYS_MAC80211_UNUSABLE');
  assert.equal(kb.reason('QDISC/QDISC_DROP_GENERIC')?.name, 'SUBSYS_QDISC');
  assert.equal(kb.reason('OPENVSWITCH')?.name, 'SUBSYS_OPENVSWITCH');
  assert.equal(kb.reason('subsys 9 code 1'), undefined);
  assert.equal(kb.reason('NOSUCH/THING'), undefined);
  assert.equal(kb.reason('/X'), undefined);
  assert.equal(kb.benign('OPENVSWITCH/OVS_DROP_LAST_ACTION'), 'sometimes');
  assert.equal(kb.benign('OPENVSWITCH/OVS_DROP_RECURSION_LIMIT'), 'no');
  assert.equal(kb.search('ovs drop meter', 1)[0]?.entry.name, 'OPENVSWITCH/OVS_DROP_METER');
});
