/**
 * Build step (`npm run build`, after tsc): validate kb/*.yaml and store the
 * entries as JSON where the run-time loader reads them (src/knowledge/load.ts),
 * so that an installed dropmon never parses YAML nor writes into its own
 * installation. A knowledge-base error fails the build, naming the file, the
 * entry and the field.
 */
import { writeFileSync } from 'node:fs';
import { compileKnowledge } from '../src/knowledge/compile.js';
import { compiledKnowledgePath } from '../src/knowledge/load.js';

try {
  const compiled = compileKnowledge();
  writeFileSync(compiledKnowledgePath(), JSON.stringify(compiled));
} catch (err) {
  process.stderr.write(`compile-kb: ${(err as Error).message}\n`);
  process.exit(1);
}
