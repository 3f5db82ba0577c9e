/**
 * `dropmon dwdump` (also run as `dwdump`): a drop-in for dropwatch's dwdump.
 * Same flags, same meanings, same file: NET_DM packet mode written as a pcap
 * of LINKTYPE_NETLINK records, each a cooked header and the whole NET_DM
 * message, the first being the family's NEWFAMILY so that Wireshark's net_dm
 * dissector finds it. Scripts written for dwdump (the kernel's
 * drop_monitor_tests.sh among them) run unchanged against it.
 *
 * Where it differs from dwdump, on purpose: bad usage exits 2 with a message
 * (dwdump exits 1, and also for -h); monitoring started by another program is
 * left alone with a message instead of a bare "Failed to configure"; losses
 * (a full socket, the kernel's tail drops) are said on stderr; records carry
 * the kernel's timestamp of the drop rather than the time of writing.
 */
import { UsageError } from '../core/errors.js';
import { Pipeline } from '../core/pipeline.js';
import { PcapWriter } from '../outputs/pcap.js';
import { NetdmClient } from '../sources/netdm/client.js';
import { NetdmDropSource } from '../sources/netdm/source.js';
import type { Origins } from '../sources/netdm/protocol.js';
import { expandLongPrefixes, parseAtol, parseCommandArgs } from './args.js';
import { onCleanup, onStopSignal } from './lifecycle.js';

export const DWDUMP_HELP = `Usage: dwdump [-w FILE] [-o sw|hw] [-t LENGTH] [-l LIMIT] [-b SIZE] [-p]
       dwdump -q | -s | -e [-o sw|hw]
       (also: dropmon dwdump ...)

Dump the packets the kernel drops to a pcap file, as dropwatch's dwdump does:
the kernel's drop monitor (NET_DM) in packet mode, each dropped packet one
record holding the whole NET_DM netlink message (LINKTYPE_NETLINK), which
Wireshark's net_dm dissector shows: location, reason, interface, devlink
trap, and the packet itself (tshark -r FILE -V, -Y 'net_dm.hw_trap_name').

  -w, --write FILE     write to FILE; '-' or no -w: standard output
  -o, --origin sw|hw   only software drops, or only hardware drops reported
                       by devices through devlink traps (default: both)
  -t, --trunc LENGTH   bytes of each packet the kernel sends; 0 or more than
                       65535 means 65535 (the default: whole packets)
  -l, --limit LIMIT    the kernel's per-CPU queue of packets waiting to be
                       sent (default 1000); packets past it are tail drops
  -b, --bufsize SIZE   receive buffer of the alert socket, bytes
                       (default 16 MiB; dwdump's is 1 MiB)
  -p, --passive        only listen: NET_DM is configured and started by
                       another program (dwdump, dropwatch, dropmon)
  -q, --query          print the kernel's NET_DM configuration and exit
  -s, --stats          print the kernel's tail-drop counts and exit
  -e, --exit           stop NET_DM monitoring (-o: which origin) and exit
  -h, --help           this help

Runs until SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGPIPE (also when the reader
of standard output goes away), then stops the monitoring it started: NET_DM
is one state per host. It refuses to disturb monitoring that another program
runs (dropmon watch --force takes it over; -p listens beside it). NET_DM exists
only in the initial network namespace; it needs CAP_NET_ADMIN and
CAP_SYS_ADMIN (root).

Exit status: 0 when stopped by a signal or a closed output; 1 when NET_DM is
missing, busy or refuses, or FILE cannot be written; 2 on bad usage.
`;

type Action = 'capture' | 'query' | 'stats' | 'exit';

export interface DwdumpOptions {
  readonly action: Action;
  /** '-' for standard output. */
  readonly file: string;
  readonly origins: Origins;
  readonly truncLen: number;
  readonly queueLen: number;
  readonly rcvbuf: number | undefined;
  readonly passive: boolean;
}

const LONG = ['write', 'trunc', 'query', 'limit', 'passive', 'stats', 'bufsize', 'origin', 'exit', 'help'] as const;
const HINT = "see 'dwdump --help'";

/** dwdump's flags and defaults; 'help' for -h. */
export function parseDwdumpArgs(argv: readonly string[]): DwdumpOptions | 'help' {
  const parsed = parseCommandArgs('dwdump', expandLongPrefixes(argv, LONG, HINT), {
    write: { type: 'string', short: 'w' },
    trunc: { type: 'string', short: 't' },
    query: { type: 'boolean', short: 'q' },
    limit: { type: 'string', short: 'l' },
    passive: { type: 'boolean', short: 'p' },
    stats: { type: 'boolean', short: 's' },
    bufsize: { type: 'string', short: 'b' },
    origin: { type: 'string', short: 'o' },
    exit: { type: 'boolean', short: 'e' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`, HINT);
  let origins: Origins = { sw: true, hw: true };
  if (v.origin !== undefined) {
    if (v.origin === 'sw') origins = { sw: true, hw: false };
    else if (v.origin === 'hw') origins = { sw: false, hw: true };
    else throw new UsageError(`invalid origin ${JSON.stringify(v.origin)}: use sw or hw`, HINT);
  }
  // dwdump: 0 and anything past 16 bits mean "no truncation", which NET_DM caps at 0xffff.
  let truncLen = 0xffff;
  if (v.trunc !== undefined) {
    const t = parseAtol('-t', v.trunc, 0xffffffff, HINT);
    truncLen = t === 0 || t > 0xffff ? 0xffff : t;
  }
  if (v.write === '') throw new UsageError('-w takes a file name (or - for standard output)', HINT);
  // dwdump answers -q before -s before -e, whatever their order.
  const action: Action = v.query ? 'query' : v.stats ? 'stats' : v.exit ? 'exit' : 'capture';
  return {
    action,
    file: v.write ?? '-',
    origins,
    truncLen,
    queueLen: v.limit !== undefined ? parseAtol('-l', v.limit, 0xffffffff, HINT) : 1000,
    rcvbuf: v.bufsize !== undefined ? positive('-b', parseAtol('-b', v.bufsize, 0x7fffffff, HINT)) : undefined,
    passive: v.passive ?? false,
  };
}

function positive(flag: string, n: number): number {
  if (n === 0) throw new UsageError(`${flag} takes a size in bytes greater than 0`, HINT);
  return n;
}

/** -q, -s, -e: one request, dwdump's words. */
function control(action: Exclude<Action, 'capture'>, origins: Origins): number {
  const client = NetdmClient.open();
  try {
    if (action === 'query') {
      const c = client.getConfig();
      process.stdout.write(`Alert mode: ${c.mode}\nTruncation length: ${c.truncLen}\nQueue length: ${c.queueLen}\n`);
    } else if (action === 'stats') {
      const s = client.getStats();
      process.stdout.write(`Software statistics:\nTail dropped: ${s.swDropped}\nHardware statistics:\nTail dropped: ${s.hwDropped}\n`);
    } else client.stop(origins);
    return 0;
  } finally {
    client.close();
  }
}

export async function dwdumpCommand(argv: string[]): Promise<number> {
  const o = parseDwdumpArgs(argv);
  if (o === 'help') {
    process.stdout.write(DWDUMP_HELP);
    return 0;
  }
  if (o.action !== 'capture') return control(o.action, o.origins);
  const warn = (m: string) => process.stderr.write(`dwdump: ${m}\n`);
  const source = new NetdmDropSource({
    mode: 'packet',
    origins: o.origins,
    truncLen: o.truncLen,
    queueLen: o.queueLen,
    passive: o.passive,
    keepRaw: true,
    ...(o.rcvbuf !== undefined ? { rcvbuf: o.rcvbuf } : {}),
    warn,
  });
  onCleanup(() => source.close());
  // dwdump ends on SIGPIPE: its reader (tshark -r -) went away. Node ignores
  // the signal and reports EPIPE on the write instead; both end the capture.
  let readerGone = false;
  const running: { pipeline?: Pipeline } = {};
  const closed = () => {
    readerGone = true;
    running.pipeline?.stop('output-closed');
  };
  // The netlink format keeps the kernel's own message: no comment to describe.
  const pcap = new PcapWriter(o.file, 'netlink', () => '', warn, closed);
  onCleanup(() => pcap.close());
  if (readerGone) return 0;
  const pipeline = new Pipeline({
    source,
    outputs: [
      {
        interval: (r) => {
          for (const [cause, n] of r.lost) warn(`${n} dropped packets not captured: ${cause}`);
        },
      },
    ],
    packetOutputs: [pcap],
    intervalMs: 1000,
    onStarted: () => pcap.family(source.familyMessage),
  });
  running.pipeline = pipeline;
  onStopSignal(() => pipeline.stop('signal'));
  process.on('SIGPIPE', closed);
  await pipeline.run();
  source.close();
  pcap.close();
  return 0;
}
