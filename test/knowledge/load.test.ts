/**
 * The knowledge base at run time is the build's compiled file, read once and
 * never written: an installed dropmon is read-only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { compiledKnowledgePath, loadKnowledge } from '../../src/knowledge/load.js';

test('the knowledge base is read once per process', () => {
  assert.equal(loadKnowledge(), loadKnowledge());
});

test('loading the knowledge base writes nothing', () => {
  const before = statSync(compiledKnowledgePath()).mtimeMs;
  const kb = loadKnowledge();
  assert.ok(kb.reason('NO_SOCKET'), 'a known reason is found');
  assert.equal(statSync(compiledKnowledgePath()).mtimeMs, before);
});
