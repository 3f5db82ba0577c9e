/**
 * What --source auto picks and why, and what each source refuses once one
 * is chosen: the registry's providers, with BPF's "can it run here" checks
 * given by the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropmonError } from '../../src/core/errors.js';
import { bpfSourceProvider } from '../../src/sources/bpf/provider.js';
import { netdmProvider } from '../../src/sources/netdm/provider.js';
import { SourceProblem, type SourceRequest } from '../../src/sources/plan.js';
import { SOURCE_PROVIDERS } from '../../src/sources/registry.js';
import { chooseSource, nextPreferred } from '../../src/sources/select.js';
import { tracefsProvider } from '../../src/sources/tracefs/provider.js';

const ok = () => undefined;
const noRoot = () => 'BPF needs root (or CAP_BPF and CAP_PERFMON)';
const noTraps = () => 'BPF source: this kernel has no devlink_trap_report tracepoint in its BTF';

/** The registry's sources, BPF with the given checks. */
function sources(problem: () => string | undefined = ok, trapProblem: () => string | undefined = ok) {
  return SOURCE_PROVIDERS.map((p) => (p.name === 'bpf' ? bpfSourceProvider({ problem, trapProblem }) : p));
}

function request(r: Partial<SourceRequest> = {}): SourceRequest {
  return { software: true, hardware: false, reasons: [], protocols: [], locations: [], ...r };
}

function problemCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SourceProblem, String(err));
    return err.code;
  }
  assert.fail('no problem');
}

test('the registry holds every source once', () => {
  assert.deepEqual(SOURCE_PROVIDERS.map((p) => p.name).sort(), ['bpf', 'netdm', 'tracefs']);
  assert.deepEqual([tracefsProvider, netdmProvider].map((p) => SOURCE_PROVIDERS.includes(p)), [true, true]);
});

test('--source auto: BPF first, tracefs when BPF cannot run; options only one source has decide', () => {
  const first = chooseSource(request(), 'auto', sources());
  assert.deepEqual([first.name, first.why, first.by], ['bpf', 'BPF counts drops in the kernel (the cheapest source), with interface and namespace', 'preference']);
  assert.equal(chooseSource(request({ reasons: ['NO_SOCKET'], protocols: [0x800] }), 'auto', sources()).name, 'bpf');
  const fallback = chooseSource(request(), 'auto', sources(noRoot));
  assert.equal(fallback.name, 'tracefs');
  assert.match(fallback.why, /^BPF is not usable here \(BPF needs root/);
  const stack = chooseSource(request({ stack: true }), 'auto', sources());
  assert.deepEqual([stack.name, stack.why, stack.by], ['tracefs', '--stack needs the tracefs source', 'options']);
  assert.deepEqual(
    [chooseSource(request({ bufferKb: 1024 }), 'auto', sources()).why, chooseSource(request({ bufferKb: 1024 }), 'auto', sources()).name],
    ['the options given need the tracefs source', 'tracefs'],
  );
  const netdm = chooseSource(request({ netdm: { mode: 'summary' } }), 'auto', sources());
  assert.deepEqual([netdm.name, netdm.why], ['netdm', 'the options given need NET_DM']);
  assert.equal(chooseSource(request({ netdm: { passive: true } }), 'auto', sources()).name, 'netdm');
  const bpf = chooseSource(request({ packets: true }), 'auto', sources(noRoot));
  assert.deepEqual([bpf.name, bpf.why], ['bpf', '--netns, --interface and --packets need the BPF source'], 'asked-for BPF options fail with the reason rather than silently dropping them');
  assert.equal(chooseSource(request({ netns: 'blue' }), 'auto', sources(noRoot)).name, 'bpf');
  const asked = chooseSource(request(), 'netdm', sources());
  assert.deepEqual([asked.name, asked.why, asked.by], ['netdm', 'asked for', 'name']);
});

test('--source auto with --hw: BPF when it can count traps, else tracefs; never NET_DM on its own', () => {
  const hw = request({ hardware: true });
  assert.equal(chooseSource(hw, 'auto', sources(ok, ok)).name, 'bpf');
  const fallback = chooseSource(hw, 'auto', sources(ok, noTraps));
  assert.equal(fallback.name, 'tracefs');
  assert.match(fallback.why, /^BPF cannot count hardware drops here \(BPF source: this kernel has no devlink_trap_report/);
  assert.equal(chooseSource(hw, 'auto', sources(() => 'no BTF', ok)).name, 'tracefs');
  assert.equal(chooseSource(request({ hardware: true, netdm: { mode: 'packet' } }), 'auto', sources()).name, 'netdm', '--hw --mode packet: NET_DM, for the packets');
  assert.equal(chooseSource(request(), 'auto', sources(ok, noTraps)).name, 'bpf', 'the trap tracepoint matters only with --hw');
});

test('each source refuses the options only it has when another is chosen', () => {
  assert.equal(problemCode(() => chooseSource(request({ netns: 'blue' }), 'tracefs', sources())), 'needs-bpf');
  assert.equal(problemCode(() => chooseSource(request({ interface: 'eth0' }), 'netdm', sources())), 'needs-bpf');
  assert.equal(problemCode(() => chooseSource(request({ stack: true }), 'bpf', sources())), 'needs-tracefs');
  assert.equal(problemCode(() => chooseSource(request({ netdm: { trunc: 64 } }), 'bpf', sources())), 'needs-netdm');
  // --buffer-kb only tunes tracefs: another source asked for by name goes on without it.
  assert.equal(chooseSource(request({ bufferKb: 1024 }), 'bpf', sources()).name, 'bpf');
  // A namespace wanted where supported (diagnose) does not ask for BPF, nor is it refused elsewhere.
  assert.equal(chooseSource(request({ netns: 'blue', netnsWhereSupported: true }), 'auto', sources(noRoot)).name, 'tracefs');
  assert.equal(chooseSource(request({ netns: 'blue', netnsWhereSupported: true }), 'tracefs', sources()).name, 'tracefs');
});

test('options of several sources contradict: the first that needs them is chosen, the others refuse theirs', () => {
  assert.equal(problemCode(() => chooseSource(request({ stack: true, netns: 'blue' }), 'auto', sources())), 'needs-bpf');
  assert.equal(problemCode(() => chooseSource(request({ bufferKb: 1024, packets: true }), 'auto', sources())), 'needs-bpf');
  assert.equal(problemCode(() => chooseSource(request({ stack: true, netdm: { mode: 'packet' } }), 'auto', sources())), 'needs-netdm');
  assert.equal(problemCode(() => chooseSource(request({ netdm: { force: true }, interface: 'eth0' }), 'auto', sources())), 'needs-bpf');
});

test('what a source cannot do with the request', () => {
  assert.equal(problemCode(() => chooseSource(request({ software: false, hardware: true, packets: true }), 'auto', sources())), 'packets-need-software');
  assert.equal(problemCode(() => chooseSource(request({ hardware: true, netns: 'blue' }), 'auto', sources())), 'hardware-scope');
  assert.equal(problemCode(() => chooseSource(request({ hardware: true, interface: 'eth0' }), 'bpf', sources())), 'hardware-scope');
  // Packet bytes (pcap): NET_DM's packet mode or BPF's per-packet records.
  assert.equal(problemCode(() => chooseSource(request({ packetBytes: true }), 'auto', sources())), 'packet-bytes');
  assert.equal(chooseSource(request({ packetBytes: true, netdm: { mode: 'packet' } }), 'auto', sources()).name, 'netdm');
  assert.equal(chooseSource(request({ packetBytes: true, packets: true }), 'auto', sources()).name, 'bpf');
  assert.equal(problemCode(() => chooseSource(request({ packetBytes: true }), 'tracefs', sources())), 'needs-netdm');
  assert.equal(problemCode(() => chooseSource(request(), 'nosuch', sources())), 'unknown-source');
});

test('a problem of the request is bad usage; one of the host a runtime error', () => {
  try {
    chooseSource(request({ stack: true }), 'bpf', sources());
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof SourceProblem && err.exitCode === 2);
  }
  assert.throws(
    () => chooseSource(request(), 'auto', [{ ...bpfSourceProvider({ problem: noRoot, trapProblem: ok }) }]),
    (e: unknown) => e instanceof DropmonError && !(e instanceof SourceProblem) && /no drop source can run here \(BPF is not usable here/.test(e.message),
  );
});

test('after the source auto preferred fails to start, the next one that can run; none when it was asked for or needed', () => {
  const all = sources();
  const preferred = chooseSource(request(), 'auto', all);
  assert.equal(nextPreferred(preferred, request(), all)?.name, 'tracefs');
  assert.equal(nextPreferred(chooseSource(request(), 'bpf', all), request(), all), undefined);
  assert.equal(nextPreferred(chooseSource(request({ packets: true }), 'auto', all), request({ packets: true }), all), undefined);
  const tracefs = chooseSource(request(), 'auto', sources(noRoot));
  assert.equal(nextPreferred(tracefs, request(), sources(noRoot)), undefined);
});
