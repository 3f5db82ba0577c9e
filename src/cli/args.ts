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
