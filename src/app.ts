// The composition root: config -> server (with its features) -> observability
// -> HTTP sidecar. start() brings the socket up first, so that the first
// client is served while the rest loads (pino, prom-client, the OpenTelemetry
// SDK when spans are exported, node:http): what happens meanwhile is kept and
// handed to observability when it is attached (observability/early.ts).
// close() takes them down in reverse: readiness false -> stop accepting ->
// drain -> sidecar -> flush spans. reload() applies a new configuration.

import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Tracer } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';
import type { Config } from './config/schema.js';
import type { HttpSidecar, Readiness } from './http/sidecar.js';
import type { Observability } from './observability/index.js';
import { loadObservability } from './observability/loader.js';
import { EarlyEvents, type EarlyLogger } from './observability/early.js';
import { exporterSockets, resolveTracingSettings } from './observability/tracing-settings.js';
import { clientsFeature } from './features/clients.js';
import { eventsFeature } from './features/events.js';
import { applyReload, changedKeys, mergeKeys } from './reload.js';
import { publish } from './server/channels.js';
import type { Feature } from './server/features.js';
import { FugueServer, type DrainResult } from './server/server.js';

export { RELOADABLE_KEYS } from './reload.js';

/** The features an App registers unless told otherwise: `list_clients` and `events.*`. Add one with `features: [...DEFAULT_FEATURES, mine]`. */
export const DEFAULT_FEATURES: readonly Feature[] = Object.freeze([clientsFeature, eventsFeature]);

/** Longest span flush at shutdown, in ms (part of a supervisor's stop timeout: docs/deployment.md). */
export const SPAN_FLUSH_MAX_MS = 5000;

/** What App needs: the configuration and version, and optional overrides of what observability creates. */
export interface AppOptions {
  /** The validated configuration (loadConfig). */
  config: Config;
  /** Reported as `server_version` and in fugue_build_info. */
  version: string;
  /** Where OTEL_* variables are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Log destination. Default: stdout, through a LogSink bounded by log.maxBufferedBytes. */
  logDestination?: DestinationStream;
  /** Use this tracer instead of starting the OpenTelemetry SDK (tests: an in-memory provider). Default: the SDK, when an exporter is configured. */
  tracer?: Tracer;
  /** Collect prom-client default metrics. Default: true. */
  defaultMetrics?: boolean;
  /** Features registered on top of the protocol's own types. Default: DEFAULT_FEATURES (`list_clients`, `events.*`). */
  features?: readonly Feature[];
  /** A listening socket passed by the service manager, served instead of binding socket.path (see FugueServerOptions.inheritedFd). Default: none. */
  inheritedFd?: number;
}

/** What a reload did. */
export type ReloadOutcome =
  | { ok: true; applied: string[]; restartRequired: string[] }
  | { ok: false; error: Error };

/**
 * The composition root of one fugue-server: configuration -> server ->
 * observability -> HTTP sidecar, started in that order and closed in
 * reverse. The CLI runs one; tests and embedders may run several in one
 * process (each has its own metrics registry).
 */
export class App {
  #config: Config;
  readonly #options: AppOptions;
  readonly server: FugueServer;
  #observability: Observability | undefined;
  #observing: Promise<Observability> | undefined;
  #sidecar: HttpSidecar | undefined;
  // Until observability is attached: the server's events and the lines logged, in order.
  readonly #early: EarlyEvents;
  #env: NodeJS.ProcessEnv;
  #closing: Promise<DrainResult> | undefined;
  #handover: Promise<void> | undefined;
  #unobserve: () => void = () => {};

  constructor(options: AppOptions) {
    const { config, version } = options;
    this.#options = options;
    this.#config = config;
    this.#env = options.env ?? process.env;
    const tracing = resolveTracingSettings(config.tracing, this.#env);
    this.server = new FugueServer({
      features: options.features ?? DEFAULT_FEATURES,
      socketPath: config.socket.path,
      socketMode: Number.parseInt(config.socket.mode, 8),
      version,
      shutdownTimeoutMs: config.shutdown.timeoutMs,
      maxClients: config.limits.maxClients,
      maxFrameBytes: config.limits.maxFrameBytes,
      maxBufferedBytes: config.limits.maxBufferedBytes,
      handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
      idleTimeoutMs: config.limits.idleTimeoutMs,
      frameTimeoutMs: config.limits.frameTimeoutMs,
      socketCheckIntervalMs: config.socket.checkIntervalMs,
      ...(options.inheritedFd !== undefined ? { inheritedFd: options.inheritedFd } : {}),
      fdReserve: {
        // + 2: the sidecar's spare place (see http/sidecar.ts) and its listening
        // socket, opened after the budget is read
        http: config.http.enabled ? config.http.maxConnections + 2 : 0,
        exporter: options.tracer === undefined ? exporterSockets(tracing) : 0,
      },
    });
    this.#early = new EarlyEvents(this.server.view);
  }

  /** The configuration in force (a reload replaces it). */
  get config(): Config {
    return this.#config;
  }

  /** Where the App and the CLI log: lines before observability is up are kept and written once it is. */
  get log(): EarlyLogger {
    return this.#early;
  }

  /** Logger, metrics and tracing: there once start() has resolved (or failed). */
  get observability(): Observability {
    if (this.#observability === undefined) throw new Error('the App has no observability before start() has resolved');
    return this.#observability;
  }

  /** The HTTP sidecar, once start() has resolved (undefined when http.enabled is false). */
  get sidecar(): HttpSidecar | undefined {
    return this.#sidecar;
  }

  /** Ready = the socket path holds this server's listening socket, and it is not draining. */
  readiness(): Readiness {
    const state = this.server.state;
    if (state === 'listening' && !this.server.socketHealthy) return { ready: false, state, reason: 'socket file missing or replaced, or not the one served' };
    if (state === 'listening') return { ready: true, state };
    if (state === 'draining') return { ready: false, state, reason: 'graceful shutdown in progress', drainRemainingMs: Math.round(this.server.drainRemainingMs) };
    return { ready: false, state, reason: state === 'closed' ? 'server closed' : 'socket not bound yet' };
  }

  /** The sidecar's bound address (useful with http.port 0). */
  get httpAddress(): AddressInfo | undefined {
    return this.#sidecar?.address;
  }

  /**
   * Settles once the sidecar holds its port, when start() found it held by a
   * predecessor (a rolling restart, a takeover); rejects with
   * FUGUE_ERR_HTTP_LISTEN if the predecessor never released it. Undefined when
   * start() bound the port itself.
   */
  get sidecarHandover(): Promise<void> | undefined {
    return this.#handover;
  }

  /**
   * Start the server (clients are served from here on), then observability,
   * then the sidecar. With `takeover`, a fugue-server serving the socket path
   * is replaced without a gap (FugueServer.start): the caller tells it to
   * drain once this resolves, and its HTTP port is taken over when it exits.
   * Rejects with a FugueError; observability is there either way, so that
   * what was logged reaches the log.
   */
  async start(options: { takeover?: boolean } = {}): Promise<void> {
    const takeover = options.takeover === true;
    // A takeover changes the socket path: what could fail later is checked before.
    if (takeover) await (await import('./sidecar-start.js')).checkPortForTakeover(this.#config);
    let failure: unknown;
    await this.server.start({ takeover }).catch((err: unknown) => {
      failure = err;
    });
    await this.#observe();
    // Not when a stop came meanwhile (a signal, a forced stop).
    if (failure === undefined && this.server.state === 'listening') {
      try {
        await this.#startSidecar(takeover);
      } catch (err) {
        failure = err;
        await this.server.close('http sidecar unavailable');
      }
    }
    if (failure !== undefined) {
      await this.#stopObserving(1000);
      throw failure;
    }
  }

  // Load observability and hand it what happened so far (events, log lines). Once.
  #observe(): Promise<Observability> {
    this.#observing ??= (async () => {
      // The options observability takes (logDestination, tracer, defaultMetrics), the configuration in force.
      const obs = await loadObservability({ ...this.#options, config: this.#config, env: this.#env });
      this.#observability = obs;
      this.#unobserve = obs.observe(this.server.view, this.#early.take(obs.log));
      return obs;
    })();
    return this.#observing;
  }

  async #startSidecar(takeover: boolean): Promise<void> {
    if (!this.#config.http.enabled) return;
    const obs = this.observability;
    const { startSidecar } = await import('./sidecar-start.js');
    const started = await startSidecar(
      this.#config,
      {
        metrics: (om) => obs.metrics.render(om),
        readiness: () => this.readiness(),
        onReject: (reason) => obs.httpRejected(reason),
        onConnections: (delta) => obs.httpConnections(delta),
      },
      takeover,
      this.#early,
      () => this.#closing !== undefined,
    );
    this.#sidecar = started.sidecar;
    this.#handover = started.handover;
  }

  // Last: observers see the server's final events (the drain summary) first.
  async #stopObserving(flushMs: number): Promise<void> {
    this.#unobserve();
    await this.#observability?.tracing.shutdown(flushMs);
  }

  /** Graceful shutdown; idempotent. Observability is there when it resolves (what was logged can be flushed). */
  close(reason = 'server shutting down'): Promise<DrainResult> {
    this.#closing ??= (async () => {
      const t0 = performance.now();
      const result = await this.server.close(reason);
      await this.#sidecar?.close();
      await this.#observe();
      const left = this.#config.shutdown.timeoutMs - (performance.now() - t0);
      await this.#stopObserving(Math.min(SPAN_FLUSH_MAX_MS, Math.max(500, left)));
      return result;
    })();
    return this.#closing;
  }

  /**
   * Write what was logged before an exit: to a reader that is reading, within
   * `timeoutMs` (see LogSink.flush). Lines kept from before observability
   * was up are written first, once it is (if it is loading, it is waited for
   * within the same bound).
   */
  async flushLog(timeoutMs: number): Promise<void> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const obs = this.#observability ?? (await Promise.race([this.#observe(), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)))]));
    clearTimeout(timer);
    await obs?.logSink?.flush(Math.max(0, timeoutMs - (performance.now() - t0)));
  }

  /** Forced shutdown (second signal): cut everything, remove the socket. */
  destroy(): void {
    this.server.destroy();
    this.#sidecar?.destroy();
    // Observers stay: the forced drain's last closes and its summary are still reported.
    void this.#observability?.tracing.shutdown(200);
  }

  /**
   * Re-read the configuration with `load` (the same sources as at start) and
   * apply what can change live (RELOADABLE_KEYS) without dropping a client.
   * An invalid configuration changes nothing: the running one stays. Call it
   * once start() has resolved.
   */
  reload(load: () => { config: Config }): ReloadOutcome {
    const server = this.server.view;
    let next: Config;
    try {
      next = load().config;
    } catch (err) {
      publish('reload', { server, ok: false, applied: [], restartRequired: [], error: err as Error });
      return { ok: false, error: err as Error };
    }
    const { applied, restartRequired } = applyReload(next, changedKeys(this.#config, next), { server: this.server, observability: this.observability, env: this.#env });
    this.#config = mergeKeys(this.#config, next, applied);
    publish('reload', { server, ok: true, applied, restartRequired, error: undefined });
    return { ok: true, applied, restartRequired };
  }

  /** One line of state for a status signal or fuguectl. */
  status(): Record<string, unknown> {
    const r = this.readiness();
    const sink = this.#observability?.logSink;
    return {
      state: this.server.state,
      ready: r.ready,
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      clients: this.server.clientCount(),
      maxClients: this.server.effectiveMaxClients,
      uptimeMs: Math.round(this.server.uptimeMs()),
      socketPath: this.server.socketPath,
      logLevel: this.#config.log.level,
      ...(sink !== undefined ? { log: sink.stats } : {}),
    };
  }
}
