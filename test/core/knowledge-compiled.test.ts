/**
 * The knowledge base is compiled by the build (dist/kb.compiled.json) and only
 * read at run time: an installed dropmon is read-only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { compileKnowledge, compiledKnowledgePath, loadKnowledge } from '../../src/core/knowledge.js';

test('the build compiled kb/*.yaml, and the compiled entries are the validated YAML', () => {
  const stored = JSON.parse(readFileSync(compiledKnowledgePath(), 'utf8')) as ReturnType<typeof compileKnowledge>;
  const fresh = compileKnowledge();
  assert.equal(stored.digest, fresh.digest, 'kb/ changed since the build: run npm run build');
  assert.deepEqual(stored.entries, JSON.parse(JSON.stringify(fresh.entries)));
});

test('loading the knowledge base writes nothing', () => {
  const before = statSync(compiledKnowledgePath()).mtimeMs;
  const kb = loadKnowledge();
  assert.ok(kb.reason('NO_SOCKET'), 'a known reason is found');
  assert.equal(statSync(compiledKnowledgePath()).mtimeMs, before);
});
