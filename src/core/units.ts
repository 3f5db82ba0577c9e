/**
 * The grammars of durations, byte sizes and points in time that a person
 * writes: on the command line (--interval 500ms, --max-size 2G, --from +10m),
 * in the service's configuration (maxAge: 7d) and in the HTTP API
 * (?from=-15m). One definition, so the same text means the same thing
 * everywhere. The parsers answer `undefined` for text that is not in the
 * grammar; each caller turns that into its own error (a usage error naming
 * the flag, a configuration error naming the key, an HTTP 400) and checks its
 * own bounds.
 */

const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export type DurationUnit = keyof typeof DURATION_MS;

const NUMBER = String.raw`\d+(?:\.\d+)?`;
/** A number, optionally a unit (case does not matter, a space may separate them). */
const DURATION = new RegExp(`^(${NUMBER})\\s*(ms|s|m|h|d)?$`, 'i');

/**
 * A duration: "500ms", "10s", "90m", "12h", "7d", or a bare number of seconds
 * ("3600", "0.5"). The answer is in `unit` (default ms).
 */
export function parseDuration(text: string, unit: DurationUnit = 'ms'): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const given = (m[2]?.toLowerCase() ?? 's') as DurationUnit;
  // Same unit: the number as written (1.005 s stays 1.005, not 1005 ms / 1000).
  const value = given === unit ? n : (n * DURATION_MS[given]) / DURATION_MS[unit];
  return Number.isFinite(value) ? value : undefined;
}

/** Whole, non-negative milliseconds in the largest unit that holds them whole: 5_400_000 → "90m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) if (ms % DURATION_MS[unit] === 0) return `${ms / DURATION_MS[unit]}${unit}`;
  return `${ms}ms`;
}

const SIZE_BYTES = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 } as const;
/** Binary multiples, whatever the spelling: "2G", "2g", "2GB", "2GiB" are all 2 × 1024³. */
const SIZE = new RegExp(`^(${NUMBER})\\s*([kmgt]?)(?:i?b)?$`, 'i');

/** A size in bytes: "65536", "64K", "500M", "2G", "1T" (also "500MB", "500MiB"); whole bytes, rounded down. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * SIZE_BYTES[m[2].toLowerCase() as keyof typeof SIZE_BYTES]);
  return Number.isFinite(bytes) ? bytes : undefined;
}

/** Whole, non-negative bytes in the largest binary multiple that holds them whole: 524_288_000 → "500M", 65537 → "65537". */
export function formatSize(bytes: number): string {
  if (bytes === 0) return '0';
  for (const unit of ['t', 'g', 'm', 'k'] as const) if (bytes % SIZE_BYTES[unit] === 0) return `${bytes / SIZE_BYTES[unit]}${unit.toUpperCase()}`;
  return String(bytes);
}

/**
 * A point in time as written. What an offset is relative to, and whether a
 * bare number is accepted, is the caller's to say: a recording's start or
 * end for `report`, now for the API.
 */
export type TimeSpec =
  /** ISO 8601 or @UNIXSECONDS: ms since the epoch. */
  | { readonly kind: 'absolute'; readonly ms: number }
  /** Digits alone (up to 16): ms since the epoch, as the API's answers give times. */
  | { readonly kind: 'epoch-ms'; readonly ms: number }
  /** "+10m", "-2h": a duration after or before some point. */
  | { readonly kind: 'offset'; readonly sign: '+' | '-'; readonly ms: number };

/** An ISO 8601 date or date-time only: Date.parse also takes looser forms ("Nov 25") that mislead. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * "2026-11-25T20:30:00Z" (without a zone: local time; a date alone: UTC
 * midnight, as Date.parse reads them), "@1795638502.5" (Unix seconds),
 * "1795638502500" (ms), "+10m" or "-2h" (an offset in the duration grammar).
 */
export function parseTimeSpec(text: string): TimeSpec | undefined {
  const t = text.trim();
  if (/^\d{1,16}$/.test(t)) return { kind: 'epoch-ms', ms: Number(t) };
  if (t.startsWith('+') || t.startsWith('-')) {
    const ms = /^[+-]\d/.test(t) ? parseDuration(t.slice(1)) : undefined;
    return ms === undefined ? undefined : { kind: 'offset', sign: t[0] as '+' | '-', ms };
  }
  const unix = new RegExp(`^@(${NUMBER})$`).exec(t);
  if (unix) {
    const ms = Math.round(Number(unix[1]) * 1000);
    return Number.isFinite(ms) ? { kind: 'absolute', ms } : undefined;
  }
  if (ISO_8601.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return { kind: 'absolute', ms };
  }
  return undefined;
}
