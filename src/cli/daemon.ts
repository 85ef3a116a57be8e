// The daemon: argv -> config -> App.start(); signals; exit codes
// (docs/operations.md). Signal handling lives here and only here.

import { constants } from 'node:os';
import { App, SPAN_FLUSH_MAX_MS } from '../app.js';
import { helpText, loadConfig } from '../config/load.js';
import { EXIT, isFugueError, socketActivation } from '../errors.js';
import { listenFds } from '../supervisor/listen-fds.js';
import type { Notifier } from '../supervisor/notify.js';
import { VERSION } from '../version.js';
import { MANAGED_SIGNALS, SIGNAL_ACTIONS } from './signals.js';

export interface DaemonIo {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  exit(code: number): never;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Signals that arrived before the daemon ran, and how to stop holding them. */
export interface HeldSignals {
  held: readonly NodeJS.Signals[];
  release(): void;
}

/**
 * How long an exit waits for buffered log lines to reach a reader that is
 * reading, in ms. A stalled reader loses what is still buffered (at most
 * log.maxBufferedBytes): exiting is never held up longer than this.
 */
export const EXIT_LOG_FLUSH_MS = 2000;

/**
 * Under `npm start`, how soon after the signal that started the drain the same
 * signal is taken as npm's copy of it, in ms. npm passes SIGINT and SIGTERM on
 * to the server (package.json's start script execs it), and a terminal's Ctrl-C
 * reaches npm and the server both: without this, one Ctrl-C would be two
 * signals, and the second would cut the drain short.
 */
export const NPM_SIGNAL_COPY_MS = 500;

// npm sets npm_lifecycle_event for the scripts it runs.
function npmCopy(env: NodeJS.ProcessEnv, first: { signal: NodeJS.Signals; at: number } | undefined, signal: NodeJS.Signals): boolean {
  return env.npm_lifecycle_event !== undefined && first?.signal === signal && performance.now() - first.at < NPM_SIGNAL_COPY_MS;
}

export async function runDaemon(io: DaemonIo, early: HeldSignals = { held: [], release() {} }): Promise<void> {
  const load = () => loadConfig({ argv: io.argv, env: io.env });
  let request;
  try {
    request = load();
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

  // Socket activation: LISTEN_* are read and removed from the environment.
  const activation = listenFds(io.env, process.pid);
  if (activation.kind === 'error') {
    const err = socketActivation(undefined, activation.reason);
    io.stderr(`fugue-server: ${err.message}\n`);
    io.exit(err.exitCode);
  }
  const inheritedFd = activation.kind === 'fd' ? activation.fd : undefined;
  const app = new App({ config: request.config, version: VERSION, env: io.env, ...(inheritedFd !== undefined ? { inheritedFd } : {}) });
  const log = app.log;
  // The service manager (systemd Type=notify): readiness, reloads, the drain, the watchdog.
  // Loaded only under a service manager that set one of its variables; else every notification is a no-op.
  const managed = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'].some((key) => io.env[key] !== undefined);
  const notifier: Pick<Notifier, 'ready' | 'reloading' | 'stopping' | 'status' | 'extendTimeout' | 'startWatchdog' | 'stopWatchdog' | 'close'> = managed
    ? new (await import('../supervisor/notify.js')).Notifier({ env: io.env, log, unsetEnvironment: true })
    : { ready: () => false, reloading: () => false, stopping: () => false, status: () => false, extendTimeout: () => false, startWatchdog: () => false, stopWatchdog() {}, close() {} };
  const serving = () => `serving ${app.server.clientCount()} clients on ${app.server.socketPath}`;
  // Every exit goes through here: what was logged reaches a reading consumer first.
  let exiting = false;
  const exit = async (code: number): Promise<never> => {
    exiting = true;
    notifier.close();
    await app.flushLog(EXIT_LOG_FLUSH_MS);
    return io.exit(code);
  };

  // Node's own warnings would go to stderr, unbounded; they go to the log instead.
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn({ warning: { name: w.name, message: w.message, code: (w as NodeJS.ErrnoException).code } }, 'node.js warning'));

  let draining = false;
  let drainStart: { signal: NodeJS.Signals; at: number } | undefined;
  const drain = (signal: NodeJS.Signals) => {
    if (draining && npmCopy(io.env, drainStart, signal)) {
      log.info({ signal }, 'the same signal again, from npm (npm start passes SIGINT and SIGTERM on, and Ctrl-C reaches both): still draining');
      return;
    }
    if (draining) {
      log.warn({ signal }, 'second signal during drain: exiting now');
      app.destroy();
      void exit(128 + (constants.signals[signal] ?? 15));
      return;
    }
    draining = true;
    drainStart = { signal, at: performance.now() };
    log.info({ signal }, 'received shutdown signal, draining');
    tellDrain(`draining ${app.server.clientCount()} clients (${signal})`);
    app.close(`received ${signal}`).then(
      () => {
        log.info({}, 'fugue-server stopped');
        void exit(EXIT.OK);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        app.destroy();
        void exit(EXIT.SOFTWARE);
      },
    );
  };
  // A reload asked for while the server starts waits until it has started.
  let started = false;
  let reloadAfterStart: NodeJS.Signals | undefined;
  const reload = (signal: NodeJS.Signals) => {
    if (draining) {
      log.warn({ signal }, 'reload ignored: the server is shutting down');
      return;
    }
    if (!started) {
      reloadAfterStart = signal;
      return;
    }
    log.info({ signal }, 'received reload signal, re-reading the configuration');
    notifier.reloading('reloading the configuration');
    const outcome = app.reload(load);
    notifier.ready(outcome.ok ? `${serving()}; configuration reloaded` : `${serving()}; configuration reload refused (see the log)`);
  };
  // STOPPING=1, then, each second until the exit, what is left and more time
  // (the drain, the span flush, the log flush), so a long drain is not killed
  // by TimeoutStopSec.
  const tellDrain = (text: string) => {
    const left = () => app.server.drainRemainingMs + SPAN_FLUSH_MAX_MS + EXIT_LOG_FLUSH_MS + 1000;
    notifier.stopWatchdog();
    notifier.stopping(text);
    notifier.extendTimeout(app.config.shutdown.timeoutMs + SPAN_FLUSH_MAX_MS + EXIT_LOG_FLUSH_MS + 1000);
    setInterval(() => {
      notifier.status(`draining: ${app.server.clientCount()} clients left, ${Math.ceil(app.server.drainRemainingMs / 1000)} s to the deadline`);
      notifier.extendTimeout(left());
    }, 1000).unref();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    const action = SIGNAL_ACTIONS[signal];
    if (action === 'drain') drain(signal);
    else if (action === 'reload') reload(signal);
    else log.info({ signal, ...app.status() }, 'status');
  };
  for (const signal of MANAGED_SIGNALS) process.on(signal, onSignal);
  early.release();

  process.on('uncaughtException', (err) => {
    log.error({ err }, 'uncaught exception: exiting');
    app.destroy();
    void exit(EXIT.SOFTWARE);
  });
  // Last resort on any exit path the process controls: remove our socket (by inode).
  process.on('exit', () => app.server.removeSocket());

  log.info({ version: VERSION, node: process.version, socketPath: request.config.socket.path, configFiles: request.files }, 'starting fugue-server');
  // Node then ignores SIGUSR1 altogether: the status line too (docs/operations.md, "Signals").
  if (process.execArgv.includes('--disable-sigusr1') || /(^|\s)--disable-sigusr1(\s|$)/.test(io.env.NODE_OPTIONS ?? '')) {
    log.info({}, 'node runs with --disable-sigusr1: SIGUSR1 is ignored (no inspector, no status line); send SIGUSR2 for a status line');
  }
  // An upgrade without a gap: the server serving the path is found first (nothing changes when it cannot be).
  let predecessor: import('./takeover.js').Predecessor | undefined;
  let takeover: typeof import('./takeover.js') | undefined;
  try {
    if (request.takeover && inheritedFd === undefined) {
      takeover = await import('./takeover.js');
      predecessor = await takeover.findPredecessor(request.config.socket.path);
      if (predecessor === undefined) log.info({ socketPath: request.config.socket.path }, 'takeover: no server answers at the socket path; starting as usual');
    }
    await app.start({ takeover: predecessor !== undefined });
  } catch (err) {
    if (isFugueError(err)) {
      log.error({ code: err.code, ...err.details }, err.message);
      io.stderr(`fugue-server: ${err.message}\n`);
      return exit(err.exitCode);
    }
    log.error({ err }, 'failed to start');
    return exit(EXIT.SOFTWARE);
  }
  // Serving at the path now: the predecessor drains (its queued connections are served, then told).
  if (predecessor !== undefined && takeover !== undefined) {
    const told = takeover.releasePredecessor(predecessor);
    log.info({ predecessorPid: predecessor.pid }, told ? 'took over the socket path; told the predecessor to drain' : 'took over the socket path; the predecessor had already exited');
  }
  // A rolling restart whose predecessor never gave up the HTTP port: leave cleanly, exit 75.
  app.sidecarHandover?.catch((err: unknown) => {
    if (draining || exiting) return;
    log.error({ code: (err as { code?: string }).code }, `${(err as Error).message}; the predecessor did not release it within its drain deadline`);
    draining = true;
    void app.close('http port unavailable').finally(() => exit(isFugueError(err) ? err.exitCode : EXIT.TEMPFAIL));
  });
  notifier.ready(serving());
  notifier.startWatchdog();
  // What `systemctl status` shows: kept current while serving.
  let shown = '';
  setInterval(() => {
    if (draining || exiting) return;
    const text = serving();
    if (text !== shown) notifier.status((shown = text));
  }, 2000).unref();
  started = true;
  if (reloadAfterStart !== undefined) reload(reloadAfterStart);
  for (const signal of early.held) onSignal(signal);
}
