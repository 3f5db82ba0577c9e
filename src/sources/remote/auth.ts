/**
 * The client side of `dropmon serve`'s authentication, kept in this one
 * module: where the token comes from and how a request carries it. The
 * service's scheme will get stricter; when it does, this is what changes.
 *
 * Token sources, first found wins: --token (visible in `ps`: for tests and
 * quick looks), --token-file (its first line, as the service's tokenFile),
 * DROPMON_TOKEN (as the service reads it), and last, when running as root
 * and the service is on this host (a loopback address: this host's token is
 * never sent to another one), the token the service generated into its state
 * directory (read as the service writes it: never through a symlink, only a
 * root-owned 0600 file).
 */
import { readFileSync } from 'node:fs';
import { DropmonError, UsageError } from '../../core/errors.js';
import { PrivateFileError, readPrivateFile } from '../../kernel/private-file.js';

export interface TokenSources {
  readonly token?: string;
  readonly tokenFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** The service's generated token (its state directory's `token`), read only by root. */
  readonly stateTokenFile?: string;
  /** The service's address: the generated token goes only to a loopback one. */
  readonly url?: URL;
  /** The effective uid (default: this process's). */
  readonly uid?: number;
}

function isLoopbackUrl(url: URL | undefined): boolean {
  const h = url?.hostname;
  return h === 'localhost' || h === '[::1]' || (h !== undefined && /^127\.\d+\.\d+\.\d+$/.test(h));
}

/** The service's generated token, when root runs this, the service is local and the file is there; undefined otherwise. */
function stateToken(file: string | undefined, uid: number, url: URL | undefined): string | undefined {
  if (file === undefined || uid !== 0 || !isLoopbackUrl(url)) return undefined;
  let text: string;
  try {
    text = readPrivateFile(file);
  } catch (err) {
    if (err instanceof PrivateFileError && err.problem === 'missing') return undefined;
    throw err;
  }
  const t = text.split('\n')[0].trim();
  return t ? t : undefined;
}

export function resolveClientToken(s: TokenSources): string | undefined {
  if (s.token !== undefined) {
    if (!s.token.trim()) throw new UsageError('--token is empty');
    return s.token.trim();
  }
  if (s.tokenFile !== undefined) {
    let t: string;
    try {
      t = readFileSync(s.tokenFile, 'utf8').split('\n')[0].trim();
    } catch (err) {
      throw new DropmonError(`cannot read --token-file ${s.tokenFile}: ${(err as Error).message}`);
    }
    if (!t) throw new DropmonError(`--token-file ${s.tokenFile}: the first line is empty`);
    return t;
  }
  const e = s.env?.DROPMON_TOKEN?.trim();
  if (e) return e;
  return stateToken(s.stateTokenFile, s.uid ?? process.geteuid?.() ?? -1, s.url);
}

/** Headers that authenticate a request (none without a token). */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** What an HTTP status refusing us means, in the operator's words; undefined for other statuses. */
export function authProblem(status: number, hasToken: boolean): { message: string; hint: string } | undefined {
  if (status === 401)
    return hasToken
      ? { message: 'the service refused the token (401)', hint: "check the token: the service's token, tokenFile or DROPMON_TOKEN" }
      : { message: 'the service wants a token (401)', hint: 'give it with --token-file FILE or DROPMON_TOKEN (or --token); as root on the service\'s host, dropmon reads the token the service generated' };
  if (status === 403)
    return { message: 'the service refused the request (403)', hint: 'without a token it answers only requests to localhost, and only when it lets anyone read; give a token' };
  return undefined;
}
