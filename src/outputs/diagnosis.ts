/**
 * The diagnosis as text for a terminal and as JSON for scripts. Each cause
 * says where, when the sources know it, on one line:
 *
 *   netns web-1 (docker 3f2a…): 1000 x SOCKET_RCVBUFF at udp_queue_rcv_one_skb, udp 10.1.0.2:7001 pid 812 (python3); Udp:RcvbufErrors +1000 in that namespace
 */
import type { Finding, FindingCounter } from '../core/diagnosis.js';
import { netnsPlace } from './describe.js';
import { terminalSafe } from '../core/terminal-safe.js';

export interface DiagnosisSummary {
  readonly seconds: number;
  readonly intervals: number;
  readonly drops: number;
  readonly lost: number;
  readonly netns?: string;
  /** Counter families that could not be read. */
  readonly notRead: readonly string[];
}

function block(label: string, lines: readonly string[]): string {
  if (lines.length === 0) return '';
  const pad = ' '.repeat(label.length);
  return lines.map((l, i) => `     ${i === 0 ? label : pad}${l}\n`).join('');
}

/** What a summary line uses of a finding (a recording's findings may lack some). */
export type WhereFinding = Partial<Pick<Finding, 'kind' | 'points' | 'counters' | 'netns' | 'netnsName' | 'container' | 'gone' | 'interfaces' | 'sockets'>>;

const POINTS_LISTED = 2;
const COUNTERS_LISTED = 3;
const SOCKETS_LISTED = 2;
const INTERFACES_LISTED = 2;

/** "netns web-1 (docker 3f2a…)", "host/init"; "" where the namespace is not known. */
export function findingPlace(f: WhereFinding): string {
  return f.netns !== undefined ? netnsPlace({ ...f, netns: f.netns }) : '';
}

/** The function part of "sym+0x12/0x80 [mod]". */
function functionOf(location: string): string {
  const i = location.search(/[+ ]/);
  return i > 0 ? location.slice(0, i) : location;
}

/** Where a counter of a finding was read, said after it: " in that namespace", " in netns b", " host-wide"; "" when not known. */
function counterPlace(c: FindingCounter, f: WhereFinding): string {
  if (c.hostWide) return ' host-wide';
  if (c.netns === undefined) return '';
  if (c.netns === f.netns) return ' in that namespace';
  return ` in ${netnsPlace({ netns: c.netns, ...(c.netnsName ? { netnsName: c.netnsName } : {}) })}`;
}

function listed(items: readonly string[], max: number): string {
  return items.slice(0, max).join(', ') + (items.length > max ? ', …' : '');
}

/**
 * One line that says where a cause happened and what stood behind it: the
 * namespace (and its container), the drop points, interfaces, sockets and
 * processes, and the counters that moved, each with where it was read.
 * Undefined when nothing is known of where (tracefs without counters of
 * other namespaces): no guess.
 */
export function findingWhere(f: WhereFinding): string | undefined {
  const place = findingPlace(f);
  const interfaces = (f.interfaces ?? []).map((i) => i.name ?? (i.ifindex !== undefined ? `ifindex ${i.ifindex}` : '')).filter(Boolean);
  const sockets = f.sockets ?? [];
  const counters = (f.counters ?? []).filter((c) => c.layer !== 'socket');
  const placedElsewhere = counters.some((c) => c.netns !== undefined && c.netns !== f.netns);
  if (!place && !interfaces.length && !sockets.length && !placedElsewhere) return undefined;

  const points = f.points ?? [];
  let what =
    f.kind === 'counter' || points.length === 0
      ? 'no drop event'
      : listed(
          points.map((p) => `${p.count} x ${p.reason || 'drops'} at ${functionOf(p.location)}`),
          POINTS_LISTED,
        );
  if (interfaces.length)
    what += ` dev ${interfaces.length <= INTERFACES_LISTED ? interfaces.join(' and ') : `${interfaces.slice(0, INTERFACES_LISTED).join(', ')} and ${interfaces.length - INTERFACES_LISTED} more`}`;
  if (sockets.length) what += `, ${listed(sockets, SOCKETS_LISTED)}`;

  // Counters next to each other that were read in the same place say it once: "A +1, B +1 in that namespace".
  const byPlace = new Map<string, string[]>();
  for (const c of counters.slice(0, COUNTERS_LISTED)) {
    const at = counterPlace(c, f);
    const list = byPlace.get(at) ?? [];
    list.push(`${c.name} +${c.delta}${c.scope ? ` on ${c.scope}` : ''}`);
    byPlace.set(at, list);
  }
  const moved = [...byPlace].map(([at, list]) => `${list.join(', ')}${at}`).join('; ') + (counters.length > COUNTERS_LISTED ? '; …' : '');
  return `${place ? `${place}: ` : ''}${what}${moved ? `; ${moved}` : ''}`;
}

function formatFinding(f: Finding, n: number): string {
  const tag = f.kind === 'counter' ? `${f.key}, ${f.packets} packets, seen only in counters` : `${f.key}, ${f.packets} packets`;
  let out = `${String(n).padStart(2)}. ${f.cause}  [${tag}]\n`;
  const where = findingWhere(f);
  if (where) out += `     ${where}\n`;
  if (f.benign !== 'no') out += `     ${f.benign === 'usually' ? 'usually benign' : 'sometimes benign'}${f.benignWhen ? `: ${f.benignWhen}` : ''}\n`;
  out += block('evidence: ', f.evidence);
  out += block('check:    ', f.check);
  out += block('fix:      ', f.fix);
  return out;
}

export function formatFindings(findings: readonly Finding[], s: DiagnosisSummary, top: number): string {
  return terminalSafe(findingsText(findings, s, top));
}

function findingsText(findings: readonly Finding[], s: DiagnosisSummary, top: number): string {
  let out = `dropmon diagnose: ${s.drops} drops in ${s.seconds} s${s.lost ? `, ${s.lost} events lost` : ''}${s.netns ? `; counters of netns ${s.netns}` : ''}\n`;
  for (const e of s.notRead) out += `  (not read: ${e})\n`;
  const real = findings.filter((f) => f.benign !== 'usually');
  const benign = findings.filter((f) => f.benign === 'usually');
  if (findings.length === 0) return out + '\nno packet was dropped and no drop counter moved\n';
  if (real.length === 0) out += '\nno problem found: only drops that are usually benign\n';
  else {
    out += '\nLikely causes, most packets first:\n\n';
    real.slice(0, top).forEach((f, i) => (out += formatFinding(f, i + 1) + '\n'));
    if (real.length > top) out += `  … ${real.length - top} more causes (--top ${real.length} shows them)\n\n`;
  }
  if (benign.length) {
    out += 'Usually benign (expected in normal operation):\n';
    for (const f of benign.slice(0, top)) {
      const place = findingPlace(f);
      out += `  - ${f.key}${place ? ` (${place})` : ''}: ${f.packets} packets: ${f.cause}${f.benignWhen ? ` (${f.benignWhen})` : ''}\n`;
    }
    if (benign.length > top) out += `  … ${benign.length - top} more\n`;
  }
  return out;
}

export function findingsJson(findings: readonly Finding[], s: DiagnosisSummary): Record<string, unknown> {
  return {
    type: 'diagnosis',
    seconds: s.seconds,
    intervals: s.intervals,
    drops: s.drops,
    lost: s.lost,
    ...(s.netns ? { netns: s.netns } : {}),
    not_read: s.notRead,
    findings: findings.map((f) => ({
      rank: f.rank,
      key: f.key,
      kind: f.kind,
      cause: f.cause,
      packets: f.packets,
      benign: f.benign,
      ...(f.benignWhen ? { benign_when: f.benignWhen } : {}),
      known: f.known,
      blind_spot: f.blindSpot,
      evidence: f.evidence,
      check: f.check,
      fix: f.fix,
      points: f.points,
      counters: f.counters.map(({ netnsName, ...c }) => ({ ...c, ...(netnsName ? { netns_name: netnsName } : {}) })),
      ...(f.netns !== undefined ? { netns: f.netns } : {}),
      ...(f.netnsName ? { netns_name: f.netnsName } : {}),
      ...(f.container ? { container: f.container } : {}),
      ...(f.gone !== undefined ? { gone: new Date(f.gone).toISOString() } : {}),
      interfaces: f.interfaces,
      sockets: f.sockets,
    })),
  };
}
