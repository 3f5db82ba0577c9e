/**
 * The knowledge base: what every drop reason, counter, devlink trap and
 * drop-site function means, why it happens, whether it is usually harmless,
 * and what to check and change. The data lives in kb/*.yaml (schema in
 * kb/README.md); this module loads and validates it, answers exact lookups
 * (`watch`'s correlation, `diagnose`) and fuzzy ones (`dropmon explain`).
 *
 * Names are matched the way operators and tools spell them: case-insensitive,
 * reason names with or without SKB_DROP_REASON_, symbols with or without the
 * `+0x12/0x80 [module]` of a %pS location, counters with or without an
 * `@scope` (readingKey form), and counter families by regular expression
 * (driver `ethtool -S` names such as rx_queue_3_drops).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { COUNTER_LAYERS, type CounterLayer } from './counter.js';
import { DropmonError } from './errors.js';

export type EntryKind = 'reason' | 'counter' | 'trap' | 'symbol';
export const ENTRY_KINDS: readonly EntryKind[] = ['reason', 'counter', 'trap', 'symbol'];
export type Benign = 'no' | 'usually' | 'sometimes';

/** One knowledge-base entry, as validated from YAML (absent lists are empty). */
export interface KnowledgeEntry {
  readonly kind: EntryKind;
  /** Reason name without SKB_DROP_REASON_, counter key, trap name or function name. */
  readonly name: string;
  readonly aliases: readonly string[];
  /** Counters only: a regular expression (matched case-insensitively) for a family of names. */
  readonly pattern?: string;
  readonly layer: CounterLayer;
  readonly since?: string;
  readonly until?: string;
  readonly summary: string;
  readonly meaning?: string;
  readonly causes: readonly string[];
  readonly benign: Benign;
  readonly benignWhen?: string;
  /** Counters only: an increment means a packet was dropped. */
  readonly drop?: boolean;
  /** Counters only: a level, not a total. */
  readonly gauge?: boolean;
  /** Counters only: these drops never pass kfree_skb. */
  readonly blindSpot?: boolean;
  readonly check: readonly string[];
  readonly fix: readonly string[];
  readonly counters: readonly string[];
  readonly reasons: readonly string[];
  readonly symbols: readonly string[];
  /** Where the claims were checked in the kernel source. */
  readonly kernel?: string;
  /** The kb file it came from, for messages. */
  readonly file: string;
  /**
   * false only for an entry made up at run time for a name the knowledge base
   * does not have (see unknownReasonEntry); absent on every entry from kb/.
   */
  readonly known?: false;
}

/** Is this a real entry of the knowledge base (not one made up for an unknown name)? */
export function isKnown(e: { readonly known?: boolean }): boolean {
  return e.known !== false;
}

/** An entry as JSON for users (explain --json, the API): without its kb file, with `known`. */
export function entryJson(e: KnowledgeEntry): Record<string, unknown> {
  const { file: _file, ...rest } = e;
  return { ...rest, known: isKnown(e) };
}

/** The answer to "what is NAME?" (dropmon explain, the service's /explain). */
export interface Explanation {
  /** exact: an entry is named so; unknown: a reason of the running kernel with no entry; fuzzy: the closest entry. */
  readonly match: 'exact' | 'unknown' | 'fuzzy';
  readonly entry: KnowledgeEntry;
  /** How close the entry's name is to the query, 0..1 (1 for exact and unknown). */
  readonly score: number;
  /** Other close entries, best first. */
  readonly hits: readonly SearchHit[];
}

export interface SearchHit {
  readonly entry: KnowledgeEntry;
  /** 0..1, 1 being an exact name match. */
  readonly score: number;
}

const FILES: Record<EntryKind, string> = {
  reason: 'reasons.yaml',
  counter: 'counters.yaml',
  trap: 'traps.yaml',
  symbol: 'symbols.yaml',
};
/** Every kb file and the kind of its entries: the reasons of other subsystems (SUBSYS/REASON) have their own file. */
const KB_FILES: ReadonlyArray<{ readonly kind: EntryKind; readonly file: string; readonly optional?: boolean }> = [
  ...ENTRY_KINDS.map((kind) => ({ kind, file: FILES[kind] })),
  { kind: 'reason', file: 'subsystems.yaml', optional: true },
];

const FIELDS = new Set([
  'name', 'aliases', 'pattern', 'layer', 'since', 'until', 'summary', 'meaning', 'causes', 'benign', 'benignWhen',
  'drop', 'gauge', 'blindSpot', 'check', 'fix', 'counters', 'reasons', 'symbols', 'kernel',
]);
const COUNTER_ONLY = new Set(['pattern', 'drop', 'gauge', 'blindSpot']);
const BENIGN: readonly Benign[] = ['no', 'usually', 'sometimes'];
const SUMMARY_MAX = 100;

// ---------------------------------------------------------------------------
// Loading and validation

/** The repo's kb/ folder: ../../kb from src/core, ../../../kb from dist/src/core. */
function defaultDir(): string {
  for (const rel of ['../../../kb/', '../../kb/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, FILES.reason))) return dir;
  }
  throw new DropmonError('the knowledge base (kb/) was not found next to dropmon', 'reinstall dropmon: kb/ ships with it');
}

const cache = new Map<string, KnowledgeBase>();

/**
 * The validated entries as JSON, written by the build (`compileKnowledge`,
 * scripts/compile-kb.ts) and keyed by a hash of the YAML: parsing 150 kB of
 * YAML takes 0.3-2 s on a small machine, JSON a few ms, and `watch` must show
 * its first interval within a second and a half. Nothing is written at run
 * time: an installed dropmon is read-only.
 */
export function compiledKnowledgePath(): string {
  return fileURLToPath(new URL('../../kb.compiled.json', import.meta.url));
}

interface CompiledKnowledge {
  readonly digest: string;
  readonly entries: KnowledgeEntry[];
}

function readKnowledgeTexts(root: string): { texts: string[]; digest: string } {
  const texts = KB_FILES.map(({ file, optional }) => (optional && !existsSync(join(root, file)) ? '' : readKbFile(root, file)));
  const hash = createHash('sha256');
  for (const t of texts) hash.update(t).update('\0');
  return { texts, digest: hash.digest('hex') };
}

function parseKnowledgeTexts(texts: readonly string[]): KnowledgeEntry[] {
  const entries = KB_FILES.flatMap(({ kind, file }, i) => parseKbFile(texts[i], kind, file));
  rejectDuplicates(entries);
  return entries;
}

/** Parse and validate kb/*.yaml into what the build stores at compiledKnowledgePath(). */
export function compileKnowledge(dir?: string): CompiledKnowledge {
  const { texts, digest } = readKnowledgeTexts(dir ?? defaultDir());
  return { digest, entries: parseKnowledgeTexts(texts) };
}

/** Load and validate kb/*.yaml (cached per folder). Throws a DropmonError naming file, entry and field. */
export function loadKnowledge(dir?: string): KnowledgeBase {
  const root = dir ?? defaultDir();
  const hit = cache.get(root);
  if (hit) return hit;
  const { texts, digest } = readKnowledgeTexts(root);
  let entries: KnowledgeEntry[] | undefined;
  // Only the default kb/ is compiled; a stale file (kb/ edited since the build) is ignored.
  if (dir === undefined) {
    try {
      const c = JSON.parse(readFileSync(compiledKnowledgePath(), 'utf8')) as CompiledKnowledge;
      if (c.digest === digest && Array.isArray(c.entries)) entries = c.entries;
    } catch {
      /* absent (running from the sources) or damaged: parse the YAML */
    }
  }
  entries ??= parseKnowledgeTexts(texts);
  const kb = new KnowledgeBase(entries);
  cache.set(root, kb);
  return kb;
}

function readKbFile(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (err) {
    throw new DropmonError(`knowledge base: cannot read kb/${file}: ${(err as Error).message}`, 'every kb file must exist (an empty list is [])');
  }
}

/** The YAML parser, loaded only when the compiled entries are stale (importing it costs ~0.2 s). */
function yamlParse(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

/** A name defined in two files of one kind (each file checks its own duplicates). */
function rejectDuplicates(entries: readonly KnowledgeEntry[]): void {
  const seen = new Map<string, string>();
  for (const e of entries) {
    const key = `${e.kind}:${e.name.toLowerCase()}`;
    const other = seen.get(key);
    if (other !== undefined && other !== e.file)
      throw new DropmonError(`knowledge base: kb/${e.file} entry ${e.name}: field "name" is a duplicate of an entry of kb/${other}`, 'see kb/README.md for the schema');
    seen.set(key, e.file);
  }
}

function parseKbFile(text: string, kind: EntryKind, file: string): KnowledgeEntry[] {
  let data: unknown;
  try {
    data = yamlParse(text);
  } catch (err) {
    throw new DropmonError(`knowledge base: kb/${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, 'fix the YAML syntax at the line named');
  }
  if (data === null || data === undefined) return [];
  if (!Array.isArray(data)) throw new DropmonError(`knowledge base: kb/${file} must be a YAML list of entries`, 'see kb/README.md for the schema');
  const seen = new Set<string>();
  return data.map((raw, i) => {
    const entry = validateEntry(raw, kind, file, i);
    const key = entry.name.toLowerCase();
    if (seen.has(key)) throw entryError(file, i, entry.name, 'name', 'is a duplicate');
    seen.add(key);
    return entry;
  });
}

function entryError(file: string, index: number, name: string | undefined, field: string, problem: string): DropmonError {
  const which = name ? `entry ${index + 1} (${name})` : `entry ${index + 1}`;
  return new DropmonError(`knowledge base: kb/${file} ${which}: field "${field}" ${problem}`, 'see kb/README.md for the schema');
}

function validateEntry(raw: unknown, kind: EntryKind, file: string, index: number): KnowledgeEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new DropmonError(`knowledge base: kb/${file} entry ${index + 1} is not a mapping`, 'see kb/README.md for the schema');
  const o = raw as Record<string, unknown>;
  const name = typeof o.name === 'string' && o.name.trim() ? o.name.trim() : undefined;
  const fail = (field: string, problem: string) => entryError(file, index, name, field, problem);
  if (!name) throw fail('name', 'is required (a non-empty string)');
  for (const key of Object.keys(o)) {
    if (!FIELDS.has(key)) throw fail(key, 'is not a field of the schema');
    if (kind !== 'counter' && COUNTER_ONLY.has(key)) throw fail(key, 'is for counters only');
  }
  const str = (field: string, required: boolean): string | undefined => {
    const v = o[field];
    if (v === undefined || v === null) {
      if (required) throw fail(field, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || !v.trim()) throw fail(field, 'must be a non-empty string');
    return v.trim();
  };
  const list = (field: string): string[] => {
    const v = o[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x.trim())) throw fail(field, 'must be a list of non-empty strings');
    return v.map((x: string) => x.trim());
  };
  const bool = (field: string, required: boolean): boolean | undefined => {
    const v = o[field];
    if (v === undefined || v === null) {
      if (required) throw fail(field, 'is required (true or false)');
      return undefined;
    }
    if (typeof v !== 'boolean') throw fail(field, 'must be true or false');
    return v;
  };
  const version = (field: string): string | undefined => {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    // Unquoted 6.10 would parse as the number 6.1: only strings are accepted.
    if (typeof v !== 'string' || !/^\d+\.\d+$/.test(v)) throw fail(field, "must be a quoted kernel version like '6.10'");
    return v;
  };

  const layer = str('layer', true)!;
  if (!(COUNTER_LAYERS as readonly string[]).includes(layer)) throw fail('layer', `must be one of ${COUNTER_LAYERS.join(', ')}`);
  const summary = str('summary', true)!;
  if (summary.length > SUMMARY_MAX) throw fail('summary', `is longer than ${SUMMARY_MAX} characters`);
  if (/\n/.test(summary)) throw fail('summary', 'must be one line');
  const benign = (o.benign === false ? 'no' : o.benign) as unknown; // YAML 1.1 habits: `no` parses as a string in YAML 1.2, false in 1.1
  if (typeof benign !== 'string' || !(BENIGN as readonly string[]).includes(benign)) throw fail('benign', `must be one of ${BENIGN.join(', ')}`);
  const benignWhen = str('benignWhen', benign !== 'no');
  const pattern = str('pattern', false);
  if (pattern !== undefined) {
    try {
      new RegExp(pattern, 'i');
    } catch (err) {
      throw fail('pattern', `is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return {
    kind,
    name,
    aliases: list('aliases'),
    ...(pattern !== undefined ? { pattern } : {}),
    layer: layer as CounterLayer,
    ...optional('since', version('since')),
    ...optional('until', version('until')),
    summary,
    ...optional('meaning', str('meaning', false)),
    causes: list('causes'),
    benign: benign as Benign,
    ...optional('benignWhen', benignWhen),
    ...(kind === 'counter' ? { drop: bool('drop', true)!, gauge: bool('gauge', false) ?? false, blindSpot: bool('blindSpot', false) ?? false } : {}),
    check: list('check'),
    fix: list('fix'),
    counters: list('counters'),
    reasons: list('reasons'),
    symbols: list('symbols'),
    ...optional('kernel', str('kernel', false)),
    file,
  };
}

function optional<K extends string, V>(key: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, V>);
}

// ---------------------------------------------------------------------------
// Name normalisation

/** Reason names as the kernel headers spell them, and as users paste them. */
export function normalizeReasonName(name: string): string {
  return name.trim().replace(/^SKB_DROP_REASON_/i, '').toUpperCase();
}

/** "udp_destruct_common+0x5c/0x90 [udp]" -> "udp_destruct_common" (the %pS form of a drop location). */
export function normalizeSymbolName(name: string): string {
  return name
    .trim()
    .replace(/\s*\[[^\]]*\]\s*$/, '')
    .replace(/\+0x[0-9a-f]+(\/0x[0-9a-f]+)?$/i, '')
    .trim();
}

/** "Udp:RcvbufErrors@udp 127.0.0.1:53" -> "Udp:RcvbufErrors" (the readingKey form of an instance). */
export function normalizeCounterName(name: string): string {
  const at = name.indexOf('@');
  return (at >= 0 ? name.slice(0, at) : name).trim();
}

// ---------------------------------------------------------------------------
// Reasons the knowledge base does not know

/** What an entry of the drop location's function offers an unknown reason. */
export interface LocationHint {
  readonly name: string;
  readonly summary: string;
  readonly layer?: string;
  readonly causes?: readonly string[];
  readonly check?: readonly string[];
  readonly fix?: readonly string[];
}

/**
 * What dropmon says of a drop reason it has no entry for: kernels add reasons
 * every release (and subsystems bring their own), so a newer kernel than this
 * knowledge base reports names it cannot explain. The answer is honest and
 * still useful: the name, that it is not known to this version, where the
 * kernel documents it, and whatever the drop location's entry (`at`) says.
 */
export function unknownReasonEntry(reasonName: string, at?: LocationHint): KnowledgeEntry {
  const name = normalizeReasonName(reasonName) || 'UNKNOWN';
  const slash = name.indexOf('/');
  // "OPENVSWITCH/OVS_DROP_LAST_ACTION": a subsystem's reason, documented in that subsystem's header.
  const where =
    slash > 0
      ? `the ${name.slice(0, slash).toLowerCase()} subsystem's drop-reason enum (include/net/dropreason.h lists the subsystems; each has its own drop.h)`
      : `include/net/dropreason-core.h, in the kernel-doc comment of SKB_DROP_REASON_${name}`;
  const hint = at ? ` The drop location, ${at.name}(), is known: ${at.summary}` : '';
  return {
    kind: 'reason',
    name,
    aliases: [],
    layer: at?.layer && (COUNTER_LAYERS as readonly string[]).includes(at.layer) ? (at.layer as CounterLayer) : 'softnet',
    summary: `${name}: a drop reason not in this version's knowledge base`.slice(0, SUMMARY_MAX),
    meaning: `The running kernel reports drop reason ${name}, which this version of dropmon does not describe (the kernel is newer than its knowledge base, or the reason belongs to a subsystem it does not cover). The kernel documents it in ${where}.${hint}`,
    causes: at?.causes ?? [],
    // Never call an unknown reason benign: it might be the problem.
    benign: 'no',
    check: [`dropmon watch -r ${name} --stack   (the kernel functions that drop with it)`, ...(at?.check ?? [])],
    fix: [...(at?.fix ?? []), `read the kernel-doc of ${name} in ${slash > 0 ? 'its subsystem header' : 'include/net/dropreason-core.h'} of the running kernel's source; a newer dropmon may describe it`],
    counters: [],
    reasons: [],
    symbols: at ? [at.name] : [],
    kernel: slash > 0 ? 'include/net/dropreason.h' : `include/net/dropreason-core.h SKB_DROP_REASON_${name}`,
    file: '(not in the knowledge base)',
    known: false,
  };
}

// ---------------------------------------------------------------------------
// The knowledge base

export class KnowledgeBase {
  private readonly byKind = new Map<EntryKind, Map<string, KnowledgeEntry>>();
  private readonly patterns: { re: RegExp; entry: KnowledgeEntry }[] = [];
  private readonly entries: readonly KnowledgeEntry[];
  /** The fuzzy-search index, built on the first search (lookups by name never need it). */
  private indexCache: readonly IndexedEntry[] | undefined;

  constructor(entries: readonly KnowledgeEntry[]) {
    this.entries = entries;
    for (const kind of ENTRY_KINDS) this.byKind.set(kind, new Map());
    for (const e of entries) {
      const map = this.byKind.get(e.kind)!;
      // Names first, then aliases: an alias never shadows another entry's name.
      map.set(this.key(e.kind, e.name), e);
      if (e.pattern) this.patterns.push({ re: new RegExp(e.pattern, 'i'), entry: e });
    }
    for (const e of entries) {
      const map = this.byKind.get(e.kind)!;
      for (const a of e.aliases) if (!map.has(this.key(e.kind, a))) map.set(this.key(e.kind, a), e);
    }
  }

  private key(kind: EntryKind, name: string): string {
    switch (kind) {
      case 'reason':
        return normalizeReasonName(name);
      case 'symbol':
        return normalizeSymbolName(name).toLowerCase();
      case 'counter':
        return normalizeCounterName(name).toLowerCase();
      case 'trap':
        return name.trim().replace(/^trap:/i, '').toLowerCase();
    }
  }

  private exact(kind: EntryKind, name: string): KnowledgeEntry | undefined {
    return this.byKind.get(kind)!.get(this.key(kind, name));
  }

  /**
   * A reason by name or alias. A subsystem's reason (OPENVSWITCH/OVS_DROP_METER)
   * is also found by its bare name (an alias, as NET_DM spells it), and one
   * this kb does not list (OPENVSWITCH/code 12, a newer kernel's reason)
   * falls back to its subsystem's entry (SUBSYS_OPENVSWITCH).
   */
  reason(name: string): KnowledgeEntry | undefined {
    return this.exact('reason', name) ?? this.subsystemEntry(name);
  }

  private subsystemEntry(name: string): KnowledgeEntry | undefined {
    const slash = name.indexOf('/');
    if (slash <= 0) return undefined;
    const subsys = normalizeReasonName(name.slice(0, slash));
    return /^[A-Z0-9_]+$/.test(subsys) ? this.exact('reason', `SUBSYS_${subsys}`) : undefined;
  }

  /**
   * A reason's entry, or the honest generic one when the knowledge base does
   * not have it (never undefined), with what the drop location's function
   * (`symbol`, in any %pS form) says.
   */
  explainReason(name: string, symbol?: string): KnowledgeEntry {
    return this.reason(name) ?? unknownReasonEntry(name, symbol ? this.symbol(symbol) : undefined);
  }

  /** Exact name (case-insensitive, `@scope` ignored), then the families' patterns. */
  counter(name: string): KnowledgeEntry | undefined {
    const exact = this.exact('counter', name);
    if (exact) return exact;
    const bare = normalizeCounterName(name);
    return this.patterns.find((p) => p.re.test(bare))?.entry;
  }

  trap(name: string): KnowledgeEntry | undefined {
    return this.exact('trap', name);
  }

  /** A kernel function, also in its %pS form "func+0x12/0x80 [module]". */
  symbol(name: string): KnowledgeEntry | undefined {
    return this.exact('symbol', name);
  }

  /**
   * Any kind, by name or alias. Reason names are upper case and functions
   * lower case, so "QDISC_DROP" is the reason and "qdisc_drop" the function.
   * A name like "trap:tail_drop" finds the trap before the trap-counter family.
   */
  lookup(name: string, kind?: EntryKind): KnowledgeEntry | undefined {
    const kinds: readonly EntryKind[] = kind ? [kind] : /[A-Z]/.test(name) ? ENTRY_KINDS : ['symbol', 'trap', 'counter', 'reason'];
    for (const k of kinds) {
      const e = this.exact(k, name);
      if (e) return e;
    }
    if (!kind || kind === 'trap') {
      const t = /^trap:/i.test(name.trim()) ? this.trap(name) : undefined;
      if (t) return t;
    }
    return !kind || kind === 'counter' ? this.counter(name) : undefined;
  }

  /**
   * What a name means: an exact entry; else, when the running kernel has a
   * reason of that name (`isKernelReason`), the honest generic entry rather
   * than a look-alike; else the closest entries. Undefined when nothing is close.
   */
  explain(query: string, limit = 5, kind?: EntryKind, isKernelReason?: (name: string) => boolean): Explanation | undefined {
    const exact = this.lookup(query, kind);
    const hits = this.search(query, limit + 1, kind).filter((h) => h.entry !== exact);
    if (exact) return { match: 'exact', entry: exact, score: 1, hits: hits.slice(0, limit) };
    if ((!kind || kind === 'reason') && isKernelReason?.(normalizeReasonName(query))) {
      return { match: 'unknown', entry: unknownReasonEntry(query), score: 1, hits: hits.slice(0, limit) };
    }
    if (!hits.length) return undefined;
    return { match: 'fuzzy', entry: hits[0].entry, score: hits[0].score, hits: hits.slice(1, limit + 1) };
  }

  /** All entries, or those of one kind, in file order. */
  all(kind?: EntryKind): KnowledgeEntry[] {
    return this.entries.filter((e) => !kind || e.kind === kind);
  }

  /** Fuzzy search: typos, case, partial words ("rcvbuf", "listen overflow"). Best first. */
  search(query: string, limit = 5, kind?: EntryKind): SearchHit[] {
    const q = prepareQuery(query);
    if (!q) return [];
    const hits: SearchHit[] = [];
    this.indexCache ??= this.entries.map(indexEntry);
    for (const ie of this.indexCache) {
      if (kind && ie.entry.kind !== kind) continue;
      const score = scoreEntry(q, ie);
      if (score >= MIN_SCORE) hits.push({ entry: ie.entry, score });
    }
    hits.sort((a, b) => b.score - a.score || a.entry.name.localeCompare(b.entry.name));
    return hits.slice(0, Math.max(0, limit));
  }

  /** The counters that count the drops of a reason: declared on either side. */
  countersForReason(reason: string): string[] {
    const r = this.reason(reason);
    const name = r?.name ?? normalizeReasonName(reason);
    const out = new Set(r?.counters ?? []);
    for (const c of this.all('counter')) if (c.reasons.some((x) => normalizeReasonName(x) === name)) out.add(c.name);
    return [...out].sort();
  }

  /**
   * The drop reasons behind a counter: declared on either side. Old spellings
   * of a reason (aliases such as PTYPE_ABSENT) are included, so that events of
   * older kernels pair too.
   */
  reasonsForCounter(counter: string): string[] {
    const c = this.counter(counter);
    const names = new Set([normalizeCounterName(counter).toLowerCase()]);
    if (c) names.add(c.name.toLowerCase());
    const out = new Set<string>();
    const add = (reasonName: string) => {
      const r = this.reason(reasonName);
      if (!r) {
        out.add(normalizeReasonName(reasonName));
        return;
      }
      out.add(r.name);
      for (const a of r.aliases) if (!/^SKB_DROP_REASON_/i.test(a)) out.add(normalizeReasonName(a));
    };
    for (const r of c?.reasons ?? []) add(r);
    for (const r of this.all('reason')) if (r.counters.some((x) => names.has(x.toLowerCase()))) add(r.name);
    return [...out].sort();
  }

  /**
   * Is a drop with this reason (at this function) usually harmless? A symbol
   * entry decides when it lists the reason, or when it lists no reasons and is
   * itself benign (a function whose every drop is housekeeping); otherwise the
   * reason's entry decides. Unknown reasons are never called benign.
   */
  benign(reasonName: string, symbol?: string): Benign {
    const r = this.reason(reasonName);
    if (symbol) {
      const s = this.symbol(symbol);
      const reason = r?.name ?? normalizeReasonName(reasonName);
      if (s && s.reasons.some((x) => normalizeReasonName(x) === reason)) return s.benign;
      if (s && s.reasons.length === 0 && s.benign !== 'no') return s.benign;
    }
    return r?.benign ?? 'no';
  }

  /** References (counters/reasons/symbols of entries) that name no entry: the kb's own consistency check. */
  danglingReferences(): string[] {
    const out: string[] = [];
    for (const e of this.entries) {
      for (const c of e.counters) if (!this.counter(c)) out.push(`${e.file} ${e.name}: counter ${c}`);
      for (const r of e.reasons) if (!this.reason(r)) out.push(`${e.file} ${e.name}: reason ${r}`);
      for (const s of e.symbols) if (!this.symbol(s)) out.push(`${e.file} ${e.name}: symbol ${s}`);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------
// Fuzzy scoring: token matching with prefixes and edit distance, plus a
// whole-name comparison for queries typed as one word. Small and bounded:
// queries are capped, so a pasted megabyte costs nothing.

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
