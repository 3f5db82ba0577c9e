/**
 * `dropmon explain NAME`: what a drop reason, counter, devlink trap or
 * drop-site function means, in plain words, with what to check and change.
 * Exact names (any spelling the kernel or a tool prints) are answered
 * directly; anything else gets the closest entry and "did you mean" others.
 */
import { UsageError } from '../core/errors.js';
import { parseCommandArgs } from './args.js';
import { ENTRY_KINDS, entryJson, isKnown, type EntryKind, type KnowledgeEntry } from '../knowledge/entry.js';
import { loadKnowledge } from '../knowledge/load.js';
import type { KnowledgeBase } from '../knowledge/base.js';
import { kernelHasReason } from '../sources/bpf/availability.js';

export const EXPLAIN_HELP = `Usage: dropmon explain NAME [--kind KIND] [--json]
       dropmon explain --list [--kind KIND] [--json]

Explains a drop reason (SOCKET_RCVBUFF, SKB_DROP_REASON_NO_SOCKET), a counter
(Udp:RcvbufErrors, link:rx_missed_errors, softnet:dropped, ethtool-S:rx_queue_3_drops),
a devlink trap (tail_drop, trap:blackhole_route) or a kernel function where drops
happen (udp_destruct_common, tcp_v4_rcv+0x5c/0x90): what it means, usual causes,
whether it is usually harmless, what to check and what to change.
Names are matched without regard to case; typos and partial words ("rcvbuf",
"listen overflow") find the closest entries.

Options:
  --kind KIND   only reasons, counters, traps or symbols (reason|counter|trap|symbol)
  --list        list every entry (of KIND) with its one-line summary
  --json        one JSON object instead of text
  -h, --help    this help
Exit status: 0 when something was explained, 1 when nothing matched, 2 on bad usage.
`;

const KIND_TITLE: Record<EntryKind, string> = {
  reason: 'drop reason',
  counter: 'counter',
  trap: 'devlink trap',
  symbol: 'kernel function',
};

/** Where output goes: the process's streams, or a test's buffers. */
export interface Writable {
  write(s: string): unknown;
}

const SUGGESTIONS = 5;
const WIDTH = 80;

export async function explainCommand(argv: string[], out: Writable = process.stdout, err: Writable = process.stderr): Promise<number> {
  const parsed = parseCommandArgs('explain', argv, {
    json: { type: 'boolean' },
    kind: { type: 'string' },
    list: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  const v = parsed.values;
  if (v.help) {
    out.write(EXPLAIN_HELP);
    return 0;
  }
  const kind = parseKind(v.kind);
  const json = v.json ?? false;
  const kb = loadKnowledge();
  if (v.list) {
    if (parsed.positionals.length) throw new UsageError('--list takes no NAME', "see 'dropmon explain --help'");
    out.write(json ? JSON.stringify(kb.all(kind).map(entryJson)) + '\n' : listText(kb.all(kind)));
    return 0;
  }
  // "dropmon explain listen overflow" is one query, not two.
  const query = parsed.positionals.join(' ').trim();
  if (!query) {
    err.write(EXPLAIN_HELP);
    return 2;
  }
  const answer = kb.explain(query, SUGGESTIONS, kind, kernelHasReason);
  if (!answer) {
    if (json) out.write(JSON.stringify({ match: 'none', query }) + '\n');
    err.write(`dropmon explain: nothing in the knowledge base resembles ${JSON.stringify(query)}${kind ? ` among ${kind}s` : ''}\n  hint: 'dropmon explain --list' lists every entry\n`);
    return 1;
  }
  const { match, entry, hits } = answer;
  if (json) {
    out.write(
      JSON.stringify({
        match,
        query,
        ...(match === 'fuzzy' ? { score: round(answer.score) } : {}),
        entry: fullJson(kb, entry),
        suggestions: hits.map((h) => ({ name: h.entry.name, kind: h.entry.kind, score: round(h.score), summary: h.entry.summary })),
      }) + '\n',
    );
    return 0;
  }
  if (match === 'fuzzy') out.write(`No entry is named ${JSON.stringify(query)}; the closest is ${entry.name}.\n\n`);
  out.write(entryText(kb, entry));
  if (match !== 'exact' && hits.length) {
    out.write(match === 'unknown' ? '\nEntries with similar names (not the same reason):\n' : '\nDid you mean:\n');
    for (const h of hits) out.write(`  ${h.entry.name.padEnd(32)} ${KIND_TITLE[h.entry.kind]}: ${h.entry.summary}\n`);
  }
  return 0;
}

function parseKind(v: string | undefined): EntryKind | undefined {
  if (v === undefined) return undefined;
  const k = v.trim().toLowerCase().replace(/s$/, '');
  if (!(ENTRY_KINDS as readonly string[]).includes(k)) throw new UsageError(`--kind takes ${ENTRY_KINDS.join(', ')}, not ${JSON.stringify(v)}`, "see 'dropmon explain --help'");
  return k as EntryKind;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

// ---------------------------------------------------------------------------
// Text

function listText(entries: readonly KnowledgeEntry[]): string {
  const lines: string[] = [];
  for (const kind of ENTRY_KINDS) {
    const of = entries.filter((e) => e.kind === kind);
    if (!of.length) continue;
    lines.push(`${KIND_TITLE[kind]}s (${of.length}):`);
    for (const e of of) lines.push(`  ${e.name.padEnd(36)} ${e.summary}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** Wrap prose to the terminal width, indented. */
function wrap(text: string, indent: string, width = WIDTH): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && indent.length + line.length + 1 + w.length > width) {
      lines.push(indent + line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n') + '\n';
}

function section(title: string, items: readonly string[], bullet = '- '): string {
  if (!items.length) return '';
  return `${title}\n` + items.map((i) => wrap(i, '  ' + bullet).replace(/\n(?=.)/g, '\n' + ' '.repeat(2 + bullet.length))).join('');
}

const BENIGN_TEXT = { no: 'no: worth looking at', usually: 'usually harmless', sometimes: 'sometimes harmless' } as const;

/** An entry formatted for a terminal. */
export function entryText(kb: KnowledgeBase, e: KnowledgeEntry): string {
  const tags = [KIND_TITLE[e.kind], `${e.layer} layer`];
  if (e.since) tags.push(`since Linux ${e.since}`);
  if (e.until) tags.push(`until Linux ${e.until}`);
  if (e.pattern) tags.push('a family of names');
  if (!isKnown(e)) tags.push('not in this version\'s knowledge base');
  let s = `${e.name}  (${tags.join(', ')})\n`;
  s += wrap(e.summary, '  ');
  if (e.aliases.length) s += `  also: ${e.aliases.join(', ')}\n`;
  if (e.meaning) s += '\n' + wrap(e.meaning, '  ');
  if (e.kind === 'counter') {
    const what = e.gauge ? 'a level (not a total)' : e.drop ? 'each increment is a dropped packet' : 'an error or pressure count, not itself a drop';
    s += `\n  ${what}` + (e.blindSpot ? '; these drops never reach kfree_skb, so no drop tracer sees them' : '') + '\n';
  }
  s += '\n';
  s += section('Usual causes:', e.causes);
  s += `Harmless? ${BENIGN_TEXT[e.benign]}${e.benignWhen ? ` (${e.benignWhen})` : ''}\n`;
  s += section('Check:', e.check, '$ ');
  s += section('Change:', e.fix);
  const related = relatedOf(kb, e);
  if (related.counters.length) s += wrap(`Counters: ${related.counters.join(', ')}`, '');
  if (related.reasons.length) s += wrap(`Reasons: ${related.reasons.join(', ')}`, '');
  if (e.symbols.length) s += wrap(`Functions: ${e.symbols.join(', ')}`, '');
  if (e.kernel) s += `Kernel source: ${e.kernel}\n`;
  return s;
}

/** Related names, merged from both sides of the pairing. */
function relatedOf(kb: KnowledgeBase, e: KnowledgeEntry): { counters: string[]; reasons: string[] } {
  switch (e.kind) {
    case 'reason':
      return { counters: kb.countersForReason(e.name), reasons: e.reasons.slice() };
    case 'counter':
      return { counters: e.counters.slice(), reasons: kb.reasonsForCounter(e.name).filter((r) => kb.reason(r)?.name === r) };
    default:
      return { counters: e.counters.slice(), reasons: e.reasons.slice() };
  }
}

// ---------------------------------------------------------------------------
// JSON


function fullJson(kb: KnowledgeBase, e: KnowledgeEntry): Record<string, unknown> {
  const related = relatedOf(kb, e);
  return { ...entryJson(e), related: { counters: related.counters, reasons: related.reasons, symbols: e.symbols } };
}
