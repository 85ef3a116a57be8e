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
import { probeDrainingPeer } from './client/http-probe.js';
import { createObservability, type Observability, type ObservabilityOptions } from './observability/index.js';
import { resolveTracingSettings } from './observability/tracing.js';
import { clientsFeature } from './features/clients.js';
import { coreHandlers, type Feature } from './server/handlers.js';
import { FugueServer, type DrainResult, type LiveSettings } from './server/server.js';

/** Longest span flush at shutdown, in ms (part of a supervisor's stop timeout: docs/deployment.md). */
export const SPAN_FLUSH_MAX_MS = 5000;
/** Extra time a successor waits for a draining predecessor's HTTP port beyond its drain deadline, in ms. */
const HANDOVER_SLACK_MS = SPAN_FLUSH_MAX_MS + 2000;

/**
 * Keys a reload (SIGHUP) applies to the running server. Every other key needs
 * a restart: a reload that changes one logs it and keeps the running value.
 * docs/configuration.md marks each key the same way (a test keeps them in step).
 */
export const RELOADABLE_KEYS: ReadonlySet<string> = new Set([
  'log.level',
  'limits.maxClients',
  'limits.maxFrameBytes',
  'limits.maxBufferedBytes',
  'limits.handshakeTimeoutMs',
  'limits.frameTimeoutMs',
  'limits.idleTimeoutMs',
  'shutdown.timeoutMs',
  'socket.checkIntervalMs',
  'tracing.sampleRatio',
  'tracing.slowThresholdMs',
]);

/** What App needs: the configuration and version, and optional overrides of what observability creates. */
export interface AppOptions extends Omit<ObservabilityOptions, 'config' | 'version' | 'messageTypes'> {
  /** The validated configuration (loadConfig). */
  config: Config;
  /** Reported as `server_version`. */
  version: string;
  /** Features registered on top of the protocol's core types. Default: `[clientsFeature]` (`list_clients`). */
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

  constructor(options: AppOptions) {
    const { config, version } = options;
    this.#config = config;
    this.#env = options.env ?? process.env;
    // One handler table for the server and the metrics: its types are exported at 0 from the start.
    const handlers = (options.features ?? [clientsFeature]).reduce((table, f) => table.use(f), coreHandlers());
    this.observability = createObservability({ ...options, messageTypes: handlers.types() });
    const instr = this.observability.instrumentation;
    this.server = new FugueServer({
      handlers,
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
      instrumentation: instr,
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
          onReject: (reason) => instr.httpRejected(reason),
          onConnections: (delta) => instr.httpConnections(delta),
        })
      : undefined;
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

  async start(): Promise<void> {
    // The sidecar comes first so probes see 503 (not a refused connection) while the socket binds.
    if (this.sidecar) {
      try {
        this.#sidecarListening(await this.sidecar.listen());
      } catch (err) {
        const peer = isPortInUse(err) ? await probeDrainingPeer(this.#config.http.host, this.#config.http.port) : undefined;
        if (peer === undefined) {
          await this.observability.tracing.shutdown(1000);
          throw err;
        }
        const waitMs = peer.drainRemainingMs + HANDOVER_SLACK_MS;
        this.log.warn(
          { port: this.#config.http.port, predecessorPid: peer.pid, waitMs },
          'http port held by a draining fugue-server (rolling restart): serving the socket now, taking the port when it exits',
        );
        this.#handover = this.#takePort(err as FugueError, performance.now() + waitMs);
        this.#handover.catch(() => {}); // observed by whoever awaits sidecarHandover
      }
    }
    try {
      await this.server.start();
    } catch (err) {
      await this.sidecar?.close();
      await this.observability.tracing.shutdown(1000);
      throw err;
    }
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
      await this.observability.tracing.shutdown(Math.min(SPAN_FLUSH_MAX_MS, Math.max(500, left)));
      return result;
    })();
    return this.#closing;
  }

  /** Forced shutdown (second signal): cut everything, remove the socket. */
  destroy(): void {
    this.server.destroy();
    this.sidecar?.destroy();
    void this.observability.tracing.shutdown(200);
  }

  /**
   * Re-read the configuration with `load` (the same sources as at start) and
   * apply what can change live (RELOADABLE_KEYS) without dropping a client.
   * An invalid configuration changes nothing: the running one stays.
   */
  reload(load: () => { config: Config }): ReloadOutcome {
    const { log, metrics } = this.observability;
    let next: Config;
    try {
      next = load().config;
    } catch (err) {
      metrics.configReloads.inc({ result: 'failure' });
      const fields = isFugueError(err) ? { code: err.code, ...err.details } : { err };
      log.error(fields, `configuration reload refused, the running configuration stays: ${(err as Error).message}`);
      return { ok: false, error: err as Error };
    }
    const changed = changedKeys(this.#config, next);
    const applied: string[] = [];
    const restartRequired: string[] = [];
    const live: LiveSettings = {};
    for (const key of changed) {
      if (!RELOADABLE_KEYS.has(key) || (key === 'tracing.sampleRatio' && !this.#applySampleRatio(next))) {
        restartRequired.push(key);
        continue;
      }
      applied.push(key);
      const value = valueAt(next, key);
      if (key === 'log.level') log.level = next.log.level;
      else if (key === 'tracing.slowThresholdMs') this.observability.tracing.setSlowMs(next.tracing.slowThresholdMs);
      else if (key === 'shutdown.timeoutMs') live.shutdownTimeoutMs = value as number;
      else if (key === 'socket.checkIntervalMs') live.socketCheckIntervalMs = value as number;
      else if (key.startsWith('limits.')) (live as Record<string, number>)[key.slice('limits.'.length)] = value as number;
    }
    this.server.reconfigure(live);
    metrics.shutdownTimeout.set(this.server.shutdownTimeoutMs / 1000);
    this.#config = merge(this.#config, next, applied);
    metrics.configReloads.inc({ result: 'success' });
    metrics.configLastSuccess.set(Math.round(Date.now() / 1000));
    log.info({ applied, restartRequired }, applied.length === 0 && restartRequired.length === 0 ? 'configuration reloaded: nothing changed' : 'configuration reloaded');
    if (restartRequired.length > 0) {
      log.warn({ keys: restartRequired }, 'configuration reload: these keys only take effect after a restart and keep their running values');
    }
    return { ok: true, applied, restartRequired };
  }

  #applySampleRatio(next: Config): boolean {
    const ratio = resolveTracingSettings(next.tracing, this.#env).sampleRatio;
    return ratio !== undefined && this.observability.tracing.setSampleRatio(ratio);
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

function valueAt(config: Config, key: string): unknown {
  const [group, leaf] = key.split('.') as [string, string];
  return (config as unknown as Record<string, Record<string, unknown>>)[group]?.[leaf];
}

/** Dotted keys whose values differ. */
function changedKeys(a: Config, b: Config): string[] {
  const out: string[] = [];
  for (const [group, leaves] of Object.entries(b)) {
    for (const [leaf, value] of Object.entries(leaves as Record<string, unknown>)) {
      if (JSON.stringify(valueAt(a, `${group}.${leaf}`)) !== JSON.stringify(value)) out.push(`${group}.${leaf}`);
    }
  }
  return out;
}

/** `base` with the `keys` taken from `next`, frozen like every Config. */
function merge(base: Config, next: Config, keys: string[]): Config {
  const copy = JSON.parse(JSON.stringify(base)) as Record<string, Record<string, unknown>>;
  for (const key of keys) {
    const [group, leaf] = key.split('.') as [string, string];
    (copy[group] as Record<string, unknown>)[leaf] = valueAt(next, key);
  }
  for (const v of Object.values(copy)) Object.freeze(v);
  return Object.freeze(copy) as unknown as Config;
}
