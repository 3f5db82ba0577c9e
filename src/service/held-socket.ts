/**
 * The API's listening socket, bound by the monitor and held by it for its
 * whole life as a plain descriptor that its own event loop never polls.
 *
 * The API process (api-process.ts) is handed this descriptor and accepts on
 * it. The monitor never accepts, so it takes no connection from the API
 * process; and because it keeps the socket open, the address stays dropmon's
 * while an API process is replaced: no other local user can bind it in
 * between (and receive the tokens clients send), and connections made
 * meanwhile wait in the backlog for the next API process instead of being
 * refused. A port below 1024 needs no privilege in the API process either.
 *
 * node binds (addresses, IPv6, errors as usual); the descriptor is then
 * duplicated close-on-exec through libc and node's own handle closed.
 */
import { createServer } from 'node:net';
import { DropmonError } from '../core/errors.js';
import { loadLibc } from '../kernel/libc.js';

const F_DUPFD_CLOEXEC = 1030;

export interface HeldSocket {
  readonly fd: number;
  readonly host: string;
  readonly port: number;
  close(): void;
}

export async function holdListeningSocket(host: string, port: number): Promise<HeldSocket> {
  const { lib, errno } = loadLibc('the API process');
  const fcntl = lib.func('int fcntl(int, int, ...)') as (fd: number, cmd: number, type: string, arg: number) => number;
  const closeFd = lib.func('int close(int)') as (fd: number) => number;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new DropmonError(`cannot listen on ${host}:${port}: ${err.message}`, 'choose another listen address or port')));
    // Accepting starts here until node's handle is closed below: what comes meanwhile is refused, and retried by the client.
    server.on('connection', (s) => s.destroy());
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const bound = typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port };
  const nodeFd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  const fd = typeof nodeFd === 'number' && nodeFd >= 0 ? fcntl(nodeFd, F_DUPFD_CLOEXEC, 'int', 3) : -1;
  const failure = fd < 0 ? (typeof nodeFd === 'number' ? `fcntl: errno ${errno()}` : 'no descriptor') : undefined;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (failure) throw new Error(`cannot hold the listening socket (${failure})`);
  let open = true;
  return {
    fd,
    ...bound,
    close(): void {
      if (open) closeFd(fd);
      open = false;
    },
  };
}
