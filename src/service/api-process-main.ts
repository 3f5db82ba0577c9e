/**
 * The API process of `dropmon serve` (api-process.ts starts it, as an
 * unprivileged user): HTTP, JSON bodies, the event streams, the dashboard's
 * files, /metrics and the recording's range queries (read-only, on worker
 * threads) all run here, with no capability and no kernel handle. The
 * listening socket comes from the monitor, already bound.
 *
 * It lives as long as its channel: when the monitor says "close" or goes
 * away, it closes its connections and exits. Signals are the monitor's to
 * act on (a Ctrl-C reaches the whole process group): this process ignores
 * them and is closed by the monitor in order.
 */
import type { Server } from 'node:net';
import { userInfo } from 'node:os';
import { terminalSafe } from '../core/terminal-safe.js';
import { loadKnowledge } from '../knowledge/load.js';
import type { MonitorMessage } from './api-channel.js';
import { ApiServer } from './http.js';
import { ServiceMirror } from './service-mirror.js';

function say(line: string): void {
  process.stderr.write(`dropmon: api: ${terminalSafe(line)}\n`);
}

function send(m: unknown): void {
  if (process.connected) process.send?.(m);
}

function main(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => undefined);
  let mirror: ServiceMirror | undefined;
  let api: ApiServer | undefined;
  let closing = false;
  const close = async (code: number): Promise<void> => {
    if (closing) return;
    closing = true;
    mirror?.closeCalls();
    try {
      await api?.close();
    } finally {
      process.exit(code);
    }
  };
  process.on('disconnect', () => void close(0));
  process.on('uncaughtException', (err) => {
    say(`internal error: ${err.stack ?? err.message}`);
    process.exit(1);
  });
  process.on('message', (m: MonitorMessage, handle?: Server) => {
    if (m.t === 'init') {
      if (api) return;
      try {
        mirror = new ServiceMirror(loadKnowledge(), m, send);
        api = new ApiServer(mirror, { token: m.token, http: m.http, ...(m.webDir ? { webDir: m.webDir } : {}), process: { user: m.user, separate: true } });
        if (!handle) throw new Error('no listening socket came with init');
        api.listenOn(handle).then(
          (bound) => send({ t: 'ready', ...bound }),
          (err: unknown) => {
            send({ t: 'failed', message: (err as Error).message });
            void close(1);
          },
        );
      } catch (err) {
        send({ t: 'failed', message: (err as Error).message });
        void close(1);
      }
      return;
    }
    if (m.t === 'close') return void close(0);
    if (m.t === 'settings') {
      api?.setToken(m.token);
      api?.setHttp(m.http);
      return;
    }
    mirror?.receive(m);
  });
  // Nothing is done until the monitor's init: it brings the socket and what to show.
  if (!process.send) {
    say(`this is the API process of dropmon serve (user ${userInfo().username}); it is started by dropmon serve, not by hand`);
    process.exit(2);
  }
}

main();
