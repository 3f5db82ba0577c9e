// Part of `npm run lint`: a command is a flag table plus wiring, so no file in
// src/cli/ grows past MAX_LINES; logic that needs more belongs in a library layer.
// Plain JavaScript so that lint runs before (and without) a build.
import console from 'node:console';
import { readdirSync, readFileSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const MAX_LINES = 200;
const dir = new URL('../src/cli/', import.meta.url);

// As `wc -l` counts them, plus a last line without its newline.
const lineCount = (text) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

const tooLong = readdirSync(dir)
  .filter((name) => name.endsWith('.ts'))
  .map((name) => ({ name, lines: lineCount(readFileSync(new URL(name, dir), 'utf8')) }))
  .filter(({ lines }) => lines > MAX_LINES);

for (const { name, lines } of tooLong) {
  console.error(`src/cli/${name}: ${lines} lines, over ${MAX_LINES}: move its logic out of the command`);
}
process.exitCode = tooLong.length > 0 ? 1 : 0;
