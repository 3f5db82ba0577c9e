/**
 * Real subsystem drop reasons: an openvswitch datapath whose flow has no
 * actions drops every IPv4 packet it matches with OVS_DROP_LAST_ACTION
 * (Linux 6.8+), a value of the OPENVSWITCH subsystem (upper 16 bits). The
 * tracefs, BPF and NET_DM (packet mode) sources must all name it
 * OPENVSWITCH/OVS_DROP_LAST_ACTION, with the count of packets sent.
 *
 * Runs inside a Debian kernel under qemu with the openvswitch module
 * (test/vm/kernels.test.ts boots it); skips, saying why, elsewhere: on 6.1 (no
 * subsystem reasons before 6.4), without the module, or before 6.8.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Btf, BtfKind } from '../../src/kernel/bpf/btf.js';
import { DropReasons, SUBSYS_SHIFT } from '../../src/kernel/drop-reasons.js';
import { resolveNetns, withNetns } from '../../src/kernel/setns.js';
import { runDropgen } from '../helpers/dropgen.js';
import { DropmonProcess } from '../helpers/dropmon.js';
import { netdmPresent } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';
import { OvsDatapath } from '../helpers/ovs.js';

after(() => TestNetns.cleanupAll());

const REASON = 'OPENVSWITCH/OVS_DROP_LAST_ACTION';
const SENT = 200;

/** The value the running kernel gives OVS_DROP_LAST_ACTION, or why there is none. */
function ovsLastAction(): { value: number } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'not root' };
  if (!existsSync('/sys/kernel/btf/vmlinux')) return { skip: 'no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)' };
  const vmlinux = Btf.vmlinux();
  const subsys = vmlinux.enumValues('skb_drop_reason_subsys');
  const ovs = subsys.get('SKB_DROP_REASON_SUBSYS_OPENVSWITCH');
  if (ovs === undefined) return { skip: 'this kernel has no openvswitch drop reasons (subsystem reasons appeared in Linux 6.4, openvswitch\'s in 6.8)' };
  if (!existsSync('/sys/kernel/btf/openvswitch')) return { skip: 'the openvswitch module is not loaded (run through scripts/kernel-vm.sh with VM_MODULES=openvswitch, test/vm/kernels.test.ts does)' };
  const mod = Btf.parse(readFileSync('/sys/kernel/btf/openvswitch'), vmlinux);
  const id = mod.find(BtfKind.ENUM, 'ovs_drop_reason');
  const value = id === undefined ? undefined : mod.enumerators(id).find((e) => e.name === 'OVS_DROP_LAST_ACTION')?.value;
  if (value === undefined) return { skip: 'this openvswitch has no OVS_DROP_LAST_ACTION (Linux 6.8+)' };
  assert.equal(value >>> SUBSYS_SHIFT, ovs, 'the module enum carries its subsystem in the upper bits');
  return { value };
}

const found = ovsLastAction();
const SKIP = 'skip' in found ? found.skip : false;
if (SKIP) process.stderr.write(`# skipping subsystem drop-reason tests: ${SKIP}\n`);

interface Out {
  type: string;
  reason?: string | null;
  reason_code?: number;
  count?: number;
}
const lines = (text: string): Out[] => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Out);
const dropCount = (text: string) => lines(text).filter((o) => o.type === 'drop' && o.reason === REASON).reduce((n, o) => n + (o.count ?? 0), 0);
const packetCount = (text: string) => lines(text).filter((o) => o.type === 'packet' && o.reason === REASON).length;

async function until(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 50));
}

describe('openvswitch drops named OPENVSWITCH/OVS_DROP_LAST_ACTION', { skip: SKIP }, () => {
  let a: TestNetns, b: TestNetns;
  let dp: OvsDatapath | undefined;

  before(() => {
    // a (sender, 10.99.0.1) -- veth -- b (port 1 of an OVS datapath whose only flow drops IPv4)
    a = new TestNetns('ovs-a');
    b = new TestNetns('ovs-b');
    a.ip('link', 'add', 'dmoa0', 'type', 'veth', 'peer', 'name', 'dmob0', 'netns', b.name);
    for (const [ns, dev] of [[a, 'dmoa0'], [b, 'dmob0']] as const) {
      // No IPv6 chatter (router solicitations, MLD): only the test's packets reach the datapath.
      ns.sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, '1');
      ns.ip('link', 'set', dev, 'up');
    }
    a.ip('addr', 'add', '10.99.0.1/24', 'dev', 'dmoa0');
    const mac = JSON.parse(b.ip('-j', 'link', 'show', 'dmob0')) as Array<{ address: string }>;
    // A static neighbour: no ARP, which the datapath would drop for another reason.
    a.ip('neigh', 'add', '10.99.0.2', 'lladdr', mac[0].address, 'dev', 'dmoa0', 'nud', 'permanent');
    dp = withNetns(resolveNetns(b.name), () => {
      const d = new OvsDatapath('dmovs0');
      d.addNetdev('dmob0', 1);
      d.addIpv4Flow(1); // no actions: the packet is dropped
      return d;
    });
  });

  after(() => {
    dp?.close();
    // Deleting the namespace destroys the datapath, its port and its flow.
    a?.delete();
    b?.delete();
  });

  test('the namer reads the reason from the openvswitch module\'s BTF', () => {
    const r = new DropReasons();
    const value = (found as { value: number }).value;
    assert.equal(r.name(value), REASON);
    assert.equal(r.table().get(value >>> 0), REASON);
    assert.equal(r.netdmName('OVS_DROP_LAST_ACTION'), REASON);
  });

  test('tracefs, BPF and NET_DM packet mode name the same drops, with their count', { timeout: 400_000 }, async () => {
    const value = (found as { value: number }).value;
    const args = {
      tracefs: ['--source', 'tracefs', '--reason', 'OVS_DROP_LAST_ACTION'],
      bpf: ['--source', 'bpf', '--netns', b.name],
      ...(netdmPresent() ? { netdm: ['--source', 'netdm', '--mode', 'packet', '--force'] } : {}),
    };
    const procs: Partial<Record<keyof typeof args, DropmonProcess>> = {};
    try {
      // One at a time: the emulated guest (no KVM) starts three Node processes slowly.
      for (const [k, a] of Object.entries(args) as Array<[keyof typeof args, string[]]>) {
        const p = new DropmonProcess(['watch', '--json', '-i', '0.3', '--no-counters', ...a]);
        procs[k] = p;
        await p.ready(90_000);
      }
      assert.equal(runDropgen(['-m', 'noport', '-n', String(SENT), '-a', '10.99.0.2'], a.name).sent, SENT);
      await until(
        () => dropCount(procs.tracefs!.stdout) >= SENT && dropCount(procs.bpf!.stdout) >= SENT && (!procs.netdm || packetCount(procs.netdm.stdout) >= SENT),
        30_000,
      );
    } finally {
      await Promise.all(Object.values(procs).map((p) => p.stop('SIGINT')));
    }
    const got = {
      tracefs: dropCount(procs.tracefs!.stdout),
      bpf: dropCount(procs.bpf!.stdout),
      ...(procs.netdm ? { netdm: packetCount(procs.netdm.stdout) } : {}),
    };
    const why = `${JSON.stringify(got)}\n${Object.entries(procs).map(([k, p]) => `--- ${k}\n${p.stderr}${p.stdout.split('\n').filter((l) => l.includes('"drop"')).slice(0, 6).join('\n')}`).join('\n')}`;
    assert.equal(got.tracefs, SENT, why);
    assert.equal(got.bpf, SENT, why);
    assert.ok(procs.netdm, 'NET_DM is available in the VM (drop_monitor)');
    assert.equal(got.netdm, SENT, why);
    const codes = new Set(lines(procs.bpf!.stdout).filter((o) => o.reason === REASON).map((o) => o.reason_code));
    assert.deepEqual([...codes], [value >>> 0], 'the numeric value is kept beside the name');
  });
});
