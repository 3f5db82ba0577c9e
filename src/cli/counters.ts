/**
 * `dropmon counters`: every kernel counter that counts drops, in one place,
 * grouped by layer, each with what it means; --watch shows what moves.
 */
import { UsageError } from '../core/errors.js';
import { loadKnowledge } from '../knowledge/load.js';
import type { NetnsTarget } from '../kernel/setns.js';
import { resolveNetnsSpec } from '../kernel/namespaces.js';
import { CounterSampler, takeSnapshot, type SnapshotOptions } from '../sources/counters/snapshot.js';
import { counterTableJson, deltasJson, formatCounterTable, formatDeltas, selectCounters, selectDeltas } from '../outputs/counters.js';
import { parseSeconds, parseCommandArgs } from './args.js';
import { onStopSignal } from './lifecycle.js';
import { terminalSafe } from '../core/terminal-safe.js';

export const COUNTERS_HELP = `Usage: dropmon counters [options]

Every kernel counter that counts dropped packets, in one place: links and NICs
(rtnetlink, ethtool, ethtool -S), softnet backlogs, qdiscs, IP, TCP, UDP,
sockets (with their processes), conntrack, neighbour tables, devlink traps.
By default only drop-related counters above zero, grouped by layer, each with
its meaning ("dropmon explain NAME" says more about one).

Options:
  --all              every counter read, zero or not, drop-related or not
  --json             JSON (with --watch: one object per line and interval)
  --netns NS         the counters of another network namespace: a name from
                     'ip netns', a process id, or /proc/PID/ns/net
  --watch            every interval, print the counters that moved, with rates
  -i, --interval S   seconds between --watch samples (default 1)
  -d, --duration S   stop --watch after S seconds (default: until Ctrl-C)
  --no-sockets       leave out per-socket counters (/proc/net/udp, raw, icmp)
  --no-ethtool       leave out ethtool statistics (an ioctl round per interface)
  -h, --help         this help

Exit status: 0 success, 1 runtime error, 2 usage error.
`;

export async function countersCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('counters', argv, {
    all: { type: 'boolean' },
    json: { type: 'boolean' },
    netns: { type: 'string' },
    watch: { type: 'boolean' },
    interval: { type: 'string', short: 'i' },
    duration: { type: 'string', short: 'd' },
    'no-sockets': { type: 'boolean' },
    'no-ethtool': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(COUNTERS_HELP);
    return 0;
  }
  const intervalS = parseSeconds('--interval', v.interval, 0.1, 3600) ?? 1;
  const durationS = parseSeconds('--duration', v.duration, 0.1, 31 * 86400);
  if (!v.watch && (v.interval !== undefined || v.duration !== undefined)) throw new UsageError('--interval and --duration go with --watch');
  const netns: NetnsTarget | undefined = v.netns !== undefined ? resolveNetnsSpec(v.netns) : undefined;
  const all = v.all ?? false;
  const json = v.json ?? false;
  const kb = loadKnowledge();
  const options: SnapshotOptions = {
    ...(netns ? { netns } : {}),
    sockets: v['no-sockets'] ? 'none' : all ? 'all' : 'drops',
    ethtool: !v['no-ethtool'],
    ethtoolDriver: !v['no-ethtool'],
  };

  if (!v.watch) {
    const snap = takeSnapshot(options);
    const shown = selectCounters(snap.readings, kb, all);
    if (json) process.stdout.write(JSON.stringify(counterTableJson(shown, snap.errors, netns?.spec)) + '\n');
    else {
      process.stdout.write(formatCounterTable(shown));
      for (const e of snap.errors) process.stderr.write(`dropmon: not read: ${terminalSafe(e)}\n`);
    }
    return 0;
  }

  // --watch: a baseline, then what moved each interval, until a signal or the duration.
  // Sockets without drops cannot add any: one that starts dropping later counts from zero.
  const sampler = new CounterSampler({ ...options, sockets: v['no-sockets'] ? 'none' : 'drops' });
  const first = sampler.baseline();
  for (const e of first.errors) process.stderr.write(`dropmon: not read: ${terminalSafe(e)}\n`);
  const reported = new Set(first.errors);
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const s = sampler.sample();
      for (const e of s.snapshot.errors) {
        if (reported.has(e)) continue;
        reported.add(e);
        process.stderr.write(`dropmon: not read: ${terminalSafe(e)}\n`);
      }
      const shown = selectDeltas(s.deltas, kb, all);
      process.stdout.write(json ? JSON.stringify(deltasJson(s.snapshot.wallMs, s.seconds, shown)) + '\n' : formatDeltas(s.snapshot.wallMs, s.seconds, shown));
    }, intervalS * 1000);
    const finish = () => {
      clearInterval(tick);
      if (deadline) clearTimeout(deadline);
      resolve();
    };
    const deadline = durationS !== undefined ? setTimeout(finish, durationS * 1000 + 50) : undefined;
    onStopSignal(finish);
    // Said only once Ctrl-C is handled: a signal sent on reading this line must find the handler.
    process.stderr.write(`dropmon: watching counters${netns ? ` of ${netns.spec}` : ''} every ${intervalS} s; Ctrl-C to stop\n`);
  });
  return 0;
}
