/**
 * Who the API process runs as: a user of this host without privileges,
 * looked up in the password database (files only: node has no getpwnam, and
 * a system user such as "dropmon" or "nobody" is a local one).
 *
 * The package creates "dropmon" (contrib/debian/postinst) and gives it group
 * read of /var/lib/dropmon; a host without it falls back to "nobody", which
 * can still answer everything but the recording's range queries when the
 * recording's folder is closed to it (they then answer from memory).
 */
import { readFileSync } from 'node:fs';
import { ConfigError, type ServiceConfig } from './config.js';

export interface ApiUser {
  readonly name: string;
  readonly uid: number;
  /** Its primary group: the only group the API process keeps. */
  readonly gid: number;
}

/** Parse /etc/passwd text; a line that does not parse is skipped. */
export function parsePasswd(text: string): ApiUser[] {
  const users: ApiUser[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !/^\d{1,10}$/.test(f[2]) || !/^\d{1,10}$/.test(f[3])) continue;
    users.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]) });
  }
  return users;
}

/**
 * The user named `wanted` (the config's apiUser), else "dropmon", else
 * "nobody". A configured user that does not exist, or one with uid or gid 0,
 * is a configuration error: running the API as root would silently undo the
 * separation.
 */
export function resolveApiUser(wanted: string | undefined, passwd = '/etc/passwd'): ApiUser {
  let users: ApiUser[];
  try {
    users = parsePasswd(readFileSync(passwd, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read ${passwd} to find the API's user: ${(err as Error).message}`);
  }
  const find = (name: string) => users.find((u) => u.name === name);
  const user = wanted !== undefined ? find(wanted) : (find('dropmon') ?? find('nobody'));
  if (!user) {
    throw wanted !== undefined
      ? new ConfigError(`config: apiUser: no user ${JSON.stringify(wanted)} on this host`, `create it (adduser --system ${wanted}) or choose another`)
      : new ConfigError('neither a "dropmon" nor a "nobody" user exists for the API process', 'create one: adduser --system --group dropmon, or set apiUser');
  }
  if (user.uid === 0 || user.gid === 0) throw new ConfigError(`config: apiUser: ${user.name} has uid or gid 0; the API process must not run as root`);
  return user;
}

const CAP_SETGID = 6n;
const CAP_SETUID = 7n;

/** The effective capabilities of this process (/proc/self/status), undefined where they cannot be read. */
function effectiveCapabilities(status = '/proc/self/status'): bigint | undefined {
  try {
    const hex = /^CapEff:\s*([0-9a-f]+)$/im.exec(readFileSync(status, 'utf8'))?.[1];
    return hex ? BigInt(`0x${hex}`) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The API process's user for `serve`: the configured one (its absence is a
 * configuration error), else dropmon, else nobody. None when this process
 * cannot start a process as another user (not root, or root without
 * CAP_SETUID and CAP_SETGID, as under an older copy of the unit): the API
 * then runs in the monitor's process, and the warning says why.
 */
export function chooseApiUser(config: Pick<ServiceConfig, 'apiUser'>, warn: (m: string) => void): ApiUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const caps = effectiveCapabilities();
  if (caps !== undefined && ((caps >> CAP_SETUID) & 1n) !== 1n) {
    warn("without CAP_SETUID and CAP_SETGID the API cannot run as another user: it runs in the monitor's process, as root (add them to the unit's CapabilityBoundingSet)");
    return undefined;
  }
  if (caps !== undefined && ((caps >> CAP_SETGID) & 1n) !== 1n) {
    warn("without CAP_SETGID the API cannot run as another user: it runs in the monitor's process, as root (add it to the unit's CapabilityBoundingSet)");
    return undefined;
  }
  let user: ApiUser;
  try {
    user = resolveApiUser(config.apiUser);
  } catch (err) {
    if (config.apiUser !== undefined) throw err;
    warn(`${(err as Error).message}: the API runs in the monitor's process, as root`);
    return undefined;
  }
  if (user.name === 'nobody' && config.apiUser === undefined) {
    warn('there is no "dropmon" user: the API runs as "nobody", which other programs may share (they could signal it); create it: adduser --system --group dropmon');
  }
  return user;
}
