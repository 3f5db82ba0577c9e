/**
 * dropmon's version, as package.json says: printed by --version, written into
 * recordings, reported by the service. Read once, when first asked, from
 * dropmon's own installation (never the host's state); "unknown" when the
 * file cannot be read, since no caller should fail for want of a version.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function dropmonVersion(): string {
  if (cached === undefined) {
    try {
      // dist/src/core/ → the package root.
      cached = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
