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
