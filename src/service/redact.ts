/**
 * What the service shows without giving secrets away:
 *
 * - webhook URLs: credentials in the userinfo or the query string (`?token=`)
 *   become `***`; scheme, host and path stay, so the operator can still tell
 *   which receiver is meant. Used wherever a URL is shown: GET
 *   /api/v1/config, every SSE `state` event, log lines.
 * - kernel addresses, for clients without the token (the read-only public):
 *   a raw address undoes kptr_restrict (the kernel gives NET_DM alerts only
 *   to CAP_SYS_ADMIN for that reason), so they see where a drop happened as
 *   function+offset, or "unknown" when it could not be symbolized.
 */

/** A webhook URL with its credentials replaced by *** (scheme, host and path kept). */
export function redactUrl(u: string): string {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return '(not a URL)';
  }
  const userinfo = url.username || url.password ? '***@' : '';
  const query = url.search ? '?***' : '';
  const fragment = url.hash ? '#***' : '';
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}${fragment}`;
}

/**
 * A kernel address written in hex: wider than 32 bits with the 0x prefix
 * (offsets, sizes and EtherTypes are far smaller), or the 16 digits of a
 * kernel-half address without it.
 */
const KERNEL_ADDRESS = /\b0x[0-9a-f]{9,16}\b|\bffff[0-9a-f]{12}\b/gi;
const WHOLE_ADDRESS = /^(?:0x[0-9a-f]{9,16}|ffff[0-9a-f]{12})$/i;

/** Shown in place of an address that could not be symbolized. */
export const UNKNOWN_LOCATION = 'unknown';

/** "fn+0x4bc/0x6f0 [mod]" -> "fn+0x4bc [mod]": the function and the offset, without the size. */
function functionOffset(symbol: unknown): string {
  if (typeof symbol !== 'string' || WHOLE_ADDRESS.test(symbol.trim())) return UNKNOWN_LOCATION;
  return symbol.replace(/(\+0x[0-9a-f]+)\/0x[0-9a-f]+/i, '$1').replace(KERNEL_ADDRESS, UNKNOWN_LOCATION);
}

function scrubString(s: string): string {
  KERNEL_ADDRESS.lastIndex = 0;
  return KERNEL_ADDRESS.test(s) ? s.replace(KERNEL_ADDRESS, UNKNOWN_LOCATION) : s;
}

/** Object keys that hold a raw address: replaced by the sibling `symbol`'s function+offset. */
const ADDRESS_KEYS = new Set(['location', 'address']);

/**
 * A copy of a JSON value for a client without the token: every raw kernel
 * address is gone. `location`/`address` fields become function+offset (from
 * the point's `symbol`), an unsymbolized `symbol` becomes "unknown", and any
 * address left inside another string ("drops at 0xffffffff81..." in a
 * diagnosis) is replaced too.
 */
export function withoutKernelAddresses<T>(value: T): T {
  return scrub(value) as T;
}

function scrub(v: unknown): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (Array.isArray(v)) return v.map(scrub);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) {
    if (ADDRESS_KEYS.has(k) && typeof x === 'string' && WHOLE_ADDRESS.test(x.trim())) out[k] = functionOffset(o.symbol);
    else if (k === 'symbol' && typeof x === 'string' && WHOLE_ADDRESS.test(x.trim())) out[k] = UNKNOWN_LOCATION;
    else out[k] = scrub(x);
  }
  return out;
}
