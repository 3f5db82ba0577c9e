/**
 * The service's API token when none is configured: generated at the first
 * start into the state directory as `token` (32 random bytes, base64url), mode
 * 0600, owned by root, so that root (the CLI, `dropmon serve --print-url` for
 * the dashboard) can use the API and other local users cannot. A configured
 * token (token, tokenFile, DROPMON_TOKEN) takes its place.
 *
 * The file is created and read as kernel/private-file.ts does (never through a
 * symlink, never one that others can read); a file that fails those checks
 * stops the service with the reason rather than being used or replaced.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DropmonError } from '../core/errors.js';
import { createPrivateFile, readOrFillPrivateFile } from '../kernel/private-file.js';
import { parseListen, resolveToken, type ServiceConfig } from './config.js';

/** Where the state lives when neither stateDir nor a recording file says otherwise. */
export const DEFAULT_STATE_DIR = '/var/lib/dropmon';
const TOKEN_NAME = 'token';
/** Shorter ones are refused: the configured token has the same bound. */
const MIN_TOKEN_LENGTH = 16;

/** The state directory: stateDir, else the recording's folder, else /var/lib/dropmon. */
export function stateDirectory(c: Pick<ServiceConfig, 'stateDir' | 'recording'>): string {
  return c.stateDir ?? (c.recording.file ? dirname(c.recording.file) : DEFAULT_STATE_DIR);
}

export function stateTokenPath(stateDir: string): string {
  return join(stateDir, TOKEN_NAME);
}

function newToken(): string {
  return randomBytes(32).toString('base64url');
}

function firstLine(text: string, path: string): string {
  const t = text.split('\n')[0].trim();
  if (t.length < MIN_TOKEN_LENGTH) throw new DropmonError(`${path}: the token must be at least ${MIN_TOKEN_LENGTH} characters`, 'remove the file; dropmon writes a new one');
  return t;
}

/** A folder others can write into would let them swap the token file for theirs between two starts. */
function checkDirectory(dir: string): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new DropmonError(`the state directory ${dir} is not a directory`);
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== me && st.uid !== 0) throw new DropmonError(`the state directory ${dir} belongs to uid ${st.uid}`, `chown it to uid ${me}, or choose another stateDir`);
  if ((st.mode & 0o022) !== 0) throw new DropmonError(`the state directory ${dir} can be written by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`, `chmod go-w ${dir}, or choose another stateDir`);
}

export interface StateToken {
  readonly token: string;
  readonly path: string;
  /** Written now (the first start). */
  readonly created: boolean;
}

/** The state directory's token, generated when it is not there yet. */
export function ensureStateToken(stateDir: string): StateToken {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new DropmonError(`cannot create the state directory ${stateDir}: ${(err as Error).message}`, 'create it, or set stateDir (--state-dir) to a folder root owns');
  }
  checkDirectory(stateDir);
  const path = stateTokenPath(stateDir);
  const fresh = newToken();
  if (createPrivateFile(path, `${fresh}\n`)) return { token: fresh, path, created: true };
  return { token: firstLine(readOrFillPrivateFile(path, () => `${newToken()}\n`), path), path, created: false };
}


export interface ServiceToken {
  readonly token: string;
  /** The generated token's file; undefined for a configured token. */
  readonly stateFile?: string;
  readonly created: boolean;
}

/** The token the API requires: the configured one, else the state directory's (generated at the first start). */
export function serviceToken(c: ServiceConfig, env: NodeJS.ProcessEnv = process.env): ServiceToken {
  const configured = resolveToken(c, env);
  if (configured !== undefined) return { token: configured, created: false };
  const s = ensureStateToken(stateDirectory(c));
  return { token: s.token, stateFile: s.path, created: s.created };
}

/**
 * The dashboard's address on this host with the token in the fragment
 * (`#token=`): a browser never sends a fragment in a request, so the token
 * stays out of request lines and proxy logs; the page keeps it in its tab.
 */
export function dashboardUrl(listen: string, token: string): string {
  const { host, port } = parseListen('listen', listen);
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const shown = local.includes(':') ? `[${local}]` : local;
  return `http://${shown}:${port}/#token=${encodeURIComponent(token)}`;
}
