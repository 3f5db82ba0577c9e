#!/usr/bin/env node
/** dropmon's entry point: dispatch to a command, turn errors into messages and exit codes. */
import { basename } from 'node:path';
import { DropmonError } from '../core/errors.js';
import { dropmonVersion } from '../core/version.js';
import { reclaimAtStart, runCleanups } from './lifecycle.js';
import { terminalSafe } from '../core/terminal-safe.js';

// Commands are imported when they run: each pulls in its own sources and
// outputs (BPF, SQLite, the HTTP server), and loading all of them costs every
// command a noticeable start-up, most of all on small or emulated machines.

const HELP = `Usage: dropmon <command> [options]

A network drop monitor for Linux: every packet the kernel drops, where and why.

Commands:
  watch       show drops live, per drop point and reason, with the counters
              that moved beside them (dropmon watch --help)
  top         a full-screen live view of every drop, local or of a remote
              'dropmon serve' (dropmon top --help)
  diagnose    watch for a while, then rank the causes, with evidence and fixes
  counters    every kernel drop counter in one place, grouped by layer, explained
  record      watch and write the drops and counters to a recording (SQLite)
  report      analyse a recording: top drops, reasons over time, diagnosis;
              as text, JSON or a self-contained HTML page
  serve       the always-on service: recording, HTTP API, dashboard, /metrics,
              alerts (dropmon serve --help)
  explain     what a drop reason, counter, kernel function or devlink trap means
  netdm       the kernel's NET_DM state: status, stats, stop (dropmon netdm --help)
  dwdump      dropwatch's dwdump: dropped packets as a pcap of NET_DM messages,
              same flags (also installed as 'dwdump'; dropmon dwdump --help)

'dropmon <command> --help' describes a command's options.

Options:
  -h, --help      this help
  -V, --version   print the version
`;

/** Commands that touch the kernel, so first clean up after dropmons that died (serve: the service does). */
const TOUCH_THE_KERNEL = new Set(['watch', 'top', 'netdm', 'dwdump', 'diagnose', 'record']);

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && TOUCH_THE_KERNEL.has(cmd)) await reclaimAtStart();
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    case '-V':
    case '--version':
      process.stdout.write(`dropmon ${dropmonVersion()}\n`);
      return 0;
    case 'watch':
      return (await import('./watch.js')).watchCommand(rest);
    case 'top':
      return (await import('./top.js')).topCommand(rest);
    case 'netdm':
      return (await import('./netdm.js')).netdmCommand(rest);
    case 'dwdump':
      return (await import('./dwdump.js')).dwdumpCommand(rest);
    case 'counters':
      return (await import('./counters.js')).countersCommand(rest);
    case 'diagnose':
      return (await import('./diagnose.js')).diagnoseCommand(rest);
    case 'explain':
      return (await import('./explain.js')).explainCommand(rest);
    case 'record':
      return (await import('./record.js')).recordCommand(rest);
    case 'report':
      return (await import('./report.js')).reportCommand(rest);
    case 'serve':
      return (await import('./serve.js')).serveCommand(rest);
    default:
      process.stderr.write(`dropmon: unknown command ${JSON.stringify(cmd)}\n${HELP}`);
      return 2;
  }
}

// The reader of dropmon's output went away (`dropmon counters --all | head`).
// Commands with a pipeline (watch, dwdump) stop it themselves with a last
// interval; the service keeps monitoring whatever happens to its log pipe;
// every other command undoes its changes to the host (a tracepoint left
// enabled costs every packet) and stops quietly, as Unix tools do.
const argv = process.argv.slice(2);
if (basename(process.argv[1] ?? '') === 'dwdump') argv.unshift('dwdump');
const STOPS_ITS_OWN_PIPELINE = new Set(['watch', 'dwdump']);
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (argv[0] === 'serve') return;
    if (stream === process.stdout && STOPS_ITS_OWN_PIPELINE.has(argv[0])) return;
    runCleanups();
    process.exit(0);
  });
}

main(argv).then(
  (code) => {
    runCleanups();
    process.exitCode = code;
    // Do not wait for stray timers: a monitor that was told to stop, stops.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    runCleanups();
    if (err instanceof DropmonError) {
      process.stderr.write(terminalSafe(`dropmon: ${err.message}\n${err.hint ? `  hint: ${err.hint}\n` : ''}`));
      process.exit(err.exitCode);
    }
    process.stderr.write(`dropmon: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
