/**
 * The build's knowledge-base step: kb/*.yaml validated into entries, bad
 * files failing with the file, the entry and the field named, and the
 * compiled file the build stored matching the YAML.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DropmonError } from '../../src/core/errors.js';
import { KnowledgeBase } from '../../src/knowledge/base.js';
import { compileKnowledge } from '../../src/knowledge/compile.js';
import { compiledKnowledgePath } from '../../src/knowledge/load.js';

/** A knowledge base straight from a folder of kb files, as the build would compile it. */
function compileFolder(dir: string): KnowledgeBase {
  return new KnowledgeBase(compileKnowledge(dir).entries);
}

test('the build compiled kb/*.yaml, and the compiled entries are the validated YAML', () => {
  const stored = JSON.parse(readFileSync(compiledKnowledgePath(), 'utf8')) as ReturnType<typeof compileKnowledge>;
  const fresh = compileKnowledge();
  assert.equal(stored.digest, fresh.digest, 'kb/ changed since the build: run npm run build');
  assert.deepEqual(stored.entries, JSON.parse(JSON.stringify(fresh.entries)));
});

const GOOD_REASON = `- name: SOME_REASON
  layer: socket
  summary: A test reason.
  benign: no
`;

function withKb(files: Partial<Record<'reasons' | 'counters' | 'traps' | 'symbols', string>>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-kb-'));
  try {
    for (const f of ['reasons', 'counters', 'traps', 'symbols'] as const) writeFileSync(join(dir, `${f}.yaml`), files[f] ?? '[]\n');
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertKbError(files: Parameters<typeof withKb>[0], ...parts: RegExp[]): void {
  withKb(files, (dir) => {
    assert.throws(
      () => compileFolder(dir),
      (err: unknown) => {
        assert.ok(err instanceof DropmonError, `a DropmonError, not ${String(err)}`);
        for (const p of parts) assert.match(err.message, p);
        return true;
      },
    );
  });
}

test('a minimal valid kb loads', () => {
  withKb({ reasons: GOOD_REASON }, (dir) => {
    const small = compileFolder(dir);
    assert.equal(small.reason('SOME_REASON')?.summary, 'A test reason.');
    assert.equal(small.all().length, 1);
  });
});

test('bad kb files: syntax, shape, fields and values are named', () => {
  assertKbError({ reasons: '- name: [unclosed\n' }, /reasons\.yaml/, /not valid YAML/);
  assertKbError({ counters: 'name: not-a-list\n' }, /counters\.yaml/, /YAML list/);
  assertKbError({ reasons: '- just a string\n' }, /entry 1 is not a mapping/);
  assertKbError({ reasons: GOOD_REASON.replace('  layer: socket\n', '') }, /entry 1 \(SOME_REASON\)/, /"layer" is required/);
  assertKbError({ reasons: GOOD_REASON.replace('layer: socket', 'layer: kernel') }, /"layer" must be one of/);
  assertKbError({ reasons: GOOD_REASON.replace('benign: no', 'benign: maybe') }, /"benign" must be one of/);
  assertKbError({ reasons: GOOD_REASON.replace('benign: no', 'benign: usually') }, /"benignWhen" is required/);
  assertKbError({ reasons: GOOD_REASON + '  colour: blue\n' }, /"colour" is not a field/);
  assertKbError({ reasons: GOOD_REASON + '  drop: true\n' }, /"drop" is for counters only/);
  assertKbError({ reasons: GOOD_REASON + '  since: 6.10\n' }, /"since" must be a quoted kernel version/);
  assertKbError({ reasons: GOOD_REASON + '  causes: oops\n' }, /"causes" must be a list/);
  assertKbError({ reasons: GOOD_REASON.replace('A test reason.', 'x'.repeat(101)) }, /"summary" is longer than 100/);
  assertKbError({ reasons: GOOD_REASON + GOOD_REASON }, /entry 2 \(SOME_REASON\)/, /duplicate/);
  assertKbError({ counters: GOOD_REASON.replace('SOME_REASON', 'x:y') }, /counters\.yaml/, /"drop" is required/);
  assertKbError({ counters: GOOD_REASON.replace('SOME_REASON', 'x:y') + "  drop: true\n  pattern: '('\n" }, /"pattern" is not a valid regular expression/);
  withKb({}, (dir) => {
    rmSync(join(dir, 'traps.yaml'));
    assert.throws(() => compileFolder(dir), /cannot read kb\/traps\.yaml/);
  });
});
