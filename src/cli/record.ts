/**
 * `dropmon record -o FILE`: `watch` with the recorder as its output. Every
 * source and filter flag of watch works the same; the intervals go to a
 * recording file (SQLite) that `dropmon report` analyses afterwards.
 */
import { existsSync, statSync } from 'node:fs';
import { UsageError } from '../core/errors.js';
import * as units from '../core/units.js';
import { Recorder } from '../recording/recorder.js';
import { parseCount } from './args.js';
import { onCleanup } from './lifecycle.js';
import { watchCommand } from './watch.js';
import { terminalSafe } from '../core/terminal-safe.js';

export const RECORD_HELP = `Usage: dropmon record -o FILE [options] [watch options]

Record drops to FILE for later analysis with 'dropmon report FILE': per
interval the drop points (location, symbol, reason, protocol; the usually
benign ones too), the kernel's drop counters that moved, lost events and, in
packet mode, summaries of the dropped packets. FILE is an SQLite database; an
interrupted recording stays readable.

  -o, --output FILE       the recording (required)
      --append            add to an existing recording (default: refuse it)
      --max-age AGE       delete intervals older than AGE (e.g. 3600, 90m, 12h, 7d)
      --max-size SIZE     keep the database under SIZE (e.g. 500M, 2G; bytes
                          without a suffix); the oldest intervals go first
      --max-packets N     packet summaries kept per interval (default 100);
                          the others are counted

Every option of 'dropmon watch' that picks the source, filters, counters or
timing works here too: --duration, --interval, --count, --max-points, --reason,
--protocol, --location, --stack, --source, --mode, --hw, --no-counters,
--counters-netns, ... (dropmon watch --help).
Stop with --duration, --count or Ctrl-C; the last interval is written.
Storage errors (disk full) do not stop the recording: the intervals that
cannot be written are counted and reported.
`;

export interface RecordFlags {
  output: string;
  append: boolean;
  maxAgeMs?: number;
  maxBytes?: number;
  maxPackets?: number;
  /** Everything else, for watch. */
  watchArgv: string[];
}

/** --max-age: a duration (units.ts; a bare number is seconds) → ms. */
export function parseAge(flag: string, v: string): number {
  const ms = units.parseDuration(v);
  if (!(ms !== undefined && ms >= 1000)) throw new UsageError(`${flag} takes an age of at least 1 s like 3600, 90m, 12h or 7d, not ${JSON.stringify(v)}`);
  return ms;
}

/** --max-size: a size (units.ts; a bare number is bytes) → bytes. */
export function parseSize(flag: string, v: string): number {
  const bytes = units.parseSize(v);
  if (!(bytes !== undefined && bytes >= 64 * 1024)) throw new UsageError(`${flag} takes a size of at least 64K like 500M or 2G, not ${JSON.stringify(v)}`);
  return bytes;
}

/** Take record's own flags out of argv; the rest is watch's. */
export function parseRecordFlags(argv: readonly string[]): RecordFlags | 'help' {
  const withValue = new Map([
    ['-o', 'output'],
    ['--output', 'output'],
    ['--max-age', 'max-age'],
    ['--max-size', 'max-size'],
    ['--max-packets', 'max-packets'],
  ]);
  const values = new Map<string, string>();
  const watchArgv: string[] = [];
  let append = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return 'help';
    if (a === '--append') {
      append = true;
      continue;
    }
    if (a === '--json' || a === '--timestamps') throw new UsageError(`${a} is an option of watch: record writes no lines`, "see 'dropmon record --help'");
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a.startsWith('-o') && a.length > 2 && !a.startsWith('--') ? '-o' : a;
    const key = withValue.get(name);
    if (key === undefined) {
      watchArgv.push(a);
      continue;
    }
    let v: string | undefined;
    if (name !== a) v = a.startsWith('--') ? a.slice(eq + 1) : a.slice(2);
    else v = argv[++i];
    if (v === undefined || v === '') throw new UsageError(`${name} needs a value`, "see 'dropmon record --help'");
    values.set(key, v);
  }
  const output = values.get('output');
  if (output === undefined) throw new UsageError('record needs -o FILE, the recording to write', "see 'dropmon record --help'");
  const age = values.get('max-age');
  const size = values.get('max-size');
  const packets = parseCount('--max-packets', values.get('max-packets'), 0, 100_000);
  return {
    output,
    append,
    ...(age !== undefined ? { maxAgeMs: parseAge('--max-age', age) } : {}),
    ...(size !== undefined ? { maxBytes: parseSize('--max-size', size) } : {}),
    ...(packets !== undefined ? { maxPackets: packets } : {}),
    watchArgv,
  };
}

export async function recordCommand(argv: string[]): Promise<number> {
  const flags = parseRecordFlags(argv);
  if (flags === 'help') {
    process.stdout.write(RECORD_HELP);
    return 0;
  }
  // Refuse before any tracing starts, so nothing is changed on the host for nothing.
  if (!flags.append && existsSync(flags.output) && statSync(flags.output).size > 0)
    throw new UsageError(`${flags.output} exists`, 'choose another file, remove it, or add to it with --append');
  const warn = (m: string) => process.stderr.write(`dropmon: warning: ${terminalSafe(m)}\n`);
  let recorder: Recorder | undefined;
  // --all: no noise policy, a recording keeps the usually benign drops too (a report can set them apart).
  const watchArgv = flags.watchArgv.includes('--all') ? flags.watchArgv : [...flags.watchArgv, '--all'];
  const code = await watchCommand(watchArgv, ({ source, symbols, intervalMs }) => {
    const r = new Recorder(flags.output, {
      source: source.name,
      intervalMs,
      symbols,
      append: flags.append,
      warn,
      retention: {
        ...(flags.maxAgeMs !== undefined ? { maxAgeMs: flags.maxAgeMs } : {}),
        ...(flags.maxBytes !== undefined ? { maxBytes: flags.maxBytes } : {}),
      },
      ...(flags.maxPackets !== undefined ? { maxPacketsPerInterval: flags.maxPackets } : {}),
    });
    recorder = r;
    // A second Ctrl-C or an internal error: the session still gets closed.
    onCleanup(() => r.close());
    process.stderr.write(`dropmon: recording to ${flags.output}\n`);
    return { outputs: [r], packetOutputs: [r] };
  });
  if (recorder) {
    const s = recorder.stats;
    recorder.close();
    process.stderr.write(
      `dropmon: recorded ${s.intervalsWritten} intervals (${s.drops} drops, ${s.lost} events lost) to ${flags.output}` +
        (s.intervalsUnwritten ? `; ${s.intervalsUnwritten} intervals could not be written` : '') +
        (s.intervalsExpired ? `; ${s.intervalsExpired} old intervals deleted by retention` : '') +
        `\ndropmon: analyse it with: dropmon report ${flags.output}\n`,
    );
  }
  return code;
}
