/**
 * dropmon's version, as package.json says: printed by --version, written into
 * recordings, reported by the service. Loaded once, when first asked, as a
 * module of dropmon's own installation (never the host's state: core does no
 * host I/O); "unknown" when it cannot be loaded, since no caller should fail
 * for want of a version.
 */
import { createRequire } from 'node:module';

let cached: string | undefined;

export function dropmonVersion(): string {
  if (cached === undefined) {
    try {
      // dist/src/core/ → the package root.
      cached = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
