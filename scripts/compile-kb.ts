/**
 * Build step (`npm run build`, after tsc): validate kb/*.yaml and store the
 * entries as JSON where the knowledge base loader looks first, so that an
 * installed dropmon never parses YAML nor writes into its own installation.
 * A knowledge-base error fails the build with the loader's message.
 */
import { writeFileSync } from 'node:fs';
import { compileKnowledge, compiledKnowledgePath } from '../src/core/knowledge.js';

try {
  const compiled = compileKnowledge();
  writeFileSync(compiledKnowledgePath(), JSON.stringify(compiled));
} catch (err) {
  process.stderr.write(`compile-kb: ${(err as Error).message}\n`);
  process.exit(1);
}
