/**
 * `dropmon watch`: live drop points per interval. Thin wiring only:
 * flags → source + filter + pipeline + output (flags in watch-flags.ts, the
 * source and counters in watch-source.ts, shared with `top`).
 */
import { Pipeline, type IntervalOutput, type PacketOutput } from '../core/pipeline.js';
import type { DropSource } from '../core/drop.js';
import { PacketJsonOutput, PacketTextOutput, describeDrop } from '../outputs/packets.js';
import { PcapWriter } from '../outputs/pcap.js';
import type { Symbolizer } from '../kernel/kallsyms.js';
import { NetdmDropSource } from '../sources/netdm/source.js';
import { TextOutput } from '../outputs/text.js';
import { CorrelationJsonOutput, CorrelationTextOutput } from '../outputs/correlation.js';
import { JsonOutput } from '../outputs/json.js';
import { onCleanup, onStopSignal } from './lifecycle.js';
import { COUNTERS_HELP, SOURCE_HELP, TIMING_HELP, parseWatchFlags } from './watch-flags.js';
import { pipelineLimits, setUpWatch } from './watch-source.js';
import { terminalSafe } from '../core/terminal-safe.js';

export const WATCH_HELP = `Usage: dropmon watch [options]

Show every packet the kernel drops, live: one line per drop point (where,
why, protocol) per interval, from the skb:kfree_skb tracepoint read through
a private tracefs instance. Needs root (CAP_SYS_ADMIN for tracefs).
'dropmon top' shows the same on a full screen.

Output:
      --json              JSON lines: one "drop" object per drop point per
                          interval and one "interval" object with totals and
                          lost events (fields: see README)
      --timestamps        a "# <time> interval N" line before each interval
      --quiet-benign      leave out drops that are usually benign (a socket
                          closed with data queued, TCP teardown, ...); by
                          default they are summed on one "~ usually benign" line
      --all               no noise policy: every drop point on its own line

Packets:
      --packets           BPF: also one line per dropped packet (its first 128
                          bytes; at most 1000 per second per CPU), with --pcap
      --pcap FILE         NET_DM packet mode or --packets: write the dropped
                          packets to FILE (- for stdout) as pcapng, each with a
                          comment naming the drop location and reason
      --pcap-format F     pcapng (default) or netlink (dwdump's format: the
                          whole NET_DM message, Wireshark's net_dm dissector)

${COUNTERS_HELP}
${TIMING_HELP}
${SOURCE_HELP}
Exit status: 0 when stopped by --duration, --count or a signal; 1 on a
runtime error; 2 on bad usage. Lost events are reported every interval,
never silently.
`;

/** Outputs that replace the console's, for commands built on watch (record). */
export type WatchOutputsFactory = (context: { source: DropSource; symbols: Symbolizer; intervalMs: number }) => {
  outputs: IntervalOutput[];
  packetOutputs: PacketOutput[];
};

export async function watchCommand(argv: string[], ownOutputs?: WatchOutputsFactory): Promise<number> {
  const { flags } = parseWatchFlags('watch', argv);
  if (flags === 'help') {
    process.stdout.write(WATCH_HELP);
    return 0;
  }
  const warn = (m: string) => process.stderr.write(`dropmon: warning: ${terminalSafe(m)}\n`);
  const setup = await setUpWatch(flags, warn);
  if (setup === 'listed') return 0;
  const { source, symbols, perPacket } = setup;
  // With the pcap on stdout, the lines go to stderr.
  const toStderr = flags.pcap === '-';
  const write = (t: string) => {
    (toStderr ? process.stderr : process.stdout).write(t);
  };
  const pcap = flags.pcap !== undefined ? new PcapWriter(flags.pcap, flags.pcapFormat, (s) => describeDrop(s, symbols), warn) : undefined;
  if (pcap) onCleanup(() => pcap.close());
  const outputs: IntervalOutput[] = [
    flags.json ? new JsonOutput(write, symbols, setup.attribution, source.name) : new TextOutput(write, symbols, setup.attribution, flags.timestamps, perPacket),
  ];
  const packetOutputs: PacketOutput[] = [];
  if (perPacket) packetOutputs.push(flags.json ? new PacketJsonOutput(write, symbols, source.name) : new PacketTextOutput(write, symbols));
  if (pcap) packetOutputs.push(pcap);
  // Counters beside the drops: sampled at each interval's close, joined with its drop points.
  const annotate = setup.annotate(flags.all ? 'flat' : flags.quietBenign ? 'hide' : flags.json ? 'mark' : 'apart');
  const own = ownOutputs?.({ source, symbols, intervalMs: flags.intervalMs });
  if (!own && !perPacket) {
    if (flags.json) outputs.push(new CorrelationJsonOutput(write, symbols, source.name, setup.attribution));
    else outputs.push(new CorrelationTextOutput(write, symbols, setup.attribution));
  }
  const pipeline = new Pipeline({
    source,
    outputs: own ? own.outputs : outputs,
    annotate,
    packetOutputs: own ? [...own.packetOutputs, ...(pcap ? [pcap] : [])] : packetOutputs,
    ...pipelineLimits(flags, setup),
    onStarted: () => {
      if (source instanceof NetdmDropSource) pcap?.family(source.familyMessage);
      process.stderr.write(`dropmon: watching ${source.describe()}; Ctrl-C to stop\n`);
    },
  });
  onStopSignal(() => pipeline.stop('signal'));
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') pipeline.stop('output-closed');
  });
  await pipeline.run();
  source.close();
  if (pipeline.lost > 0) warn(`${pipeline.lost} events were lost in all (see the "lost" lines)`);
  return 0;
}
