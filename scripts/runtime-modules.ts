/**
 * The npm packages dropmon loads at run time, as folders under node_modules
 * (one per line), from package-lock.json and what is installed: the
 * `dependencies` closure, with optional dependencies only where installed
 * (koffi's binary for this platform) and without the packages that only
 * install other packages' binaries (prebuild-install). scripts/build-deb.sh
 * copies these into the Debian package.
 *
 *   node dist/scripts/runtime-modules.js [PROJECT_DIR]
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Needed only while npm installs a package, never when it runs. */
const INSTALL_ONLY = new Set(['prebuild-install']);

interface LockPackage {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  dev?: boolean;
}

const root = resolve(process.argv[2] ?? '.');
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
const pkgs = lock.packages;

/** Node's resolution: node_modules/NAME beside `from`, then in each parent. */
function locate(name: string, from: string): string | undefined {
  let dir = from;
  for (;;) {
    const p = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (pkgs[p]) return p;
    if (!dir) return undefined;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i < 0 ? '' : dir.slice(0, i);
  }
}

const seen = new Set<string>();
const queue: string[] = [''];
while (queue.length) {
  const from = queue.shift()!;
  const p = pkgs[from];
  if (!p) continue;
  const wanted = [
    ...Object.keys(p.dependencies ?? {}).map((n) => [n, false] as const),
    ...Object.keys(p.optionalDependencies ?? {}).map((n) => [n, true] as const),
  ];
  for (const [name, optional] of wanted) {
    if (INSTALL_ONLY.has(name)) continue;
    const at = locate(name, from);
    if (!at) {
      if (optional) continue;
      throw new Error(`runtime-modules: ${name} (needed by ${from || 'dropmon'}) is not in package-lock.json`);
    }
    if (optional && !existsSync(join(root, at))) continue; // another platform's binary
    if (!existsSync(join(root, at))) throw new Error(`runtime-modules: ${at} is not installed (run npm ci)`);
    if (seen.has(at)) continue;
    seen.add(at);
    queue.push(at);
  }
}
process.stdout.write([...seen].sort().join('\n') + '\n');
