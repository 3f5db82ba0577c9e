/**
 * The API process of `dropmon serve` (api-process.ts starts it, as an
 * unprivileged user): HTTP, JSON bodies, the event streams, the dashboard's
 * files, /metrics and the recording's range queries (read-only, on worker
 * threads) all run here, with no capability and no kernel handle.
 *
 *   fd 3  the channel to the monitor (api-channel.ts, api-frames.ts)
 *   fd 4  the listening socket, bound and held by the monitor
 *
 * It lives as long as its channel: when the monitor says "close" or goes
 * away, it closes its connections and exits. Signals are the monitor's to
 * act on (a Ctrl-C reaches the whole process group): this process ignores
 * them and is closed by the monitor in order. Should memory run out on the
 * host, it is the one the kernel ends first, not the monitor.
 */
import { writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { deserialize } from 'node:v8';
import { loadKnowledge } from '../knowledge/load.js';
import type { MonitorMessage } from './api-channel.js';
import { encodeFrame, FrameReader, MAX_FROM_API } from './api-frames.js';
import { ApiServer } from './http.js';
import { ServiceMirror } from './service-mirror.js';

const CHANNEL_FD = 3;
const LISTEN_FD = 4;
/** The monitor's messages are trusted but bounded: a kernel symbol table is about 10 MiB. */
const MAX_FROM_MONITOR = 512 * 2 ** 20;

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

function main(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => undefined);
  try {
    writeFileSync('/proc/self/oom_score_adj', '1000');
  } catch {
    /* not Linux, or /proc read-only: the monitor just is not the kernel's first choice */
  }
  let channel: Socket;
  try {
    channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  } catch {
    say('this is the API process of dropmon serve; it is started by dropmon serve, not by hand');
    process.exit(2);
  }
  let mirror: ServiceMirror | undefined;
  let api: ApiServer | undefined;
  let closing = false;
  const close = async (code: number): Promise<void> => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(code), 5000).unref();
    mirror?.closeCalls();
    try {
      await api?.close();
    } finally {
      process.exit(code);
    }
  };
  const send = (m: unknown): boolean => {
    const payload = Buffer.from(JSON.stringify(m), 'utf8');
    if (payload.length > MAX_FROM_API) return false;
    channel.write(encodeFrame(payload));
    return true;
  };
  channel.on('close', () => void close(0));
  channel.on('error', () => void close(0));
  process.on('uncaughtException', (err) => {
    say(`internal error: ${err.stack ?? err.message}`);
    process.exit(1);
  });
  const reader = new FrameReader(MAX_FROM_MONITOR);
  channel.on('data', (chunk: Buffer) => {
    for (const frame of reader.push(chunk)) {
      const m = deserialize(frame) as MonitorMessage;
      if (m.t === 'init') {
        if (api) continue;
        try {
          mirror = new ServiceMirror(loadKnowledge(), m, send);
          api = new ApiServer(mirror, { token: m.token, http: m.http, ...(m.webDir ? { webDir: m.webDir } : {}), process: { user: m.user, separate: true } });
          api.listenOn(LISTEN_FD).then(
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
      } else if (m.t === 'close') void close(0);
      else if (m.t === 'settings') {
        api?.setToken(m.token);
        api?.setHttp(m.http);
      } else mirror?.receive(m);
    }
    if (reader.failed) {
      say(`the monitor sent ${reader.failed}`);
      void close(1);
    }
  });
}

main();
