/**
 * The knowledge base at build time: kb/*.yaml (schema in kb/README.md) read,
 * validated and turned into the entries that scripts/compile-kb.ts stores as
 * JSON for load.ts. A mistake in a kb file fails the build with a message
 * naming the file, the entry and the field. Nothing here runs in an installed
 * dropmon, which never parses YAML.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { COUNTER_LAYERS, type CounterLayer } from '../core/counter.js';
import { DropmonError } from '../core/errors.js';
import type { Benign } from '../core/knowledge-view.js';
import { ENTRY_KINDS, SUMMARY_MAX, type EntryKind, type KnowledgeEntry } from './entry.js';
import type { CompiledKnowledge } from './load.js';
import { fillTemplate, parseWhen, unknownTemplateNames } from './refine.js';

const FILES: Record<EntryKind, string> = {
  reason: 'reasons.yaml',
  counter: 'counters.yaml',
  trap: 'traps.yaml',
  symbol: 'symbols.yaml',
};
/** The file of refined causes: reasons that several causes share, told apart (see refine.ts). */
const REFINEMENTS_FILE = 'refinements.yaml';
/**
 * Every kb file and the kind of its entries: the reasons of other subsystems
 * (SUBSYS/REASON) have their own file, and so do the refined causes of
 * reasons (REASON/cause), which are reasons too (`dropmon explain` finds them).
 */
const KB_FILES: ReadonlyArray<{ readonly kind: EntryKind; readonly file: string; readonly optional?: boolean }> = [
  ...ENTRY_KINDS.map((kind) => ({ kind, file: FILES[kind] })),
  { kind: 'reason', file: 'subsystems.yaml', optional: true },
  { kind: 'reason', file: REFINEMENTS_FILE, optional: true },
];

const FIELDS = new Set([
  'name', 'aliases', 'pattern', 'layer', 'since', 'until', 'summary', 'meaning', 'causes', 'benign', 'benignWhen',
  'drop', 'gauge', 'blindSpot', 'check', 'fix', 'counters', 'reasons', 'symbols', 'kernel', 'refines', 'when', 'sysctls',
]);
const COUNTER_ONLY = new Set(['pattern', 'drop', 'gauge', 'blindSpot']);
const REFINEMENT_ONLY = new Set(['refines', 'when', 'sysctls']);
/**
 * Not for refined causes: their conditions name the counters and functions,
 * and the relations (which counters count a reason's drops) stay the reason's own.
 */
const NOT_FOR_REFINEMENTS = new Set(['aliases', 'counters', 'reasons', 'symbols']);
const BENIGN: readonly Benign[] = ['no', 'usually', 'sometimes'];

/** The repo's kb/ folder: ../../kb from src/knowledge, ../../../kb from dist/src/knowledge. */
function defaultDir(): string {
  for (const rel of ['../../../kb/', '../../kb/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, FILES.reason))) return dir;
  }
  throw new DropmonError('the knowledge base sources (kb/) were not found', 'compile the knowledge base in the dropmon source tree, where kb/ sits beside src/');
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
  checkRefinedReasons(entries);
  return entries;
}

/** Parse and validate kb/*.yaml (the repo's, or those of `dir`) into what the build stores for load.ts. */
export function compileKnowledge(dir?: string): CompiledKnowledge {
  const { texts, digest } = readKnowledgeTexts(dir ?? defaultDir());
  return { digest, entries: parseKnowledgeTexts(texts) };
}

function readKbFile(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (err) {
    throw new DropmonError(`knowledge base: cannot read kb/${file}: ${(err as Error).message}`, 'every kb file must exist (an empty list is [])');
  }
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

/** Every refined cause refines a reason of the knowledge base (by its name, not an alias). */
function checkRefinedReasons(entries: readonly KnowledgeEntry[]): void {
  const reasons = new Set(entries.filter((e) => e.kind === 'reason' && !e.refines).map((e) => e.name));
  entries.forEach((e) => {
    if (e.refines && !reasons.has(e.refines))
      throw new DropmonError(`knowledge base: kb/${e.file} entry ${e.name}: field "refines" names no reason of the knowledge base (${e.refines})`, 'see kb/README.md for the schema');
  });
}

function parseKbFile(text: string, kind: EntryKind, file: string): KnowledgeEntry[] {
  let data: unknown;
  try {
    data = parseYaml(text);
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
  const refinement = file === REFINEMENTS_FILE;
  for (const key of Object.keys(o)) {
    if (!FIELDS.has(key)) throw fail(key, 'is not a field of the schema');
    if (kind !== 'counter' && COUNTER_ONLY.has(key)) throw fail(key, 'is for counters only');
    if (!refinement && REFINEMENT_ONLY.has(key)) throw fail(key, `is for refined causes only (kb/${REFINEMENTS_FILE})`);
    if (refinement && NOT_FOR_REFINEMENTS.has(key)) throw fail(key, 'is not for refined causes (their conditions are in "when")');
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
  // A refined cause says where in the kernel it was checked, and what to check and change.
  if (refinement) str('kernel', true);
  const refined = refinement ? validateRefinement(o, name, fail, { check: list('check'), fix: list('fix'), sysctls: list('sysctls') }) : undefined;
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
    ...(refined ?? {}),
    file,
  };
}

/**
 * The fields of a refined cause: the reason it refines (its name begins the
 * cause's: IP_INHDR/ttl-expired), when it applies, and a check and a fix of
 * its own. Its texts may name only what a match fills in ({{rule}}...).
 */
function validateRefinement(
  o: Record<string, unknown>,
  name: string,
  fail: (field: string, problem: string) => DropmonError,
  texts: { check: string[]; fix: string[]; sysctls: string[] },
): Pick<KnowledgeEntry, 'refines' | 'when' | 'sysctls'> {
  const refines = typeof o.refines === 'string' ? o.refines.trim() : '';
  if (!refines) throw fail('refines', 'is required (the reason this cause is one of)');
  if (!/^[A-Z0-9_]+$/.test(refines)) throw fail('refines', 'must be a reason name (upper case, as the kernel spells it)');
  if (!new RegExp(`^${refines}/[a-z0-9]+(-[a-z0-9]+)*$`).test(name)) throw fail('name', `must be ${refines}/a-short-name (lower case words joined by -)`);
  if (o.when === undefined || o.when === null) throw fail('when', 'is required (the conditions under which this cause applies)');
  const when = parseWhen(o.when);
  if (!when.conditions) throw fail('when', when.problem ?? 'is malformed');
  if (!texts.check.length) throw fail('check', 'is required for a refined cause (at least one command)');
  if (!texts.fix.length) throw fail('fix', 'is required for a refined cause (at least one change)');
  // `dropmon explain` shows it with stand-ins (TABLE, <net.ipv4.ip_forward>): that too must fit one line.
  const shown = typeof o.summary === 'string' ? fillTemplate(o.summary, {}, undefined) : '';
  if (shown.length > SUMMARY_MAX) throw fail('summary', `is longer than ${SUMMARY_MAX} characters with its stand-ins (${shown})`);
  for (const field of ['summary', 'meaning', 'benignWhen', 'check', 'fix'] as const) {
    const values = Array.isArray(o[field]) ? (o[field] as unknown[]) : [o[field]];
    for (const v of values) {
      const bad = typeof v === 'string' ? unknownTemplateNames(v) : [];
      if (bad.length) throw fail(field, `names ${bad.map((b) => `{{${b}}}`).join(', ')}, which no match fills in`);
    }
  }
  const badSysctl = texts.sysctls.find((n) => !/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(n));
  if (badSysctl !== undefined) throw fail('sysctls', `names ${JSON.stringify(badSysctl)}, not a dotted sysctl name`);
  return { refines, when: when.conditions, ...(texts.sysctls.length ? { sysctls: texts.sysctls } : {}) };
}

function optional<K extends string, V>(key: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, V>);
}
