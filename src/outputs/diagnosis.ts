/** The diagnosis as text for a terminal and as JSON for scripts. */
import type { Finding } from '../core/diagnosis.js';

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

function formatFinding(f: Finding, n: number): string {
  const tag = f.kind === 'counter' ? `${f.key}, ${f.packets} packets, seen only in counters` : `${f.key}, ${f.packets} packets`;
  let out = `${String(n).padStart(2)}. ${f.cause}  [${tag}]\n`;
  if (f.benign !== 'no') out += `     ${f.benign === 'usually' ? 'usually benign' : 'sometimes benign'}${f.benignWhen ? `: ${f.benignWhen}` : ''}\n`;
  out += block('evidence: ', f.evidence);
  out += block('check:    ', f.check);
  out += block('fix:      ', f.fix);
  return out;
}

export function formatFindings(findings: readonly Finding[], s: DiagnosisSummary, top: number): string {
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
    for (const f of benign.slice(0, top)) out += `  - ${f.key}: ${f.packets} packets: ${f.cause}${f.benignWhen ? ` (${f.benignWhen})` : ''}\n`;
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
      counters: f.counters,
    })),
  };
}
