// FugueServer: accepts clients on its listening socket (listener.ts) up to the
// client limit in force, runs each connection's pump (connection.ts) with the
// dispatch step and the features' handlers, and drains on close().
// Lifecycle: idle -> starting -> listening -> draining -> closed (one way only).
// It reports what happens on the diagnostics channels (channels.ts) and never
// formats a log line.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { serverClosed } from '../errors.js';
import { publish } from './channels.js';
import { ClientSet } from './clients.js';
import type { ConnectionLimits } from './connection.js';
import { Dispatcher } from './dispatch.js';
import type { DrainEvent } from './events.js';
import { computeFdBudget, type FdBudget, type FdReserve } from './fd-budget.js';
import { FeatureHost } from './features.js';
import { CORE_HANDLERS, HandlerTable } from './handlers.js';
import { Handshake } from './handshake.js';
import { SocketListener } from './listener.js';
import { connectionLimits, type DrainResult, type FugueServerOptions, type LiveSettings, type ServerState } from './options.js';
import { busyFrame, drainingFrame } from './replies.js';
import { Timers } from './timeouts.js';
import { View, type Catalog, type ServerView } from './view.js';

/** How long a draining server keeps accepting its backlog (to answer it), in ms. */
const BACKLOG_GRACE_MS = 100;

/** The per-connection limits a reload may change (LiveSettings and ConnectionLimits share the names). */
const LIMIT_KEYS = ['maxFrameBytes', 'maxBufferedBytes', 'handshakeTimeoutMs', 'frameTimeoutMs', 'idleTimeoutMs'] as const;

export type { FugueServerOptions, LiveSettings, DrainResult, ServerState } from './options.js';

/**
 * The server core: binds the Unix socket safely (or serves one the service
 * manager passed), accepts clients up to the client limit in force, runs each
 * connection's pump, keeps the socket path healthy, and drains on close().
 * Owns node:net; reports on the diagnostics channels.
 */
export class FugueServer {
  readonly version: string;
  readonly #socketPath: string;
  /** What features and observers see of this server: also the `server` of its events. */
  readonly view: ServerView;
  /** How long a graceful drain waits, in ms (a reload may change it). */
  shutdownTimeoutMs: number;
  #maxClients: number;
  readonly #fdReserve: FdReserve;
  #budget: FdBudget | undefined;
  #socketCheckIntervalMs: number;
  readonly #timers = new Timers();
  readonly #limits: ConnectionLimits;
  readonly #listener: SocketListener;
  readonly #features: FeatureHost;
  readonly #clients: ClientSet;
  #state: ServerState = 'idle';
  #startedAt = 0;
  #closing: Promise<DrainResult> | undefined;
  #busyFrame: Buffer;
  readonly #drainingFrame = drainingFrame();
  #drainDeadline = 0;
  #drainStart: { t0: number; initial: number } | undefined;
  #drainSummarised = false;
  // The drain's reason, when a successor holds the path (a takeover): what is still queued is served.
  #handedOver: string | undefined;

  constructor(options: FugueServerOptions) {
    this.version = options.version;
    this.#socketPath = options.socketPath;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.#maxClients = options.maxClients ?? 1024;
    this.#fdReserve = options.fdReserve ?? { http: 0, exporter: 0 };
    this.#limits = connectionLimits(options);
    this.#socketCheckIntervalMs = options.socketCheckIntervalMs ?? 1000;
    this.#busyFrame = busyFrame(this.#maxClients);

    // The view first: features get it in their scope as they register.
    const table = new HandlerTable();
    for (const [type, handler] of CORE_HANDLERS) table.register(type, handler, 'core');
    let catalog: Catalog | undefined;
    let clients: ClientSet | undefined;
    const facts = { version: this.version, socketPath: this.#socketPath, uptimeMs: () => this.uptimeMs(), isDraining: () => this.#state === 'draining' };
    const view = new View(facts, () => clients as ClientSet, () => catalog as Catalog);
    this.view = view;
    const features = (this.#features = new FeatureHost(view, table, options.features ?? []));
    catalog = features.catalog(table);
    this.#clients = clients = new ClientSet(view, new Dispatcher(table, new Handshake(this.version), view), this.#limits, features);
    this.#listener = new SocketListener({
      socketPath: this.#socketPath,
      mode: options.socketMode ?? 0o600,
      inheritedFd: options.inheritedFd,
      view,
      handlers: {
        connection: (socket) => this.#accept(socket),
        acceptError: (error) => publish('acceptError', { server: view, error }),
        drop: () => publish('rejected', { server: view, reason: 'fd_limit', maxClients: this.effectiveMaxClients }),
      },
    });
  }

  get state(): ServerState {
    return this.#state;
  }

  /** The socket's path (socket-activated: where socket.path says the manager's socket is). */
  get socketPath(): string {
    return this.#socketPath;
  }

  /** True when serving a socket passed by the service manager (socket activation). */
  get activated(): boolean {
    return this.#listener.activated;
  }

  /** Clients served at once: limits.maxClients, lowered when the open-files limit leaves less room (the limit in force). */
  get effectiveMaxClients(): number {
    return this.#budget?.maxClients ?? this.#maxClients;
  }

  /** While draining: time left until the drain deadline, in ms; else 0. */
  get drainRemainingMs(): number {
    return this.#state === 'draining' ? Math.max(0, this.#drainDeadline - performance.now()) : 0;
  }

  /** False while the socket path does not hold this server's listening socket. */
  get socketHealthy(): boolean {
    return this.#listener.healthy;
  }

  /** Connected clients now. */
  clientCount(): number {
    return this.#clients.size;
  }

  uptimeMs(): number {
    return this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt;
  }

  /**
   * Bind and start accepting. With `takeover`, a live fugue-server at the
   * path is replaced without a gap (docs/operations.md, "Upgrades"); tell it
   * to drain once this resolves. Rejects with a FugueError (see
   * docs/errors.md), the path unchanged.
   */
  async start(options: { takeover?: boolean } = {}): Promise<void> {
    if (this.#state !== 'idle') throw serverClosed();
    this.#state = 'starting';
    try {
      await this.#listener.start(options.takeover === true);
    } catch (err) {
      this.#state = 'closed';
      throw err;
    }
    this.#applyBudget(computeFdBudget(this.#maxClients, this.#fdReserve));
    this.#startTimers();
    this.#startedAt = performance.now();
    this.#state = 'listening';
    publish('listening', { server: this.view, socketPath: this.socketPath, pid: process.pid, maxClients: this.effectiveMaxClients, openFilesLimit: this.#budget?.openFilesLimit, activated: this.activated, socketHealthy: this.socketHealthy });
    if (this.#closing !== undefined) await this.#closing; // close() called during start
  }

  #applyBudget(budget: FdBudget): void {
    this.#budget = budget;
    this.#listener.maxConnections = budget.maxConnections;
    this.#busyFrame = busyFrame(budget.maxClients);
    if (budget.maxClients < this.#maxClients) {
      publish('notice', { server: this.view, code: 'fd_budget_low', maxClients: this.#maxClients, effectiveMaxClients: budget.maxClients, openFilesLimit: budget.openFilesLimit, openNow: budget.openNow, reserved: budget.reserved });
    }
  }

  /**
   * Apply settings a configuration reload changed, without dropping a client:
   * limits hold for every connection from its next message or check on (a
   * lower client limit turns away new clients only, with `server_busy`), timers restart.
   */
  reconfigure(settings: LiveSettings): void {
    for (const key of LIMIT_KEYS) {
      const value = settings[key];
      if (value !== undefined) this.#limits[key] = value;
    }
    this.shutdownTimeoutMs = settings.shutdownTimeoutMs ?? this.shutdownTimeoutMs;
    this.#socketCheckIntervalMs = settings.socketCheckIntervalMs ?? this.#socketCheckIntervalMs;
    for (const conn of this.#clients.values()) conn.limitsChanged();
    if (settings.maxClients !== undefined && settings.maxClients !== this.#maxClients) {
      this.#maxClients = settings.maxClients;
      if (this.#budget !== undefined) {
        this.#applyBudget(computeFdBudget(this.#maxClients, this.#fdReserve, this.#budget.openFilesLimit, this.#budget.openNow));
        publish('clientLimit', { server: this.view, maxClients: this.effectiveMaxClients });
      }
    }
    if (this.#state === 'listening') {
      this.#startTimers();
    }
  }

  // The timeout sweep and the socket check, (re)started with the intervals in force.
  #startTimers(): void {
    this.#timers.start(this.#clients, this.#limits, () => void this.#listener.check(), this.#socketCheckIntervalMs);
  }

  #accept(socket: Socket): void {
    if (this.#state === 'draining' && this.#handedOver !== undefined && this.#clients.size < this.effectiveMaxClients) {
      // Queued on our socket before a successor took the path over: served,
      // then told to move on (not refused: the upgrade must not fail it).
      this.#clients.add(socket, this.#socketPath).notifyShutdown(this.#handedOver, Math.round(this.drainRemainingMs));
      return;
    }
    if (this.#state !== 'listening' || this.#clients.size >= this.effectiveMaxClients) {
      const listening = this.#state === 'listening';
      publish('rejected', { server: this.view, reason: listening ? 'server_busy' : 'draining', maxClients: this.effectiveMaxClients });
      ClientSet.refuse(socket, listening ? this.#busyFrame : this.#drainingFrame);
      return;
    }
    this.#clients.add(socket, this.#socketPath);
  }

  /**
   * Graceful shutdown: stop accepting (the socket file goes at once), send
   * `shutdown` to every client, wait up to shutdownTimeoutMs for them to leave,
   * then close the rest. Idempotent: every caller gets the same promise.
   */
  close(reason = 'server shutting down'): Promise<DrainResult> {
    this.#closing ??= this.#drain(reason);
    return this.#closing;
  }

  async #drain(reason: string): Promise<DrainResult> {
    if (this.#state === 'starting') {
      // Let start() finish binding so the socket can be removed by identity.
      await new Promise<void>((resolve) => {
        const check = () => (this.#state === 'starting' ? setImmediate(check) : resolve());
        check();
      });
    }
    const t0 = performance.now();
    if (this.#state !== 'listening') {
      this.#state = 'closed';
      await this.#features.close();
      return { durationMs: 0, left: 0, forced: 0 };
    }
    this.#state = 'draining';
    this.#drainDeadline = t0 + this.shutdownTimeoutMs;
    this.#timers.stop();
    const clients = this.#clients;
    const initial = clients.size;
    this.#drainStart = { t0, initial };
    if (!this.activated && !this.#listener.holdsPath()) this.#handedOver = reason;
    const event: DrainEvent = { server: this.view, clients: initial, timeoutMs: this.shutdownTimeoutMs };
    publish('drain', event);
    // Features speak before the `shutdown` notice.
    this.#features.draining(event);
    // The path is free for a successor from here on. Connections already in
    // the accept backlog still arrive for a moment: they are told we are
    // draining instead of being reset unseen. Socket-activated, stop at once:
    // the queue is the service manager's, and what waits in it belongs to the
    // next instance.
    const listenerClosed = this.#listener.stopAccepting(this.activated ? 0 : BACKLOG_GRACE_MS);
    await clients.drain(reason, this.shutdownTimeoutMs);
    await listenerClosed;
    this.#state = 'closed';
    const result = this.#drained(0);
    await this.#features.close();
    return result;
  }

  // The drain's summary, published once: at its end, or at a forced stop
  // during it, counting the clients that stop is about to cut as forced.
  #drained(cutNow: number): DrainResult {
    const start = this.#drainStart as { t0: number; initial: number };
    const forced = this.#clients.forced + cutNow;
    const result = { durationMs: performance.now() - start.t0, left: start.initial - forced, forced };
    if (!this.#drainSummarised) {
      this.#drainSummarised = true;
      publish('drained', { server: this.view, ...result });
    }
    return result;
  }

  /** Forced shutdown: cut every connection now and remove the socket. During a drain, its summary says so. */
  destroy(): void {
    this.#timers.stop();
    if (this.#state === 'draining') this.#drained(this.#clients.size);
    this.#listener.destroy();
    this.#clients.destroyAll();
    this.#state = 'closed';
    void this.#features.close();
  }

  /** Remove the socket file if it is still ours (never a socket-activated one). Safe to call on any exit path. */
  removeSocket(): boolean {
    return this.#listener.remove();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
