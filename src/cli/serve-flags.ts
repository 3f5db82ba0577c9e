/**
 * `dropmon serve`'s flags and help, and the configuration they make with the
 * file: defaults, then the file, then the flags.
 */
import { UsageError } from '../core/errors.js';
import { DEFAULT_CONFIG, applyConfig, loadConfigFile, type ServiceConfig } from '../service/config.js';
import { listValues, parseSeconds, parseCommandArgs } from './args.js';

export const SERVE_HELP = `Usage: dropmon serve [options]

Run dropmon as a service: drops (BPF, tracefs or NET_DM) and drop counters every
interval, recorded to SQLite, with an HTTP API, a live web dashboard,
Prometheus metrics at /metrics and alerts. Needs root (or CAP_SYS_ADMIN,
CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON). The API is documented in docs/api.md.

Two processes: the monitor (root: BPF, tracefs, NET_DM, namespaces, the
recording) and the API (HTTP, JSON, the dashboard, range queries), which runs
as the user "dropmon" (else "nobody"; apiUser in the config) with no
capability. The recording is shared with that user's group (mode 0640); a
killed API process is started again and the monitoring goes on.

Configuration: an optional YAML file (--config; example: contrib/dropmon.yaml)
and these flags, which override the file:
      --config FILE       the YAML configuration file (re-read on SIGHUP)
      --listen ADDR       HOST:PORT of the API and dashboard (default
                          127.0.0.1:9947). Beyond loopback a token is required
      --token-file FILE   file whose first line is the API's bearer token
                          (also: token/tokenFile in the config, DROPMON_TOKEN);
                          without one, a token is generated into the state
                          directory (mode 0600, root only)
      --state-dir DIR     where the generated token lives (default: the
                          recording's folder, /var/lib/dropmon)
      --print-url         print the dashboard's address with the token, then
                          exit (as root, with the service's --config; open
                          it in a browser on this host)
      --source NAME       auto (default: BPF where it can run, else tracefs),
                          bpf, tracefs or netdm
      --mode MODE         NET_DM: summary (default) or packet
  -i, --interval SEC      interval length (default 1)
  -r, --reason NAME       only these drop reasons (repeat or comma-separate)
  -p, --protocol P        only these protocols: ipv4, ipv6, arp, 0x88b5, ...
  -l, --location WHERE    only drops in these kernel functions (or addresses)
      --no-counters       do not sample the kernel's drop counters
      --netns NS          read the counters of this network namespace
      --record FILE       the recording (default /var/lib/dropmon/dropmon.db)
      --no-record         keep intervals in memory only
      --max-age AGE       recording retention by age (default 7d)
      --max-size SIZE     recording retention by size (default 1G)
      --web DIR           serve the dashboard from DIR (default: web/ of dropmon)
      --stopped           start with monitoring stopped (POST /api/v1/start)
  -h, --help              this help

Changes made through PUT /api/v1/config last until the next reload or
restart. SIGHUP re-reads --config and applies it (the listen address needs
a restart). Reloads and PUTs apply one at a time, in the order they came;
a reload reads the file at its turn, so it never undoes a later PUT. SIGTERM or SIGINT stops: the last interval is recorded and the
tracefs instance or NET_DM state is cleaned up. Alert lines go to stdout.

Exit status: 0 when stopped by a signal; 1 on a runtime error; 2 on bad
usage or a bad configuration.
`;

export interface ServeFlags {
  readonly configFile?: string;
  /** The flags as a config document, applied over the file. */
  readonly overrides: Record<string, unknown>;
  readonly stopped: boolean;
  readonly printUrl: boolean;
}

export function parseServeFlags(argv: string[]): ServeFlags | 'help' {
  const parsed = parseCommandArgs('serve', argv, {
    help: { type: 'boolean', short: 'h' },
    config: { type: 'string' },
    listen: { type: 'string' },
    'token-file': { type: 'string' },
    'state-dir': { type: 'string' },
    'print-url': { type: 'boolean' },
    source: { type: 'string' },
    mode: { type: 'string' },
    interval: { type: 'string', short: 'i' },
    reason: { type: 'string', short: 'r', multiple: true },
    protocol: { type: 'string', short: 'p', multiple: true },
    location: { type: 'string', short: 'l', multiple: true },
    'no-counters': { type: 'boolean' },
    netns: { type: 'string' },
    record: { type: 'string' },
    'no-record': { type: 'boolean' },
    'max-age': { type: 'string' },
    'max-size': { type: 'string' },
    web: { type: 'string' },
    stopped: { type: 'boolean' },
  });
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.record !== undefined && v['no-record']) throw new UsageError('--record and --no-record exclude each other');
  const o: Record<string, unknown> = {};
  if (v.listen !== undefined) o.listen = v.listen;
  if (v['token-file'] !== undefined) o.tokenFile = v['token-file'];
  if (v['state-dir'] !== undefined) o.stateDir = v['state-dir'];
  if (v.source !== undefined) o.source = v.source;
  if (v.mode !== undefined) o.mode = v.mode;
  if (v.interval !== undefined) o.intervalMs = Math.round((parseSeconds('--interval', v.interval, 0.1, 3600) ?? 1) * 1000);
  const filters: Record<string, string[]> = {};
  if (v.reason) filters.reasons = listValues(v.reason);
  if (v.protocol) filters.protocols = listValues(v.protocol);
  if (v.location) filters.locations = listValues(v.location);
  if (Object.keys(filters).length) o.filters = filters;
  if (v['no-counters'] || v.netns !== undefined) o.counters = { ...(v['no-counters'] ? { enabled: false } : {}), ...(v.netns !== undefined ? { netns: v.netns } : {}) };
  const recording: Record<string, unknown> = {};
  if (v.record !== undefined) recording.file = v.record;
  if (v['no-record']) recording.file = '';
  if (v['max-age'] !== undefined) recording.maxAge = v['max-age'];
  if (v['max-size'] !== undefined) recording.maxSize = v['max-size'];
  if (Object.keys(recording).length) o.recording = recording;
  if (v.web !== undefined) o.webDir = v.web;
  // Check the flags now, so that a bad one is a usage error naming the flag's key.
  applyConfig(DEFAULT_CONFIG, o);
  return { ...(v.config !== undefined ? { configFile: v.config } : {}), overrides: o, stopped: v.stopped ?? false, printUrl: v['print-url'] ?? false };
}

/** The effective configuration: defaults, then the file, then the flags. */
export function loadServeConfig(flags: Pick<ServeFlags, 'configFile' | 'overrides'>): ServiceConfig {
  const fromFile = flags.configFile !== undefined ? loadConfigFile(flags.configFile) : DEFAULT_CONFIG;
  return applyConfig(fromFile, flags.overrides);
}
