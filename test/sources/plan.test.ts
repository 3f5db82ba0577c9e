/**
 * The source plan: a source defined here, in the test, joins the registry's
 * list and is picked by `auto` or built by name with nothing else changed;
 * and the plan's checks of a request against the running kernel (reasons,
 * locations, the tracefs layout), with a kernel made up by the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DropSink, DropSource } from '../../src/core/drop.js';
import { DropmonError } from '../../src/core/errors.js';
import { KallsymsTable } from '../../src/kernel/kallsyms.js';
import { DropReasons } from '../../src/kernel/drop-reasons.js';
import { bpfSourceProvider } from '../../src/sources/bpf/provider.js';
import type { KernelReasons } from '../../src/sources/kernel-reasons.js';
import { planSource, SourceProblem, type SourceContext, type SourceProvider, type SourceRequest } from '../../src/sources/plan.js';
import { SOURCE_PROVIDERS } from '../../src/sources/registry.js';
import { chooseSource } from '../../src/sources/select.js';

/** A source that only remembers how it was built. */
class DummySource implements DropSource {
  readonly name = 'dummy';
  constructor(
    readonly request: SourceRequest,
    readonly context: SourceContext,
  ) {}
  async start(_sink: DropSink): Promise<void> {}
  describe(): string {
    return 'dummy drops';
  }
  drain(): void {}
  close(): void {}
}

/** Its provider: preferred over every other source where it can run. */
function dummyProvider(problem?: string): SourceProvider {
  return {
    name: 'dummy',
    title: 'Dummy',
    auto: { rank: 0, why: 'the dummy source costs nothing' },
    claims: () => undefined,
    unavailable: () => (problem === undefined ? undefined : `Dummy is not usable here (${problem})`),
    check: (r, chosen) => {
      if (chosen && r.stack) throw new SourceProblem('dummy-stack', 'the dummy source has no stacks');
    },
    reportsReasons: () => true,
    perPacket: () => false,
    create: (r, context) => new DummySource(r, context),
  };
}

/** The registry with the dummy source registered: one line, as a source's folder would add it. */
function withDummy(problem?: string): SourceProvider[] {
  const registry = SOURCE_PROVIDERS.map((p) => (p.name === 'bpf' ? bpfSourceProvider({ problem: () => undefined, trapProblem: () => undefined }) : p));
  return [...registry, dummyProvider(problem)];
}

function request(r: Partial<SourceRequest> = {}): SourceRequest {
  return { software: true, hardware: false, reasons: [], protocols: [], locations: [], ...r };
}

const CORE = new Map([
  [2, 'NO_SOCKET'],
  [5, 'TCP_CSUM'],
  [6, 'SOCKET_FILTER'],
]);

/** A kernel with three core reasons and no BTF. */
function kernel(k: Partial<KernelReasons> = {}): KernelReasons {
  return { hasReasons: true, namer: new DropReasons({ core: CORE, btfDir: '/nonexistent' }), ...k };
}

test('a source registered in its own line: auto picks it where it can run, else goes on down the list', () => {
  const choice = chooseSource(request(), 'auto', withDummy());
  assert.deepEqual([choice.name, choice.why, choice.by], ['dummy', 'the dummy source costs nothing', 'preference']);
  const next = chooseSource(request(), 'auto', withDummy('no dummy device'));
  // Why the next one: the preferred one could not run.
  assert.deepEqual([next.name, next.why], ['bpf', 'Dummy is not usable here (no dummy device)']);
  // Options another source needs still decide.
  assert.equal(chooseSource(request({ stack: true }), 'auto', withDummy()).name, 'tracefs');
  // Asked for by name with options only another source has: that source refuses them first.
  assert.throws(() => chooseSource(request({ stack: true }), 'dummy', withDummy()), (e: unknown) => e instanceof SourceProblem && e.code === 'needs-tracefs');
});

test('a registered source asked for by name is checked and built by the plan', () => {
  const r = request({ reasons: ['no_socket', 'SKB_DROP_REASON_TCP_CSUM'], protocols: [0x0800] });
  const choice = chooseSource(r, 'dummy', withDummy('not needed when asked for'));
  assert.deepEqual([choice.name, choice.why, choice.by], ['dummy', 'asked for', 'name']);
  const k = kernel();
  const plan = planSource(choice, r, k, undefined);
  const warnings: string[] = [];
  const source = plan.create((m) => warnings.push(m));
  assert.ok(source instanceof DummySource);
  assert.equal(source.request, r);
  assert.equal(source.context.kernel, k);
  assert.deepEqual(source.context.filter, { reasons: [2, 5], reasonNames: ['NO_SOCKET', 'TCP_CSUM', 'NO_SOCKET', 'TCP_CSUM'], protocols: [0x0800], locations: [] });
  assert.equal(plan.perPacket, false);
  source.context.warn('hello');
  assert.deepEqual(warnings, ['hello']);
});

test('reasons are checked against the kernel: unknown names, a kernel without reasons, a source that cannot tell them', () => {
  const dummy = chooseSource(request(), 'dummy', withDummy());
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof SourceProblem, String(err));
      return [err.code, err.exitCode];
    }
    return undefined;
  };
  assert.deepEqual(code(() => planSource(dummy, request({ reasons: ['NO_SUCH'] }), kernel(), undefined)), ['unknown-reason', 2]);
  assert.deepEqual(code(() => planSource(dummy, request({ reasons: ['NO_SOCKET'] }), kernel({ hasReasons: false }), undefined)), ['no-reasons', 1]);
  const summary = request({ reasons: ['NO_SOCKET'], netdm: { mode: 'summary' } });
  assert.deepEqual(code(() => planSource(chooseSource(summary, 'auto'), summary, kernel(), undefined)), ['reasons-unseen', 2]);
  const packet = request({ reasons: ['NO_SOCKET'], netdm: { mode: 'packet' } });
  assert.deepEqual(planSource(chooseSource(packet, 'auto'), packet, kernel(), undefined).filter.reasons, [2]);
  // No table to check against (no tracefs, no BTF): the names go through as typed.
  const none = kernel({ namer: new DropReasons({ core: new Map(), btfDir: '/nonexistent' }) });
  assert.deepEqual(planSource(dummy, request({ reasons: ['anything'] }), none, undefined).filter, {
    reasons: [],
    reasonNames: ['ANYTHING'],
    protocols: [],
    locations: [],
  });
});

test('locations need kallsyms and are resolved to address ranges', () => {
  const dummy = chooseSource(request(), 'dummy', withDummy());
  const table = KallsymsTable.parse('ffffffff81000000 T _stext\nffffffff81001000 T tcp_v4_rcv\nffffffff81002000 T ip_rcv\n');
  const r = request({ locations: ['tcp_v4_rcv', '0xffffffff81002010'] });
  assert.deepEqual(planSource(dummy, r, kernel(), table).filter.locations, [
    [0xffffffff81001000n, 0xffffffff81002000n],
    [0xffffffff81002010n, 0xffffffff81002011n],
  ]);
  assert.throws(() => planSource(dummy, r, kernel(), undefined), (e: unknown) => e instanceof SourceProblem && e.code === 'no-kallsyms' && e.exitCode === 1);
  assert.throws(
    () => planSource(dummy, request({ locations: ['no_such_function'] }), kernel(), table),
    (e: unknown) => e instanceof SourceProblem && e.code === 'bad-location' && e.cause instanceof DropmonError && /no kernel function named/.test(e.message),
  );
});

test('the tracefs source is refused when tracefs could not be read, with the reason it could not', () => {
  const why = new DropmonError('tracefs is not available: /sys/kernel/tracing does not exist');
  const tracefs = chooseSource(request(), 'tracefs');
  assert.throws(() => planSource(tracefs, request(), kernel({ tracefsProblem: why }), undefined), (e: unknown) => e === why);
  // The other sources do without it.
  const netdm = chooseSource(request(), 'netdm');
  assert.equal(planSource(netdm, request(), kernel({ tracefsProblem: why }), undefined).choice.name, 'netdm');
});
