/**
 * `dropmon top`: every drop on the host on one live screen, or on a remote
 * `dropmon serve` (--remote). Thin wiring only: watch's flags and source
 * set-up (watch-flags.ts, watch-source.ts), the view (src/outputs/top/), the
 * remote client (src/sources/remote/).
 */
import { hostname, release } from 'node:os';
import { UsageError } from '../core/errors.js';
import type { LiveOrigin } from '../core/live.js';
import { Pipeline } from '../core/pipeline.js';
import { TopApp } from '../outputs/top/app.js';
import { TopOutput } from '../outputs/top/local.js';
import { openFullScreen, useColor, useUnicode, type FullScreen } from '../outputs/top/terminal.js';
import { resolveClientToken } from '../sources/remote/auth.js';
import { DEFAULT_STATE_DIR, stateTokenPath } from '../service/token.js';
import { RemoteClient, parseRemoteUrl } from '../sources/remote/client.js';
import { onCleanup, onStopSignal } from './lifecycle.js';
import { COUNTERS_HELP, SOURCE_HELP, TIMING_HELP, parseWatchFlags, type WatchFlags } from './watch-flags.js';
import { pipelineLimits, setUpWatch } from './watch-source.js';
import { loadKnowledge } from '../knowledge/load.js';
import { terminalSafe } from '../core/terminal-safe.js';

export const TOP_HELP = `Usage: dropmon top [options]
       dropmon top --remote URL [--token-file FILE]

Every packet drop on this host (or on a host running 'dropmon serve') on one
live screen: drops per second, lost events and namespaces with drops; a table
of drop points (reason, function, namespace/container, interface, protocol,
rate now, the last minute, total); the kernel counters that moved, blind
spots marked. Keys: ? help, Enter explain a row, s sort, g group, / filter,
b benign drops, p pause, c clear, q quit. Needs a terminal ('dropmon watch'
writes lines for pipes and logs) and, locally, root.

Screen:
      --quiet-benign      start with usually-benign drops hidden (key b)
      --monochrome        no colours (NO_COLOR=1 does the same)

Remote (the source options below are the service's, not set from here):
      --remote URL        read a dropmon serve's event stream: http://HOST:PORT
      --token-file FILE   the service's bearer token (first line); also
                          DROPMON_TOKEN, or --token TOKEN (visible in ps);
                          root, for a service on this host: the token it
                          generated (/var/lib/dropmon/token)

${COUNTERS_HELP}
${TIMING_HELP}
${SOURCE_HELP}
Exit status: 0 when quit (q, Ctrl-C, --duration); 1 on a runtime error; 2 on
bad usage (no terminal).
`;

/** Options of watch that write lines or packets: top draws a screen instead. */
const OUTPUT_ONLY = ['json', 'timestamps', 'pcap', 'pcap-format', 'packets', 'all'];
/** What --remote leaves to the service. */
const LOCAL_ONLY = new Set(Object.keys({ stack: 0, count: 0, 'max-points': 0, reason: 0, protocol: 0, location: 0, 'list-reasons': 0, 'buffer-kb': 0, source: 0, mode: 0, sw: 0, hw: 0, trunc: 0, queue: 0, force: 0, passive: 0, netns: 0, interface: 0, 'no-counters': 0, 'counters-netns': 0, interval: 0 }));

export async function topCommand(argv: string[]): Promise<number> {
  const { flags, extra, given } = parseWatchFlags('top', argv, {
    remote: { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    monochrome: { type: 'boolean' },
  });
  if (flags === 'help') {
    process.stdout.write(TOP_HELP);
    return 0;
  }
  for (const o of OUTPUT_ONLY)
    if (given.has(o)) throw new UsageError(`--${o} is an option of watch: top draws a screen`, "use 'dropmon watch' for lines, JSON and pcap");
  const remote = extra.remote as string | undefined;
  if (remote === undefined && (extra.token !== undefined || extra['token-file'] !== undefined)) throw new UsageError('--token and --token-file go with --remote');
  if (remote !== undefined) {
    const local = [...given].filter((g) => LOCAL_ONLY.has(g));
    if (local.length) throw new UsageError(`--${local[0]} picks the local source; the service's is set in its configuration (PUT /api/v1/config)`);
  }
  if (flags.listReasons) return (await setUpWatch(flags, warnLine)) === 'listed' ? 0 : 1;
  if (!process.stdin.isTTY || !process.stdout.isTTY)
    throw new UsageError('top draws a full screen and needs a terminal (stdin and stdout)', "use 'dropmon watch' (or 'watch --json') for pipes, files and logs");
  const view = { color: useColor(process.stdout, process.env, extra.monochrome === true), unicode: useUnicode(process.env), kb: loadKnowledge() };
  return remote !== undefined
    ? runRemote(remote, resolveClientToken({ token: extra.token as string | undefined, tokenFile: extra['token-file'] as string | undefined, env: process.env, stateTokenFile: stateTokenPath(DEFAULT_STATE_DIR), url: parseRemoteUrl(remote) }), flags, view)
    : runLocal(flags, view);
}

function warnLine(m: string): void {
  process.stderr.write(`dropmon: warning: ${terminalSafe(m)}\n`);
}

type ViewOptions = { color: boolean; unicode: boolean; kb: ReturnType<typeof loadKnowledge> };

/** Take over the terminal, given back on every way out; warnings go to the screen and, after, to stderr. */
function screenFor(origin: LiveOrigin, flags: WatchFlags, view: ViewOptions, quit: () => void) {
  const term: FullScreen = openFullScreen(process.stdin, process.stdout);
  onCleanup(() => term.restore());
  const warnings: string[] = [];
  const app = new TopApp({ terminal: term, origin, kb: view.kb, color: view.color, unicode: view.unicode, hideBenign: flags.quietBenign, onQuit: quit });
  term.onKey((s, k) => app.key(s, k));
  term.onResize(() => app.resize());
  app.render();
  const warn = (m: string) => {
    if (warnings.length < 100) warnings.push(m);
    app.setStatus(m);
  };
  const close = () => {
    term.restore();
    for (const w of warnings) warnLine(w);
  };
  return { app, warn, close };
}

async function runLocal(flags: WatchFlags, view: ViewOptions): Promise<number> {
  // The source's warnings go to stderr until the screen is up, then onto it.
  let warnTo = warnLine;
  const setup = await setUpWatch(flags, (m) => warnTo(m));
  if (setup === 'listed') return 0;
  const origin = { host: hostname(), kernel: release(), source: setup.sourceName, intervalMs: flags.intervalMs };
  // The screen (its q key) exists before the pipeline it stops.
  const running: { pipeline?: Pipeline } = {};
  const { app, warn, close } = screenFor(origin, flags, view, () => running.pipeline?.stop('signal'));
  warnTo = warn;
  const pipeline = (running.pipeline = new Pipeline({
    source: setup.source,
    outputs: [new TopOutput((r) => app.interval(r), setup.symbols, setup.attribution, view.kb)],
    // Flat: top marks benign drops itself, and the key b hides them.
    annotate: setup.annotate('flat'),
    ...pipelineLimits(flags, setup),
    onStarted: () => app.setStatus(''),
  }));
  app.setStatus(`starting ${setup.sourceName}…`);
  onStopSignal(() => pipeline.stop('signal'));
  try {
    await pipeline.run();
  } finally {
    setup.source.close();
    warnTo = warnLine;
    close();
  }
  return 0;
}

async function runRemote(spec: string, token: string | undefined, flags: WatchFlags, view: ViewOptions): Promise<number> {
  const client = new RemoteClient(parseRemoteUrl(spec), token);
  onCleanup(() => client.close());
  // Checked before the screen is taken: a wrong address or token is a plain message.
  const st = await client.status();
  let origin: LiveOrigin = { host: st.hostname, kernel: st.kernel, source: st.source || st.state, intervalMs: st.intervalMs, remote: client.base.href };
  let finish: (err?: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
  const { app, close } = screenFor(origin, flags, view, () => finish());
  onStopSignal(() => finish());
  if (flags.durationMs !== undefined) setTimeout(() => finish(), flags.durationMs).unref();
  app.setStatus(st.state === 'running' ? 'connecting' : `the service is ${st.state}`);
  client.follow({
    interval: (r) => app.interval(r),
    state: (s) => {
      origin = { ...origin, source: s.source || origin.source, ...(s.intervalMs ? { intervalMs: s.intervalMs } : {}) };
      app.setOrigin(origin);
      app.setStatus(s.state === 'running' ? '' : `the service is ${s.state}`);
    },
    status: (t) => app.setStatus(t),
    fatal: (err) => finish(err),
  });
  try {
    await done;
  } finally {
    client.close();
    close();
  }
  return 0;
}
