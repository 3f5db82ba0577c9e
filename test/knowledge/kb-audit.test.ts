/**
 * A check and a fix for every cause: each drop reason that is not usually
 * benign, each counter that can be a cause on its own (a drop counter, not
 * usually benign) and each refined cause has at least one check that is a
 * command to run and at least one fix, and a fix of its own: no two unrelated
 * causes share the same fixes (the fix of a full conntrack table is not the
 * fix of a conntrack-state rule). The test fails listing every offender.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KnowledgeEntry } from '../../src/knowledge/entry.js';
import { loadKnowledge } from '../../src/knowledge/load.js';

const kb = loadKnowledge();

/** Programs a check may start with: what an operator types to look. */
const COMMANDS = new Set([
  'arping', 'ausearch', 'awk', 'bpftool', 'bpftrace', 'bridge', 'candump', 'cat', 'cilium', 'conntrack', 'devlink', 'dmesg', 'dropmon', 'ebtables', 'ethtool',
  'free', 'grep', 'ip', 'ip6tables', 'ip6tables-legacy-save', 'iptables', 'iptables-legacy-save', 'iptables-save', 'ipset', 'iw', 'journalctl',
  'ls', 'lsmod', 'lspci', 'mtr', 'ndisc6', 'nft', 'nstat', 'ovs-appctl', 'ovs-dpctl', 'ovs-ofctl', 'ovs-vsctl', 'perf', 'ping', 'ss', 'sysctl',
  'systemctl', 'tc', 'tcpdump', 'tracepath', 'traceroute', 'wpa_cli',
]);

/** The causes the audit covers, with why. */
function causes(): { e: KnowledgeEntry; why: string }[] {
  const out: { e: KnowledgeEntry; why: string }[] = [];
  for (const e of kb.all()) {
    if (e.refines) out.push({ e, why: `refined cause of ${e.refines}` });
    else if (e.kind === 'reason' && e.benign !== 'usually') out.push({ e, why: `reason, benign ${e.benign}` });
    else if (e.kind === 'counter' && e.drop && e.benign !== 'usually') out.push({ e, why: `drop counter, benign ${e.benign}` });
  }
  return out;
}

const isCommand = (check: string) => COMMANDS.has(check.trim().split(/\s+/)[0]);

test('every cause has a check that is a command and a fix', () => {
  const offenders: string[] = [];
  for (const { e, why } of causes()) {
    const problems: string[] = [];
    if (!e.check.length) problems.push('no check');
    else if (!e.check.some(isCommand)) problems.push(`no check is a command (${e.check.join(' | ')})`);
    if (!e.fix.length) problems.push('no fix');
    if (problems.length) offenders.push(`kb/${e.file} ${e.name} (${why}): ${problems.join('; ')}`);
  }
  assert.deepEqual(offenders, [], `${offenders.length} causes lack a check or a fix:\n${offenders.join('\n')}`);
});

/**
 * Entries that may share their fixes: a reason and the counters of its drops
 * (Udp:RcvbufErrors and SOCKET_RCVBUFF are one cause seen twice), a refined
 * cause and its reason or a sibling, aliases of one another.
 */
function related(a: KnowledgeEntry, b: KnowledgeEntry): boolean {
  const names = (e: KnowledgeEntry) => new Set([e.name, ...e.aliases, ...(e.refines ? [e.refines] : [])].map((n) => n.toLowerCase()));
  const na = names(a);
  const nb = names(b);
  const links = (x: KnowledgeEntry, other: Set<string>) => [...x.counters, ...x.reasons].some((n) => other.has(n.toLowerCase()));
  if ([...na].some((n) => nb.has(n))) return true;
  if (links(a, nb) || links(b, na)) return true;
  // Two counters of the same drops (netdev:rx_fifo and ethtool-S:rx_fifo_errors both count link:rx_fifo_errors).
  if (a.kind === 'counter' && b.kind === 'counter' && a.counters.some((n) => b.counters.some((m) => m.toLowerCase() === n.toLowerCase()))) return true;
  // A counter and a reason paired through the knowledge base's relations (declared on either side).
  const pair = (c: KnowledgeEntry, r: KnowledgeEntry) => c.kind === 'counter' && r.kind === 'reason' && kb.reasonsForCounter(c.name).includes(r.refines ?? r.name);
  return pair(a, b) || pair(b, a);
}

test('every cause has fixes of its own: no unrelated cause has the same ones', () => {
  const byFix = new Map<string, KnowledgeEntry[]>();
  for (const { e } of causes()) {
    if (!e.fix.length) continue;
    const key = [...e.fix].map((f) => f.trim().toLowerCase()).sort().join('\n');
    byFix.set(key, [...(byFix.get(key) ?? []), e]);
  }
  const offenders: string[] = [];
  for (const group of byFix.values()) {
    for (let i = 0; i < group.length; i++)
      for (let j = i + 1; j < group.length; j++)
        if (!related(group[i], group[j])) offenders.push(`kb/${group[i].file} ${group[i].name} and kb/${group[j].file} ${group[j].name}: the same fix (${group[i].fix.join(' | ')})`);
  }
  assert.deepEqual(offenders, [], `${offenders.length} unrelated causes share their fixes:\n${offenders.join('\n')}`);
});

test('refined causes: a check and a fix of their own, different from the reason they refine', () => {
  const offenders: string[] = [];
  for (const e of kb.all('reason').filter((x) => x.refines)) {
    const base = kb.reason(e.refines!);
    if (base && base.fix.length && e.fix.every((f) => base.fix.includes(f))) offenders.push(`${e.name}: its fixes are all ${e.refines}'s`);
    if (!e.kernel) offenders.push(`${e.name}: no kernel reference`);
  }
  assert.deepEqual(offenders, []);
  assert.ok(kb.all('reason').filter((x) => x.refines).length >= 30, 'the refinements are loaded');
});
