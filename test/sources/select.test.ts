/** What --source auto picks and why. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSource } from '../../src/sources/select.js';

test('--source auto: BPF first, tracefs when BPF cannot run; options only one source has decide', () => {
  const ok = () => undefined;
  const no = () => 'BPF needs root (or CAP_BPF and CAP_PERFMON)';
  assert.equal(chooseSource('auto', {}, ok).name, 'bpf');
  assert.equal(chooseSource('auto', { filtersByReasonOrProtocol: true }, ok).name, 'bpf');
  const fallback = chooseSource('auto', {}, no);
  assert.equal(fallback.name, 'tracefs');
  assert.match(fallback.why, /BPF is not usable here \(BPF needs root/);
  assert.equal(chooseSource('auto', { stack: true }, ok).name, 'tracefs');
  assert.equal(chooseSource('auto', { tracefsOnly: true }, ok).name, 'tracefs');
  assert.equal(chooseSource('auto', { netdmOnly: true }, ok).name, 'netdm');
  assert.equal(chooseSource('auto', { bpfOnly: true }, no).name, 'bpf', 'asked-for BPF options fail with the reason rather than silently dropping them');
  assert.deepEqual(chooseSource('netdm', {}, ok), { name: 'netdm', why: 'asked for' });
});

test('--source auto with --hw: BPF when it can count traps, else tracefs; never NET_DM on its own', () => {
  const ok = () => undefined;
  const noTraps = () => 'BPF source: this kernel has no devlink_trap_report tracepoint in its BTF';
  assert.equal(chooseSource('auto', { hardware: true }, ok, ok).name, 'bpf');
  const fallback = chooseSource('auto', { hardware: true }, ok, noTraps);
  assert.equal(fallback.name, 'tracefs');
  assert.match(fallback.why, /BPF cannot count hardware drops here \(BPF source: this kernel has no devlink_trap_report/);
  assert.equal(chooseSource('auto', { hardware: true }, () => 'no BTF', ok).name, 'tracefs');
  assert.equal(chooseSource('auto', { hardware: true, netdmOnly: true }, ok, ok).name, 'netdm', '--hw --mode packet: NET_DM, for the packets');
  assert.equal(chooseSource('auto', {}, ok, noTraps).name, 'bpf', 'the trap tracepoint matters only with --hw');
});
