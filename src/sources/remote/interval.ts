/**
 * The service's event stream payloads (docs/api.md, GET /api/v1/events)
 * checked and turned into the live view's model. The other end is another
 * host, maybe another version of dropmon, maybe not dropmon at all: every
 * field is checked and a bad one named, never trusted into a crash.
 */
import type { LiveCounter, LiveInterval, LivePoint } from '../../core/live.js';

export class RemoteDataError extends Error {}

/** Bounds on what one interval may carry (the service sends at most maxPoints and 100 counters). */
const MAX_POINTS = 100_000;
const MAX_COUNTERS = 10_000;
const MAX_TEXT = 4096;

type Obj = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new RemoteDataError(`${path}: ${what}`);
}

function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'expected an object');
  return v as Obj;
}

function num(o: Obj, k: string, path: string, min = -Infinity): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) fail(`${path}.${k}`, `expected a number${min > -Infinity ? ` >= ${min}` : ''}`);
  return v;
}

function str(o: Obj, k: string, path: string, optional = false): string {
  const v = o[k];
  if ((v === undefined || v === null) && optional) return '';
  if (typeof v !== 'string') fail(`${path}.${k}`, 'expected a string');
  return v.length > MAX_TEXT ? v.slice(0, MAX_TEXT) : v;
}

function list(o: Obj, k: string, path: string, max: number, optional = false): unknown[] | undefined {
  const v = o[k];
  if (v === undefined && optional) return undefined;
  if (!Array.isArray(v)) fail(`${path}.${k}`, 'expected a list');
  if (v.length > max) fail(`${path}.${k}`, `more than ${max} items`);
  return v;
}

function point(v: unknown, path: string): LivePoint {
  const o = obj(v, path);
  const benign = o.benign === undefined ? 'no' : o.benign;
  if (benign !== 'no' && benign !== 'usually' && benign !== 'sometimes') fail(`${path}.benign`, 'expected no, usually or sometimes');
  const trap = str(o, 'trap', path, true);
  const location = str(o, 'location', path, true);
  const fn = str(o, 'function', path, true) || trap || location || '?';
  const netns = o.netnsName !== undefined ? str(o, 'netnsName', path) : o.netns !== undefined ? String(num(o, 'netns', path, 0)) : '';
  const ifname = o.ifname !== undefined ? str(o, 'ifname', path) : o.ifindex !== undefined && num(o, 'ifindex', path, 0) > 0 ? `ifindex ${String(o.ifindex)}` : '';
  const symbol = str(o, 'symbol', path, true);
  return {
    reason: str(o, 'reason', path, true),
    function: fn,
    // The service sends %pS with the size ("fn+0x4bc/0x6f0"); the view shows "fn+0x4bc" as locally.
    symbol: symbol.replace(/\/0x[0-9a-f]+/i, '') || fn,
    location,
    protocol: str(o, 'protocol', path, true),
    origin: str(o, 'origin', path, true) || 'software',
    netns,
    container: str(o, 'container', path, true),
    ifname,
    count: num(o, 'count', path, 0),
    benign,
  };
}

function counter(v: unknown, path: string, blind: ReadonlyMap<string, string>): LiveCounter {
  const o = obj(v, path);
  const name = str(o, 'name', path);
  const scope = str(o, 'scope', path, true);
  const why = blind.get(`${name}@${scope}`);
  return {
    name,
    scope,
    delta: num(o, 'delta', path),
    rate: num(o, 'rate', path),
    class: str(o, 'class', path, true) || 'drop',
    meaning: str(o, 'meaning', path, true),
    ...(why !== undefined ? { blindSpot: why } : {}),
  };
}

/** One `event: interval` payload (already JSON-parsed). */
export function parseIntervalEvent(data: unknown): LiveInterval {
  const path = 'interval';
  const o = obj(data, path);
  const lostByCause: Record<string, number> = {};
  if (o.lostByCause !== undefined) {
    const l = obj(o.lostByCause, `${path}.lostByCause`);
    for (const [k, v] of Object.entries(l).slice(0, 1000)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${path}.lostByCause.${k}`, 'expected a number >= 0');
      lostByCause[k.slice(0, MAX_TEXT)] = v;
    }
  }
  const points = list(o, 'points', path, MAX_POINTS)!.map((p, i) => point(p, `${path}.points[${i}]`));
  const overflow = o.overflow === undefined ? { drops: 0, points: 0 } : obj(o.overflow, `${path}.overflow`);
  let correlated: LiveInterval['correlated'];
  const blind = new Map<string, string>();
  if (o.correlation !== undefined) {
    const c = obj(o.correlation, `${path}.correlation`);
    correlated = (list(c, 'groups', `${path}.correlation`, MAX_COUNTERS, true) ?? []).map((g, i) => {
      const gp = `${path}.correlation.groups[${i}]`;
      const go = obj(g, gp);
      const strings = (k: string) => list(go, k, gp, MAX_COUNTERS)!.map((x, j) => (typeof x === 'string' ? x.slice(0, MAX_TEXT) : fail(`${gp}.${k}[${j}]`, 'expected a string')));
      return { reasons: strings('reasons'), counters: strings('counters'), drops: num(go, 'drops', gp, 0) };
    });
    (list(c, 'blindSpots', `${path}.correlation`, MAX_COUNTERS, true) ?? []).forEach((b, i) => {
      const bp = `${path}.correlation.blindSpots[${i}]`;
      const bo = obj(b, bp);
      blind.set(`${str(bo, 'counter', bp)}@${str(bo, 'scope', bp, true)}`, str(bo, 'why', bp, true) || 'no drop event behind it');
    });
  }
  const counters = list(o, 'counters', path, MAX_COUNTERS, true)?.map((c, i) => counter(c, `${path}.counters[${i}]`, blind));
  const start = num(o, 'start', path, 0);
  const end = num(o, 'end', path, 0);
  if (end < start) fail(`${path}.end`, 'is before start');
  return {
    seq: num(o, 'seq', path, 0),
    start,
    end,
    drops: num(o, 'drops', path, 0),
    lost: o.lost === undefined ? 0 : num(o, 'lost', path, 0),
    lostByCause,
    points,
    overflow: { drops: num(overflow, 'drops', `${path}.overflow`, 0), points: num(overflow, 'points', `${path}.overflow`, 0) },
    ...(counters ? { counters } : {}),
    ...(correlated ? { correlated } : {}),
  };
}

export interface RemoteState {
  readonly state: string;
  readonly source: string;
  readonly intervalMs?: number;
}

/** An `event: state` payload: running or stopped, the source, the interval length. */
export function parseStateEvent(data: unknown): RemoteState {
  const o = obj(data, 'state');
  const config = o.config === undefined || o.config === null ? undefined : obj(o.config, 'state.config');
  const intervalMs = config && typeof config.intervalMs === 'number' && config.intervalMs > 0 && Number.isFinite(config.intervalMs) ? config.intervalMs : undefined;
  return { state: str(o, 'state', 'state'), source: str(o, 'source', 'state', true), ...(intervalMs !== undefined ? { intervalMs } : {}) };
}

/** GET /api/v1/status: what the header needs. */
export function parseStatus(data: unknown): { hostname: string; kernel: string; source: string; state: string; intervalMs: number } {
  const o = obj(data, 'status');
  const intervalMs = typeof o.intervalMs === 'number' && Number.isFinite(o.intervalMs) && o.intervalMs > 0 ? o.intervalMs : 1000;
  return { hostname: str(o, 'hostname', 'status', true), kernel: str(o, 'kernel', 'status', true), source: str(o, 'source', 'status', true), state: str(o, 'state', 'status', true), intervalMs };
}
