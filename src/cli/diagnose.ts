/**
 * `dropmon diagnose`: watch drops and counters for a while, then say what is
 * wrong: causes ranked by the packets they cost, each with its evidence (drop
 * points, counters that moved), what to check and what to change.
 */
import { UsageError } from '../core/errors.js';
import type { IntervalReport } from '../core/interval.js';
import { annotateWithCounters, troubleAsWarnings } from '../core/annotate.js';
import { Diagnoser, type Finding } from '../core/diagnosis.js';
import { loadKnowledge } from '../knowledge/load.js';
import { Pipeline } from '../core/pipeline.js';
import { formatSymbol, Symbolizer } from '../kernel/kallsyms.js';
import { loadKallsymsInBackground } from '../kernel/kallsyms-loader.js';
import type { NetnsTarget } from '../kernel/setns.js';
import { attribution, resolveNetnsSpec } from '../kernel/namespaces.js';
import { chooseCounterSampler } from '../sources/counters/host-sampler.js';
import { NamespaceConfigs } from '../sources/config/reader.js';
import { readKernelReasons } from '../sources/kernel-reasons.js';
import { planSource, type SourceRequest } from '../sources/plan.js';
import { chooseSource } from '../sources/select.js';
import { formatFindings, findingsJson } from '../outputs/diagnosis.js';
import { parseCount, parseSeconds, parseCommandArgs } from './args.js';
import { onCleanup, onStopSignal } from './lifecycle.js';
import { inFlagTerms } from './watch-source.js';
import { terminalSafe } from '../core/terminal-safe.js';

export const DIAGNOSE_HELP = `Usage: dropmon diagnose [options]

Watch every packet drop and every drop counter for a while, then print a
ranked diagnosis: the likely causes, most packets first, each with the
evidence (drop points, counters that moved), what to check and what to
change. Causes seen only in counters (NIC overruns, accept-queue overflows)
are included and marked as blind spots of the tracer. Needs root.

Options:
  -d, --duration S    how long to watch (default 10; Ctrl-C ends it early)
  -i, --interval S    counter sampling interval (default 1)
      --netns NS      this network namespace only (a name from 'ip netns', a
                      process id or /proc/PID/ns/net): its counters, and with
                      the BPF source only its drops (tracefs sees every
                      namespace's); by default the counters of every
                      namespace of the host are read
      --source NAME   auto (default: bpf where it can run, else tracefs), bpf
                      or tracefs
      --top N         causes to print (default 5; benign ones come after)
      --quiet-benign  leave out causes that are usually benign
      --json          one JSON object with the ranked findings
  -h, --help          this help

Exit status: 0 (whether or not drops were found; --json says), 1 on a
runtime error, 2 on bad usage.
`;

export async function diagnoseCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('diagnose', argv, {
    duration: { type: 'string', short: 'd' },
    interval: { type: 'string', short: 'i' },
    netns: { type: 'string' },
    source: { type: 'string' },
    top: { type: 'string' },
    'quiet-benign': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(DIAGNOSE_HELP);
    return 0;
  }
  const durationS = parseSeconds('--duration', v.duration, 0.5, 86400) ?? 10;
  const intervalS = Math.min(parseSeconds('--interval', v.interval, 0.1, 3600) ?? 1, durationS);
  const top = parseCount('--top', v.top, 1, 1000) ?? 5;
  const netns: NetnsTarget | undefined = v.netns !== undefined ? resolveNetnsSpec(v.netns) : undefined;
  const json = v.json ?? false;
  const kb = loadKnowledge();

  const symbols = new Symbolizer();
  const kallsyms = loadKallsymsInBackground().then(
    (t) => symbols.setTable(t),
    () => undefined,
  );
  if (v.source !== undefined && !['auto', 'bpf', 'tracefs'].includes(v.source))
    throw new UsageError(`unknown --source ${JSON.stringify(v.source)}; use auto, bpf or tracefs`);
  const warn = (m: string) => process.stderr.write(`dropmon: warning: ${terminalSafe(m)}\n`);
  // Every drop, software only; the namespace is the counters', and the drops' too where the source can tell it.
  const request: SourceRequest = {
    software: true,
    hardware: false,
    reasons: [],
    protocols: [],
    locations: [],
    ...(netns ? { netns: netns.spec, netnsWhereSupported: true } : {}),
  };
  const choice = inFlagTerms(() => chooseSource(request, v.source ?? 'auto'));
  const source = inFlagTerms(() => planSource(choice, request, readKernelReasons(), undefined)).create(warn);
  onCleanup(() => source.close());

  // Families not read go into the summary; a failing read is warned about, and the diagnosis goes on without it.
  // Every namespace's counters unless --netns names one (a namespace that goes away is read a last time).
  const notRead = new Set<string>();
  const counters = chooseCounterSampler({ ...(netns ? { netns } : {}), scope: 'host', intervalMs: intervalS * 1000, own: { sockets: 'all' } });
  onCleanup(() => counters.close());
  const sampler = counters.sampler;
  const trouble = troubleAsWarnings(warn);
  const annotate = annotateWithCounters({
    kb,
    ownNetns: (counters.attribution ?? attribution()).ownInode,
    sampler,
    symbolName: (a) => symbols.lookup(a)?.name,
    noise: 'flat',
    trouble: {
      notRead: (e) => notRead.add(e),
      failed: (e) => {
        notRead.add(`counters: ${e}`);
        trouble.failed(e);
      },
      recovered: trouble.recovered,
    },
  });

  // Each namespace's configuration before and after tells apart the causes a reason shares (which nft rule's counter moved).
  const home = netns?.inode ?? (counters.attribution ?? attribution()).ownInode;
  const configs = new NamespaceConfigs(counters.registry ? (i) => counters.registry?.get(i)?.target : undefined, home, netns);
  // Namespaces the host holds get their configuration's baseline before their drops, as far as can be.
  const heldNamespaces = () => (counters.registry?.list() ?? []).map((n) => n.inode);
  const diagnoser = new Diagnoser(kb, (a) => formatSymbol(symbols.lookup(a), a, false), netns !== undefined, counters.attribution ?? attribution());
  let drops = 0;
  let lost = 0;
  let intervals = 0;
  const pipeline = new Pipeline({
    source,
    outputs: [
      {
        interval: (r: IntervalReport) => {
          intervals++;
          drops += r.drops;
          lost += r.lostTotal;
          diagnoser.add(r.points, r.counters ?? [], (r.end - r.start) / 1000);
          // Those that dropped first: a namespace new in this interval gets its single reading, not a late baseline.
          configs.seen(new Set(r.points.map((p) => p.netns)));
          configs.discovered(heldNamespaces());
        },
      },
    ],
    intervalMs: Math.round(intervalS * 1000),
    maxPoints: 1000,
    durationMs: Math.round(durationS * 1000),
    outputsReady: kallsyms,
    annotate,
    onStarted: () => {
      process.stderr.write(`dropmon: diagnosing for ${durationS} s (${source.describe()}${netns ? `; counters of ${netns.spec}` : ''}); Ctrl-C to finish early\n`);
    },
  });
  onStopSignal(() => pipeline.stop('signal'));
  // The registry holds the host's namespaces since the counters' baseline: their configuration's baseline now, before any drop.
  configs.discovered(heldNamespaces());
  await pipeline.run();
  source.close();

  let findings: Finding[] = diagnoser.findings(configs.finish());
  if (v['quiet-benign']) findings = findings.filter((f) => f.benign !== 'usually');
  const summary = { seconds: durationS, intervals, drops, lost, netns: netns?.spec, notRead: [...notRead] };
  if (json) process.stdout.write(JSON.stringify(findingsJson(findings, summary)) + '\n');
  else process.stdout.write(formatFindings(findings, summary, top));
  return 0;
}
