/**
 * The client side of `dropmon serve`'s authentication, kept in this one
 * module: where the token comes from and how a request carries it. The
 * service's scheme will get stricter; when it does, this is what changes.
 *
 * Token sources, first found wins: --token (visible in `ps`: for tests and
 * quick looks), --token-file (its first line, as the service's tokenFile),
 * DROPMON_TOKEN (as the service reads it).
 */
import { readFileSync } from 'node:fs';
import { DropmonError, UsageError } from '../../core/errors.js';

export interface TokenSources {
  readonly token?: string;
  readonly tokenFile?: string;
  readonly env?: NodeJS.ProcessEnv;
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
  return e ? e : undefined;
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
      : { message: 'the service wants a token (401)', hint: 'give it with --token-file FILE or DROPMON_TOKEN (or --token)' };
  if (status === 403)
    return { message: 'the service refused the request (403)', hint: 'without a token it answers only requests to localhost; give a token' };
  return undefined;
}
