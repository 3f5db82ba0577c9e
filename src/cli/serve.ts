/**
 * `dropmon serve`: the always-on monitor. Thin wiring only: flags and the
 * config file -> ServiceConfig -> DropService (source, pipeline, counters,
 * recorder, metrics, alerts) + ApiServer (HTTP API, SSE, /metrics, dashboard);
 * signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config file.
 */
import { ConfigError, checkExposure, parseListen, resolveToken, type ServiceConfig } from '../service/config.js';
import { serveApi } from '../service/api-process.js';
import { chooseApiUser } from '../service/api-user.js';
import { terminalSafe } from '../core/terminal-safe.js';
import { DropService } from '../service/service.js';
import { dashboardUrl, serviceToken } from '../service/token.js';
import { loadServeConfig, parseServeFlags, SERVE_HELP } from './serve-flags.js';
import { onCleanup, onStopSignal } from './lifecycle.js';

const warn = (message: string): void => void process.stderr.write(`dropmon: warning: ${terminalSafe(message)}\n`);
export async function serveCommand(argv: string[]): Promise<number> {
  const flags = parseServeFlags(argv);
  if (flags === 'help') {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const config = loadServeConfig(flags);
  if (flags.printUrl) {
    process.stdout.write(`${dashboardUrl(config.listen, serviceToken(config).token)}\n`);
    return 0;
  }
  checkExposure(config, resolveToken(config));
  const auth = serviceToken(config);
  if (auth.created) process.stderr.write(`dropmon: API token written to ${auth.stateFile} (root only)\n`);
  const { host, port } = parseListen('listen', config.listen);

  // The API (HTTP, JSON, dashboard, range queries) runs as this user, in its own process (api-process.ts).
  const apiUser = chooseApiUser(config, warn);
  const service = new DropService({ config, ...(apiUser ? { recordingReaders: apiUser.gid } : {}) });
  // Every exit path (second signal, fatal error) undoes the source's changes to the host.
  onCleanup(() => service.closeNow());
  // SIGHUP reloads here; the lifecycle module would treat it as a stop signal.
  process.removeAllListeners('SIGHUP');

  if (!flags.stopped) await service.start('start');
  const settings = { token: auth.token, http: config.http, ...(config.webDir ? { webDir: config.webDir } : {}), host, port };
  const api = await serveApi(service, settings, apiUser, warn).catch(async (err: unknown) => {
    await service.stop('shutdown');
    throw err;
  });
  const bound = api.bound;
  if (api.separate) process.stderr.write(`dropmon: the API runs as user ${api.separate.user} (pid ${api.separate.pid ?? '?'}), without privileges\n`);
  const shown = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  const tokenFrom = auth.stateFile ? `the token in ${auth.stateFile}; dashboard: dropmon serve --print-url` : 'the configured token';
  process.stderr.write(`dropmon: serving on http://${shown}:${bound.port}/ (dashboard, API /api/v1, metrics /metrics); the API needs ${tokenFrom}\n`);

  let reloading: Promise<unknown> = Promise.resolve();
  process.on('SIGHUP', () => {
    // In turn with the API's changes: the file is read when this reload's turn comes (service.update).
    let token = '';
    const read = (): ServiceConfig => {
      const next = loadServeConfig(flags);
      checkExposure({ ...next, listen: config.listen }, resolveToken(next));
      token = serviceToken(next).token;
      return next;
    };
    const done = service.update(read, 'reload').then(
      (next) => {
        if (next.listen !== config.listen) process.stderr.write(`dropmon: warning: listen changed to ${next.listen}: restart dropmon to apply it\n`);
        api.setToken(token);
        api.setHttp(next.http);
        process.stderr.write('dropmon: configuration reloaded\n');
      },
      (err: unknown) => {
        const hint = err instanceof ConfigError && err.hint ? ` (${err.hint})` : '';
        process.stderr.write(`dropmon: warning: reload failed, the previous configuration stays: ${(err as Error).message}${hint}\n`);
      },
    );
    reloading = Promise.all([reloading, done]);
  });

  const signal = await new Promise<NodeJS.Signals>((resolve) => onStopSignal(resolve));
  process.stderr.write(`dropmon: ${signal}: stopping\n`);
  await reloading;
  api.refuseChanges();
  await service.shutdown();
  await api.close();
  const s = service.status();
  process.stderr.write(`dropmon: stopped; ${s.intervals} intervals, ${s.drops} drops, ${s.lost} events lost\n`);
  return 0;
}
