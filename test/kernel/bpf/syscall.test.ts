/**
 * The bpf() map wrappers against the kernel: create, update, lookup, delete,
 * lookup-and-delete, and reading a whole per-CPU map both by batches and by
 * the GET_NEXT_KEY walk older kernels need; and the raw_tp flavour of the
 * drop program (bpf_probe_read_kernel) counting like the tp_btf one.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { kernelSkipReason } from '../../helpers/env.js';
import { TestNetns } from '../../helpers/netns.js';
import { runDropgen } from '../../helpers/dropgen.js';
import { bpfUnavailableReason } from '../../../src/sources/bpf/availability.js';
import { BpfMap, MapType, possibleCpus } from '../../../src/kernel/bpf/syscall.js';
import { BpfDropSource } from '../../../src/sources/bpf/source.js';
import type { DropSample } from '../../../src/core/drop.js';

after(() => TestNetns.cleanupAll());

test('possible CPUs from /sys/devices/system/cpu/possible', () => {
  assert.equal(possibleCpus('0\n'), 1);
  assert.equal(possibleCpus('0-3\n'), 4);
  assert.equal(possibleCpus('0-1,4,6-7'), 8);
  assert.throws(() => possibleCpus('x-y'), /cannot parse/);
});

function skip(): { skip: string | false } {
  const why = kernelSkipReason() ?? bpfUnavailableReason();
  return { skip: why ?? false };
}

describe('BPF maps and programs against the kernel', skip(), () => {
  const cpus = possibleCpus(readFileSync('/sys/devices/system/cpu/possible', 'latin1'));

  for (const batch of [true, false]) {
    test(`per-CPU hash: update, lookup, delete; whole-map reads ${batch ? 'by batches' : 'by GET_NEXT_KEY (no batch support)'}`, () => {
      const m = new BpfMap({ type: MapType.PERCPU_HASH, keySize: 8, valueSize: 8, maxEntries: 600, name: 'dropmon_test' }, cpus);
      try {
        if (!batch) (m as unknown as { batchSupported: boolean }).batchSupported = false;
        for (let k = 1; k <= 500; k++) {
          m.key.view.setBigUint64(0, BigInt(k), true);
          for (let c = 0; c < cpus; c++) m.value.view.setBigUint64(8 * c, BigInt(k * 10 + c), true);
          m.update();
        }
        m.key.view.setBigUint64(0, 7n, true);
        assert.equal(m.lookup(), true);
        assert.equal(m.value.view.getBigUint64(0, true), 70n);
        assert.equal(m.delete(), true);
        assert.equal(m.lookup(), false);
        assert.equal(m.delete(), false);
        m.key.view.setBigUint64(0, 8n, true);
        assert.equal(m.lookupAndDelete(), true);
        assert.equal(m.value.view.getBigUint64(0, true), 80n);
        const seen = new Map<bigint, bigint>();
        const n = m.forEach((key, value, off) => {
          let sum = 0n;
          for (let c = 0; c < cpus; c++) sum += value.getBigUint64(off + 8 * c, true);
          seen.set(new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0, true), sum);
        });
        assert.equal(n, 498);
        assert.equal(seen.size, 498);
        const expect = (k: number) => BigInt(cpus * k * 10 + (cpus * (cpus - 1)) / 2);
        assert.equal(seen.get(500n), expect(500));
        assert.equal(seen.has(7n) || seen.has(8n), false);
        assert.equal(m.forEach(() => {}, true), 498, 'read and delete');
        assert.equal(m.forEach(() => {}), 0, 'empty afterwards');
      } finally {
        m.close();
      }
    });
  }

  test('the raw_tp flavour (bpf_probe_read_kernel) counts what the tp_btf one counts', async () => {
    const ns = new TestNetns('rawtp');
    const inode = Number(/net:\[(\d+)\]/.exec(ns.exec('readlink', ['/proc/self/ns/net']))![1]);
    const counts: Record<string, number> = {};
    for (const flavour of ['tp_btf', 'raw_tp'] as const) {
      const samples: DropSample[] = [];
      const src = new BpfDropSource({ flavour, netns: inode });
      await src.start({ drops: (s) => samples.push(...s), loss: () => {} });
      try {
        assert.equal(src.flavour, flavour);
        runDropgen(['-m', 'noport', '-n', '40', '-a', '127.0.0.1'], ns.name);
        src.drain();
      } finally {
        src.close();
      }
      const mine = samples.filter((s) => s.reasonName === 'NO_SOCKET');
      counts[flavour] = mine.reduce((n, s) => n + s.count, 0);
      assert.ok(mine.every((s) => s.netns === inode && s.ifindex === 1 && s.protocol === 0x0800), JSON.stringify(mine, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
    }
    ns.delete();
    assert.deepEqual(counts, { tp_btf: 40, raw_tp: 40 });
  });
});
