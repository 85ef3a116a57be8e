#!/usr/bin/env node
// The fugue-server daemon: argv -> config -> App.start(); signals; exit codes
// (docs/operations.md). Signal handling lives here and only here.

import { App } from '../app.js';
import { helpText, loadConfig } from '../config/load.js';
import { EXIT, isFugueError } from '../errors.js';
import { VERSION } from '../version.js';

export interface DaemonIo {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  exit(code: number): never;
  stdout(text: string): void;
  stderr(text: string): void;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

export async function runDaemon(io: DaemonIo): Promise<void> {
  let request;
  try {
    request = loadConfig({ argv: io.argv, env: io.env });
  } catch (err) {
    if (isFugueError(err)) {
      io.stderr(`fugue-server: ${err.message}\n`);
      io.exit(err.exitCode);
    }
    throw err;
  }
  if (request.help) {
    io.stdout(`${helpText(io.env)}\n`);
    io.exit(EXIT.OK);
  }
  if (request.version) {
    io.stdout(`${VERSION}\n`);
    io.exit(EXIT.OK);
  }
  if (request.printConfig) {
    io.stdout(`${JSON.stringify(request.config, null, 2)}\n`);
    io.exit(EXIT.OK);
  }
  if (request.checkConfig) {
    io.stdout(`configuration is valid (files: ${request.files.join(', ') || 'none'}; socket.path ${request.config.socket.path})\n`);
    io.exit(EXIT.OK);
  }

  const app = new App({ config: request.config, version: VERSION, env: io.env });
  const log = app.log;
  log.info({ version: VERSION, node: process.version, socketPath: request.config.socket.path, configFiles: request.files }, 'starting fugue-server');

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, 'second signal during drain: exiting now');
      app.destroy();
      io.exit(128 + (SIGNAL_NUMBERS[signal] ?? 15));
    }
    signalled = true;
    log.info({ signal }, 'received shutdown signal, draining');
    app.close(`received ${signal}`).then(
      () => {
        log.info({}, 'fugue-server stopped');
        io.exit(EXIT.OK);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        app.destroy();
        io.exit(EXIT.SOFTWARE);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (err) => {
    log.error({ err }, 'uncaught exception: exiting');
    app.destroy();
    io.exit(EXIT.SOFTWARE);
  });
  // Last resort on any exit path the process controls: remove our socket (by inode).
  process.on('exit', () => app.server.removeSocket());

  try {
    await app.start();
  } catch (err) {
    if (isFugueError(err)) {
      log.error({ code: err.code, ...err.details }, err.message);
      io.stderr(`fugue-server: ${err.message}\n`);
      io.exit(err.exitCode);
    }
    log.error({ err }, 'failed to start');
    io.exit(EXIT.SOFTWARE);
  }
}

await runDaemon({
  argv: process.argv.slice(2),
  env: process.env,
  exit: (code) => process.exit(code),
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
});
