// The composition root: config -> observability -> server -> HTTP sidecar.
// start() brings them up in that order; close() takes them down in reverse:
// readiness false -> stop accepting -> drain -> sidecar -> flush spans.

import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { HttpSidecar, type Readiness } from './http/sidecar.js';
import { createObservability, type Observability, type ObservabilityOptions } from './observability/index.js';
import { coreHandlers } from './server/handlers.js';
import { FugueServer, type DrainResult } from './server/server.js';

export interface AppOptions extends Omit<ObservabilityOptions, 'config' | 'version' | 'messageTypes'> {
  config: Config;
  version: string;
}

export class App {
  readonly config: Config;
  readonly observability: Observability;
  readonly server: FugueServer;
  readonly sidecar: HttpSidecar | undefined;
  #closing: Promise<DrainResult> | undefined;

  constructor(options: AppOptions) {
    const { config, version } = options;
    this.config = config;
    // One handler table for the server and the metrics: its types are exported at 0 from the start.
    const handlers = coreHandlers();
    this.observability = createObservability({ ...options, messageTypes: handlers.types() });
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
      instrumentation: this.observability.instrumentation,
    });
    this.sidecar = config.http.enabled
      ? new HttpSidecar({
          host: config.http.host,
          port: config.http.port,
          metrics: (om) => this.observability.metrics.render(om),
          readiness: () => this.readiness(),
        })
      : undefined;
  }

  get log() {
    return this.observability.log;
  }

  /** Ready = the socket is accepting and not draining. */
  readiness(): Readiness {
    const state = this.server.state;
    if (state === 'listening' && !this.server.socketHealthy) return { ready: false, state, reason: 'socket file missing; re-creating it' };
    if (state === 'listening') return { ready: true, state };
    const reason = state === 'draining' ? 'graceful shutdown in progress' : state === 'closed' ? 'server closed' : 'socket not bound yet';
    return { ready: false, state, reason };
  }

  /** The sidecar's bound address (useful with http.port 0). */
  get httpAddress(): AddressInfo | undefined {
    return this.sidecar?.address;
  }

  async start(): Promise<void> {
    // The sidecar comes first so probes see 503 (not a refused connection) while the socket binds.
    if (this.sidecar) {
      const addr = await this.sidecar.listen();
      this.log.info({ host: addr.address, port: addr.port }, 'http sidecar listening');
    }
    try {
      await this.server.start();
    } catch (err) {
      await this.sidecar?.close();
      await this.observability.tracing.shutdown(1000);
      throw err;
    }
  }

  /** Graceful shutdown; idempotent. */
  close(reason = 'server shutting down'): Promise<DrainResult> {
    this.#closing ??= (async () => {
      const t0 = performance.now();
      const result = await this.server.close(reason);
      await this.sidecar?.close();
      const left = this.config.shutdown.timeoutMs - (performance.now() - t0);
      await this.observability.tracing.shutdown(Math.min(5000, Math.max(500, left)));
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
}
