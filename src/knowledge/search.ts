/**
 * Fuzzy search over the entries, for what operators type (`dropmon explain`,
 * the service's /explain): typos, case, partial words ("rcvbuf", "listen
 * overflow"). Token matching with prefixes and edit distance, plus a
 * whole-name comparison for queries typed as one word. Small and bounded:
 * queries are capped, so a pasted megabyte costs nothing.
 */
import { normalizeCounterName, normalizeSymbolName, type EntryKind, type KnowledgeEntry } from './entry.js';

export interface SearchHit {
  readonly entry: KnowledgeEntry;
  /** 0..1, 1 being an exact name match. */
  readonly score: number;
}

/** The entries prepared for scoring (tokens of names, aliases and summaries). */
export class SearchIndex {
  private readonly indexed: readonly IndexedEntry[];

  constructor(entries: readonly KnowledgeEntry[]) {
    this.indexed = entries.map(indexEntry);
  }

  /** The entries (of one kind, when given) close to `query`, best first. */
  search(query: string, limit = 5, kind?: EntryKind): SearchHit[] {
    const q = prepareQuery(query);
    if (!q) return [];
    const hits: SearchHit[] = [];
    for (const ie of this.indexed) {
      if (kind && ie.entry.kind !== kind) continue;
      const score = scoreEntry(q, ie);
      if (score >= MIN_SCORE) hits.push({ entry: ie.entry, score });
    }
    hits.sort((a, b) => b.score - a.score || a.entry.name.localeCompare(b.entry.name));
    return hits.slice(0, Math.max(0, limit));
  }
}

const MIN_SCORE = 0.45;
const MAX_QUERY = 200;
const MAX_TOKENS = 12;

interface PreparedQuery {
  readonly tokens: readonly string[];
  /** The query without separators, for one-word comparison. */
  readonly joined: string;
}

interface IndexedEntry {
  readonly entry: KnowledgeEntry;
  /** Tokens of the name and aliases. */
  readonly nameTokens: readonly string[];
  /** How many words the name has after its family ("TcpExt:ListenOverflows" -> 2). */
  readonly ownWords: number;
  /** Name and aliases without separators. */
  readonly joinedNames: readonly string[];
  /** Words of the summary, weaker evidence. */
  readonly summaryTokens: readonly string[];
}

/** Split identifiers and prose into lowercase words: "TCPBacklogDrop" -> tcp, backlog, drop. */
export function tokenize(s: string): string[] {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((t) => t.length > 0);
}

function prepareQuery(query: string): PreparedQuery | undefined {
  const q = normalizeSymbolName(normalizeCounterName(String(query).slice(0, MAX_QUERY))).replace(/^SKB_DROP_REASON_/i, '');
  const tokens = tokenize(q).slice(0, MAX_TOKENS);
  if (!tokens.length) return undefined;
  return { tokens, joined: tokens.join('') };
}

function indexEntry(entry: KnowledgeEntry): IndexedEntry {
  const names = [entry.name, ...entry.aliases.map((a) => a.replace(/^SKB_DROP_REASON_/i, ''))];
  const nameTokens = [...new Set(names.flatMap(tokenize))];
  return {
    entry,
    nameTokens,
    ownWords: tokenize(entry.name.slice(entry.name.indexOf(':') + 1)).length,
    joinedNames: names.map((n) => tokenize(n).join('')),
    summaryTokens: [...new Set(tokenize(entry.summary).filter((t) => t.length > 2))],
  };
}

/** How well one query word matches one name word, 0..1. */
function tokenScore(q: string, t: string): number {
  if (q === t) return 1;
  // Plurals: "overflow" and "Overflows" are the same word.
  if (q.length >= 4 && (q + 's' === t || q === t + 's')) return 0.97;
  if (q.length >= 3 && t.startsWith(q)) return 0.9 - 0.2 * (1 - q.length / t.length);
  if (t.length >= 3 && q.startsWith(t)) return 0.75;
  if (q.length >= 4 && t.includes(q)) return 0.7;
  const allowed = q.length >= 8 ? 2 : q.length >= 4 ? 1 : 0;
  if (allowed && Math.abs(q.length - t.length) <= allowed) {
    const d = editDistance(q, t, allowed);
    if (d <= allowed) return 0.8 - 0.1 * d;
  }
  return 0;
}

function bestTokenScore(q: string, tokens: readonly string[]): number {
  let best = 0;
  for (const t of tokens) {
    const s = tokenScore(q, t);
    if (s > best) best = s;
    if (best === 1) break;
  }
  return best;
}

function scoreEntry(q: PreparedQuery, ie: IndexedEntry): number {
  // One-word comparison: "rcvbuferrors" vs "udprcvbuferrors", typos included.
  let whole = 0;
  for (const n of ie.joinedNames) {
    if (n === q.joined) return 1;
    if (q.joined.length >= 5 && n.endsWith(q.joined)) whole = Math.max(whole, 0.92);
    const allowed = Math.min(3, Math.floor(q.joined.length / 5));
    if (allowed && Math.abs(n.length - q.joined.length) <= allowed) {
      const d = editDistance(q.joined, n, allowed);
      if (d <= allowed) whole = Math.max(whole, 0.95 - 0.08 * d);
    }
  }
  // Word by word: every query word should find a name word; summary words count less.
  let sum = 0;
  for (const t of q.tokens) sum += Math.max(bestTokenScore(t, ie.nameTokens), 0.6 * bestTokenScore(t, ie.summaryTokens));
  const coverage = sum / q.tokens.length;
  // Prefer names that are mostly made of what was asked for.
  const extra = Math.max(0, ie.ownWords - q.tokens.length);
  const words = coverage * (1 - Math.min(0.15, 0.02 * extra));
  return Math.max(whole, words);
}

/**
 * Optimal-string-alignment distance (Levenshtein plus adjacent swaps). Gives
 * up (returns max + 1) as soon as a whole row exceeds `max`; callers keep both
 * strings short (capped queries, kernel names).
 */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const n = a.length, m = b.length;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    let rowMin = cur[0];
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2] + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m];
}
