// The composition root: config -> observability -> server -> HTTP sidecar.
// start() brings them up in that order; close() takes them down in reverse:
// readiness false -> stop accepting -> drain -> sidecar -> flush spans.
// reload() applies a new configuration to the running parts.

import { setTimeout as delay } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { FugueError, isFugueError } from './errors.js';
import { HttpSidecar, type Readiness } from './http/sidecar.js';
import { probePeer } from './client/http-probe.js';
import { createObservability, type Observability, type ObservabilityOptions } from './observability/index.js';
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
/** Extra time a successor waits for a draining predecessor's HTTP port beyond its drain deadline, in ms. */
const HANDOVER_SLACK_MS = SPAN_FLUSH_MAX_MS + 2000;

/** What App needs: the configuration and version, and optional overrides of what observability creates. */
export interface AppOptions extends Omit<ObservabilityOptions, 'config' | 'version'> {
  /** The validated configuration (loadConfig). */
  config: Config;
  /** Reported as `server_version`. */
  version: string;
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
 * The composition root of one fugue-server: configuration -> observability ->
 * server -> HTTP sidecar, started in that order and closed in reverse. The
 * CLI runs one; tests and embedders may run several in one process (each has
 * its own metrics registry).
 */
export class App {
  #config: Config;
  readonly observability: Observability;
  readonly server: FugueServer;
  readonly sidecar: HttpSidecar | undefined;
  #env: NodeJS.ProcessEnv;
  #closing: Promise<DrainResult> | undefined;
  #handover: Promise<void> | undefined;
  readonly #unobserve: () => void;

  constructor(options: AppOptions) {
    const { config, version } = options;
    this.#config = config;
    this.#env = options.env ?? process.env;
    this.observability = createObservability(options);
    const obs = this.observability;
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
        // socket, opened after the budget is read when a handover waits for the port
        http: config.http.enabled ? config.http.maxConnections + 2 : 0,
        exporter: this.observability.tracing.exporterSockets,
      },
    });
    this.sidecar = config.http.enabled
      ? new HttpSidecar({
          host: config.http.host,
          port: config.http.port,
          maxConnections: config.http.maxConnections,
          keepAliveTimeoutMs: config.http.keepAliveTimeoutMs,
          headersTimeoutMs: config.http.headersTimeoutMs,
          metrics: (om) => this.observability.metrics.render(om),
          readiness: () => this.readiness(),
          onReject: (reason) => obs.httpRejected(reason),
          onConnections: (delta) => obs.httpConnections(delta),
        })
      : undefined;
    // Spans, metrics and logs subscribe to this server's events before it starts.
    this.#unobserve = obs.observe(this.server.view);
  }

  /** The configuration in force (a reload replaces it). */
  get config(): Config {
    return this.#config;
  }

  get log() {
    return this.observability.log;
  }

  /** Ready = the socket path holds this server's listening socket, and it is not draining. */
  readiness(): Readiness {
    const state = this.server.state;
    if (state === 'listening' && !this.server.socketHealthy) return { ready: false, state, reason: 'socket file missing or replaced; re-creating it when the path is free' };
    if (state === 'listening') return { ready: true, state };
    if (state === 'draining') return { ready: false, state, reason: 'graceful shutdown in progress', drainRemainingMs: Math.round(this.server.drainRemainingMs) };
    return { ready: false, state, reason: state === 'closed' ? 'server closed' : 'socket not bound yet' };
  }

  /** The sidecar's bound address (useful with http.port 0). */
  get httpAddress(): AddressInfo | undefined {
    return this.sidecar?.address;
  }

  /**
   * Settles once the sidecar holds its port, when start() found it held by a
   * draining predecessor (a rolling restart); rejects with
   * FUGUE_ERR_HTTP_LISTEN if the predecessor never released it. Undefined when
   * start() bound the port itself.
   */
  get sidecarHandover(): Promise<void> | undefined {
    return this.#handover;
  }

  /**
   * Start the sidecar, then the server. With `takeover`, a fugue-server
   * serving the socket path is replaced without a gap (FugueServer.start):
   * the caller tells it to drain once this resolves, and the HTTP port is
   * taken over when it exits.
   */
  async start(options: { takeover?: boolean } = {}): Promise<void> {
    const takeover = options.takeover === true;
    // The sidecar comes first so probes see 503 (not a refused connection) while the socket binds.
    if (this.sidecar) {
      try {
        this.#sidecarListening(await this.sidecar.listen());
      } catch (err) {
        const peer = isPortInUse(err) ? await probePeer(this.#config.http.host, this.#config.http.port) : undefined;
        // A draining predecessor (a rolling restart), or the one this takeover replaces.
        if (peer === undefined || (peer.state !== 'draining' && !(takeover && peer.state === 'listening'))) {
          await this.#stopObserving(1000);
          throw err;
        }
        const waitMs = (peer.state === 'draining' ? peer.drainRemainingMs : this.#config.shutdown.timeoutMs) + HANDOVER_SLACK_MS;
        this.log.warn(
          { port: this.#config.http.port, predecessorPid: peer.pid, waitMs },
          `http port held by a ${peer.state} fugue-server (${peer.state === 'draining' ? 'rolling restart' : 'takeover'}): serving the socket now, taking the port when it exits`,
        );
        this.#handover = this.#takePort(err as FugueError, performance.now() + waitMs);
        this.#handover.catch(() => {}); // observed by whoever awaits sidecarHandover
      }
    }
    try {
      await this.server.start({ takeover });
    } catch (err) {
      await this.sidecar?.close();
      await this.#stopObserving(1000);
      throw err;
    }
  }

  // Last: observers see the server's final events (the drain summary) first.
  async #stopObserving(flushMs: number): Promise<void> {
    this.#unobserve();
    await this.observability.tracing.shutdown(flushMs);
  }

  #sidecarListening(addr: AddressInfo): void {
    this.log.info({ host: addr.address, port: addr.port }, 'http sidecar listening');
  }

  // Retry the port until the predecessor lets go of it, or its deadline passes.
  async #takePort(firstError: FugueError, deadline: number): Promise<void> {
    const sidecar = this.sidecar as HttpSidecar;
    let last = firstError;
    while (performance.now() < deadline && this.#closing === undefined) {
      await delay(100);
      try {
        this.#sidecarListening(await sidecar.listen());
        return;
      } catch (err) {
        if (!isPortInUse(err)) throw err;
        last = err as FugueError;
      }
    }
    if (this.#closing !== undefined) return;
    throw last;
  }

  /** Graceful shutdown; idempotent. */
  close(reason = 'server shutting down'): Promise<DrainResult> {
    this.#closing ??= (async () => {
      const t0 = performance.now();
      const result = await this.server.close(reason);
      await this.sidecar?.close();
      const left = this.#config.shutdown.timeoutMs - (performance.now() - t0);
      await this.#stopObserving(Math.min(SPAN_FLUSH_MAX_MS, Math.max(500, left)));
      return result;
    })();
    return this.#closing;
  }

  /** Forced shutdown (second signal): cut everything, remove the socket. */
  destroy(): void {
    this.server.destroy();
    this.sidecar?.destroy();
    // Observers stay: the forced drain's last closes and its summary are still reported.
    void this.observability.tracing.shutdown(200);
  }

  /**
   * Re-read the configuration with `load` (the same sources as at start) and
   * apply what can change live (RELOADABLE_KEYS) without dropping a client.
   * An invalid configuration changes nothing: the running one stays.
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
    return {
      state: this.server.state,
      ready: r.ready,
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      clients: this.server.clientCount(),
      maxClients: this.server.effectiveMaxClients,
      uptimeMs: Math.round(this.server.uptimeMs()),
      socketPath: this.server.socketPath,
      logLevel: this.#config.log.level,
      ...(this.observability.logSink !== undefined ? { log: this.observability.logSink.stats } : {}),
    };
  }
}

function isPortInUse(err: unknown): boolean {
  return isFugueError(err) && err.code === 'FUGUE_ERR_HTTP_LISTEN' && err.details.errno === 'EADDRINUSE';
}

