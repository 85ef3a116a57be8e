// fugue-server with the fan-out rows' feature (bench/fanout-feature.ts)
// registered on top of the default ones: what the fan-out rows run as
// "fugue". Everything else is as deployed: the configuration is read by the
// package's loadConfig from the same environment and flags as the CLI's, the
// App is the real one (logs to stdout at info, metrics, the HTTP sidecar), and
// SIGTERM or SIGINT drains it. It leaves out what the harness never uses of
// src/cli/daemon.ts: --help and the other one-shot flags, reloads, the service
// manager's notifications and socket activation.
//
// Usage: node dist/bench/fanout-server.js [fugue-server's configuration flags]

import { App, DEFAULT_FEATURES, EXIT, VERSION, isFugueError, loadConfig } from '../src/index.js';
import { fanoutFeature } from './fanout-feature.js';

/** How long an exit waits for buffered log lines to reach the log consumer, in ms (as the daemon does). */
const EXIT_LOG_FLUSH_MS = 2000;

function configOrExit(): ReturnType<typeof loadConfig> {
  try {
    return loadConfig({ argv: process.argv.slice(2), env: process.env });
  } catch (err) {
    if (!isFugueError(err)) throw err;
    process.stderr.write(`fanout-server: ${err.message}\n`);
    process.exit(err.exitCode);
  }
}

const request = configOrExit();
const app = new App({ config: request.config, version: VERSION, env: process.env, features: [...DEFAULT_FEATURES, fanoutFeature] });

const exit = async (code: number): Promise<never> => {
  await app.flushLog(EXIT_LOG_FLUSH_MS);
  process.exit(code);
};

let draining = false;
const drain = (signal: NodeJS.Signals): void => {
  if (draining) {
    // A second signal: stop now, as the daemon does.
    app.destroy();
    void exit(EXIT.SOFTWARE);
    return;
  }
  draining = true;
  app.log.info({ signal }, 'received shutdown signal, draining');
  app.close(`received ${signal}`).then(
    () => exit(0),
    (err: unknown) => {
      app.log.error({ err }, 'shutdown failed');
      app.destroy();
      return exit(EXIT.SOFTWARE);
    },
  );
};
process.on('SIGTERM', drain);
process.on('SIGINT', drain);
// Last resort on any exit path: remove our socket (by inode), as the daemon does.
process.on('exit', () => app.server.removeSocket());

try {
  await app.start();
} catch (err) {
  process.stderr.write(`fanout-server: ${err instanceof Error ? err.message : String(err)}\n`);
  await exit(isFugueError(err) ? err.exitCode : EXIT.SOFTWARE);
}
