/**
 * Which drop source a request gets, and why (printed once at start by
 * `--source auto`). The sources' own knowledge is in their providers
 * (src/sources/<name>/provider.ts); this is the order they are asked in.
 *
 * `--source auto`, from the measurements (cost added to each drop on a 2-core VM):
 *   1. options only one source has decide it: --stack and --buffer-kb pick
 *      tracefs; --mode, --trunc, --queue, --force, --passive (packet bytes,
 *      or another program's NET_DM) pick NET_DM; --netns, --interface and
 *      --packets pick BPF;
 *   2. BPF where it can run (root or CAP_BPF+CAP_PERFMON, BTF, no lockdown,
 *      drop reasons): counted in the kernel per CPU, about half the cost of
 *      the bare ftrace event, nothing read per drop, and it names the
 *      interface and network namespace; with --hw also the devlink trap
 *      reports, counted in the kernel too, with the input port's interface
 *      and namespace and the trap type, when the tracepoint is in BTF;
 *   3. tracefs otherwise: reasons, protocol and stacks, at the ftrace cost
 *      plus a reader per event; with --hw the devlink_trap_report event.
 * All three see the same hardware drops: NET_DM's hardware alerts come from
 * the same devlink_trap_report tracepoint (minus control traps, which drop
 * nothing), so --hw alone no longer needs NET_DM.
 * NET_DM is not chosen on its own: its summary alerts carry no reason, and
 * it is one state per host that another tool may be using.
 *
 * After the choice every source checks the request (the chosen one what it
 * cannot do, the others the options only they have), and an output that
 * keeps packet bytes needs a source that delivers each packet.
 */
import { DropmonError } from '../core/errors.js';
import { SourceProblem, type SourceChoice, type SourceProvider, type SourceRequest } from './plan.js';
import { SOURCE_PROVIDERS } from './registry.js';

/** A source's name, as `--source` takes it ("auto" aside). */
export type SourceName = string;

function pick(providers: readonly SourceProvider[], requested: SourceName | 'auto', request: SourceRequest): SourceChoice {
  if (requested !== 'auto') {
    const provider = providers.find((p) => p.name === requested);
    if (!provider) throw new SourceProblem('unknown-source', `unknown source ${JSON.stringify(requested)}; use auto, ${providers.map((p) => p.name).join(', ')}`);
    return { provider, name: provider.name, why: 'asked for', by: 'name' };
  }
  for (const provider of providers) {
    const why = provider.claims(request);
    if (why !== undefined) return { provider, name: provider.name, why, by: 'options' };
  }
  let refused: string | undefined;
  for (const provider of preferred(providers)) {
    const problem = provider.unavailable(request);
    // The one chosen after others could not run says why they could not: that is why it is the one.
    if (problem === undefined) return { provider, name: provider.name, why: refused ?? provider.auto!.why, by: 'preference' };
    refused = problem;
  }
  throw new DropmonError(`no drop source can run here${refused ? ` (${refused})` : ''}`);
}

/** The sources `auto` may pick on its own, most preferred first. */
function preferred(providers: readonly SourceProvider[]): SourceProvider[] {
  return providers.filter((p) => p.auto).sort((a, b) => a.auto!.rank - b.auto!.rank);
}

/**
 * Choose the source for a request and check the request's options against
 * it (every source refuses the options only it has when another is chosen).
 * Throws SourceProblem; `providers` is the registry unless a test gives its own.
 */
export function chooseSource(request: SourceRequest, requested: SourceName | 'auto', providers: readonly SourceProvider[] = SOURCE_PROVIDERS): SourceChoice {
  const choice = pick(providers, requested, request);
  for (const p of providers) p.check(request, p === choice.provider);
  if (request.packetBytes && !choice.provider.perPacket(request))
    throw new SourceProblem('packet-bytes', 'keeping packet bytes needs per-packet records (NET_DM packet mode, or BPF per-packet records)');
  return choice;
}

/**
 * The next source `auto` would have picked after `failed`, which it preferred
 * but which then could not start (a verifier or memory limit of this host);
 * undefined when none can run. Not for a source the options asked for.
 */
export function nextPreferred(failed: SourceChoice, request: SourceRequest, providers: readonly SourceProvider[] = SOURCE_PROVIDERS): SourceProvider | undefined {
  if (failed.by !== 'preference') return undefined;
  const rest = preferred(providers);
  return rest.slice(rest.indexOf(failed.provider) + 1).find((p) => p.unavailable(request) === undefined);
}
