/**
 * The knowledge base at run time: the entries the build validated from
 * kb/*.yaml (compile.ts) and stored as JSON (scripts/compile-kb.ts). Parsing
 * 150 kB of YAML takes 0.3-2 s on a small machine, reading the JSON a few ms,
 * and `watch` must show its first interval within a second and a half. An
 * installed dropmon only reads: it never parses YAML nor writes into its own
 * installation.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DropmonError } from '../core/errors.js';
import { KnowledgeBase } from './base.js';
import type { KnowledgeEntry } from './entry.js';

/** The build's output: the validated entries, and a digest of the YAML they came from. */
export interface CompiledKnowledge {
  readonly digest: string;
  readonly entries: KnowledgeEntry[];
}

/** Where the build stores the compiled entries: dist/kb.compiled.json, beside dist/src/. */
export function compiledKnowledgePath(): string {
  return fileURLToPath(new URL('../../kb.compiled.json', import.meta.url));
}

let loaded: KnowledgeBase | undefined;

/** The knowledge base, read once per process. Throws a DropmonError when the build's file is missing or damaged. */
export function loadKnowledge(): KnowledgeBase {
  if (loaded) return loaded;
  const path = compiledKnowledgePath();
  const hint = 'reinstall dropmon; in a source tree, run npm run build (it compiles kb/*.yaml)';
  let compiled: Partial<CompiledKnowledge> | null;
  try {
    compiled = JSON.parse(readFileSync(path, 'utf8')) as Partial<CompiledKnowledge> | null;
  } catch (err) {
    throw new DropmonError(`the compiled knowledge base ${path} cannot be read: ${(err as Error).message}`, hint);
  }
  if (!Array.isArray(compiled?.entries)) throw new DropmonError(`the compiled knowledge base ${path} is damaged (no list of entries)`, hint);
  return (loaded = new KnowledgeBase(compiled.entries));
}
