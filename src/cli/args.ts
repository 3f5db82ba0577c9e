/** Small helpers to validate command-line values with messages that say what was expected. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors.js';
import * as units from '../core/units.js';

/** A duration in seconds: a bare number of seconds, or with a unit (500ms, 5m, 2h; units.ts). */
export function parseSeconds(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = units.parseDuration(v, 's');
  if (n === undefined || n < min || n > max) throw new UsageError(`${flag} takes seconds from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

export function parseCount(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max)
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** One of `choices`: "unknown --mode "x"; use summary or packet" otherwise. */
export function parseChoice<const C extends string>(flag: string, v: string | undefined, choices: readonly C[]): C | undefined {
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`unknown ${flag} ${JSON.stringify(v)}; use ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`);
  return v as C;
}

/** A whole number as C's atol() reads it (spaces around it allowed), but refusing what is not one; `hint` says where to look. */
export function parseAtol(flag: string, v: string, max: number, hint: string): number {
  if (!/^\s*\d+\s*$/.test(v)) throw new UsageError(`${flag} takes a whole number, not ${JSON.stringify(v)}`, hint);
  const n = Number(v);
  if (n > max) throw new UsageError(`${flag} takes a number up to ${max}, not ${v.trim()}`, hint);
  return n;
}

/**
 * getopt_long's abbreviations, for commands that mimic a C tool: any
 * unambiguous prefix of a long option (--wri, --orig=sw) stands for it;
 * an ambiguous one is a usage error with `hint`.
 */
export function expandLongPrefixes(argv: readonly string[], longNames: readonly string[], hint: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([^=]+)(=.*)?$/.exec(a);
    if (m && !longNames.includes(m[1])) {
      const hits = longNames.filter((l) => l.startsWith(m[1]));
      if (hits.length > 1) throw new UsageError(`option --${m[1]} is ambiguous (${hits.map((h) => `--${h}`).join(', ')})`, hint);
      if (hits.length === 1) {
        out.push(`--${hits[0]}${m[2] ?? ''}`);
        continue;
      }
    }
    out.push(a);
  }
  return out;
}

/** Values of a repeatable flag, each also split on commas: --reason a,b --reason c. */
export function listValues(v: string[] | undefined): string[] {
  return (v ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
}

/**
 * node:util parseArgs with dropmon's usage errors: the first line of Node's
 * message and where to look ("see 'dropmon counters --help'"), exit status 2.
 */
export function parseCommandArgs<const O extends NonNullable<ParseArgsConfig['options']>, const P extends boolean = false>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals?: P,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: (allowPositionals ?? false) as P, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.split('\n')[0] : String(err), `see 'dropmon ${command} --help'`);
  }
}
