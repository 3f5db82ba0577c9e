/**
 * The drop programs in every variant, assembled from a layout read from a BTF
 * blob written by the test: the key's bytes all defined, the slot fences, the
 * relative sizes of the variants.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hexDump } from '../../../src/kernel/bpf/asm.js';
import { Btf } from '../../../src/kernel/bpf/btf.js';
import { readKernelLayout } from '../../../src/sources/bpf/layout.js';
import { dropProgram } from '../../../src/sources/bpf/programs.js';
import { kernelLikeBtf } from './btf-writer.js';

test('the drop programs assemble in every variant from a BTF-derived layout; every byte of the key is defined', () => {
  const layout = readKernelLayout(Btf.parse(kernelLikeBtf()));
  const sizes = new Map<string, number>();
  for (const flavour of ['tp_btf', 'raw_tp'] as const)
    for (const packets of [undefined, { ringMapFd: 5, snapLen: 128, perSecondPerCpu: 1000 }])
      for (const filters of [{}, { netns: 4026531833, ifindex: 2 }])
        for (const attribution of [true, false])
          for (const slots of [undefined, { slotsMapFd: 6 }, { slotsMapFd: 6, fencedSlots: false }]) {
            const code = dropProgram({ flavour, layout, countsMapFd: 3, stateMapFd: 4, attribution, ...filters, ...(packets ? { packets } : {}), ...slots });
            const lines = hexDump(code);
            if (flavour === 'raw_tp') {
              // after the three ctx loads: *(u64 *)(r10 -24/-16/-8) = 0 (unwritten padding would split a drop point)
              assert.deepEqual(lines.slice(3, 6), ['7a 0a e8 ff 00 00 00 00', '7a 0a f0 ff 00 00 00 00', '7a 0a f8 ff 00 00 00 00']);
            } else {
              // the key in registers: w8 = w8 (the reason's upper half zeroed), r9 = skb->protocol << 32
              assert.deepEqual(lines.slice(3, 6), ['bc 88 00 00 00 00 00 00', `69 69 ${layout.skbProtocol.offset.toString(16).padStart(2, '0')} 00 00 00 00 00`, '67 09 00 00 20 00 00 00']);
            }
            const fetchAdds = lines.filter((l) => l.startsWith('db ')).length;
            assert.equal(fetchAdds, slots && slots.fencedSlots !== false ? 4 : 0, 'the slot seq steps are fenced unless asked not to be');
            assert.equal(lines.at(-1), '95 00 00 00 00 00 00 00');
            sizes.set(`${flavour} packets=${!!packets} filters=${Object.keys(filters).length > 0} attribution=${attribution} slots=${!!slots}`, lines.length);
          }
  // raw_tp reads through bpf_probe_read_kernel: longer; attribution adds loads; slots add the fast path
  assert.ok(sizes.get('raw_tp packets=false filters=false attribution=true slots=false')! > sizes.get('tp_btf packets=false filters=false attribution=true slots=false')!);
  assert.ok(sizes.get('tp_btf packets=false filters=false attribution=true slots=false')! > sizes.get('tp_btf packets=false filters=false attribution=false slots=false')!);
  assert.ok(sizes.get('tp_btf packets=false filters=false attribution=true slots=true')! > sizes.get('tp_btf packets=false filters=false attribution=true slots=false')!);
});
