// FugueServer: accepts clients on its listening socket (listener.ts) up to the
// client limit in force, runs each connection's pump (connection.ts) with the
// dispatch step and the features' handlers, and drains on close().
// Lifecycle: idle -> starting -> listening -> draining -> closed (one way only).
// It reports what happens on the diagnostics channels (channels.ts) and never
// formats a log line.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { serverClosed } from '../errors.js';
import { DEFAULT_MAX_FRAME_BYTES, ERROR_CODES } from '../protocol/index.js';
import { channels, publish } from './channels.js';
import { Client } from './client.js';
import { Connection, type ConnectionHost, type ConnectionLimits } from './connection.js';
import { Dispatcher } from './dispatch.js';
import type { DrainEvent } from './events.js';
import { computeFdBudget, type FdBudget, type FdReserve } from './fd-budget.js';
import { FeatureHost, type Feature } from './features.js';
import { CORE_HANDLERS, CORE_SENT_TYPES, HandlerTable } from './handlers.js';
import { Handshake } from './handshake.js';
import { SocketListener } from './listener.js';
import { ClientRegistry } from './registry.js';
import { busyFrame, drainingFrame } from './replies.js';
import { sweep, sweepIntervalMs } from './timeouts.js';
import { View, type Catalog, type ServerView, type ViewSource } from './view.js';

/** How long a draining server keeps accepting its backlog (to answer it), in ms. */
const BACKLOG_GRACE_MS = 100;

/** Where a FugueServer is in its life: idle -> starting -> listening -> draining -> closed, one way only. */
export type ServerState = 'idle' | 'starting' | 'listening' | 'draining' | 'closed';

/** What a FugueServer serves and how; every limit has the default of its config key (docs/configuration.md). */
export interface FugueServerOptions {
  /** Absolute path of the Unix socket. */
  socketPath: string;
  /** Permission bits of the socket file. Default: 0o600. */
  socketMode?: number;
  /** Reported as `server_version`. */
  version: string;
  /** Features registered on top of the protocol's own types, in this order. Default: none. */
  features?: readonly Feature[];
  /** How long a graceful drain waits for clients to leave, in ms. Default: 10000. */
  shutdownTimeoutMs?: number;
  /** Connections served at once; more get `server_busy`. Default: 1024. */
  maxClients?: number;
  /** Largest frame payload accepted, in bytes. Default: 16777216. */
  maxFrameBytes?: number;
  /** Unsent reply bytes a client may let pile up before it is disconnected. Default: 33554432. */
  maxBufferedBytes?: number;
  /** Time allowed from accept to `connect`, in ms; 0 = none. Default: 10000. */
  handshakeTimeoutMs?: number;
  /** Close a connection with no traffic for this long, in ms; 0 = never. Default: 0. */
  idleTimeoutMs?: number;
  /** A frame must be complete this long after its first byte, in ms; 0 = no limit. Default: 30000. */
  frameTimeoutMs?: number;
  /** How often to check that the socket file is still ours, in ms; 0 = never. Default: 1000. */
  socketCheckIntervalMs?: number;
  /** Descriptors other consumers in this process may hold (see fd-budget.ts). Default: none. */
  fdReserve?: FdReserve;
  /**
   * A listening AF_UNIX stream socket passed by the service manager (systemd
   * socket activation, supervisor/listen-fds.ts): served instead of binding
   * `socketPath`. The manager owns the socket file: no directory checks, no
   * probe, no instance lock, never an unlink, and a drain leaves queued
   * connections to the next instance. Default: none (bind `socketPath`).
   */
  inheritedFd?: number;
}

/** What a configuration reload may change while the server runs (FugueServerOptions documents each). */
export type LiveSettings = Pick<
  FugueServerOptions,
  'shutdownTimeoutMs' | 'maxClients' | 'maxFrameBytes' | 'maxBufferedBytes' | 'handshakeTimeoutMs' | 'idleTimeoutMs' | 'frameTimeoutMs' | 'socketCheckIntervalMs'
>;

/** How a graceful drain ended. */
export interface DrainResult {
  /** From the start of the drain to its end, in ms. */
  durationMs: number;
  /** Clients that left by themselves during the drain. */
  left: number;
  /** Clients still connected at the deadline (or at a forced stop), closed by the server. */
  forced: number;
}

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
  #timers: NodeJS.Timeout[] = [];
  readonly #limits: ConnectionLimits;
  readonly #listener: SocketListener;
  readonly #features: FeatureHost;
  readonly #host: ConnectionHost;
  #state: ServerState = 'idle';
  readonly #registry = new ClientRegistry<Connection>();
  #startedAt = 0;
  #closing: Promise<DrainResult> | undefined;
  #busyFrame: Buffer;
  readonly #drainingFrame = drainingFrame();
  #onEmpty: (() => void) | undefined;
  #drainDeadline = 0;
  #forced = 0;
  // Traffic of closed connections (live ones are summed on demand).
  #closedBytesIn = 0;
  #closedBytesOut = 0;

  constructor(options: FugueServerOptions) {
    this.version = options.version;
    this.#socketPath = options.socketPath;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.#maxClients = options.maxClients ?? 1024;
    this.#fdReserve = options.fdReserve ?? { http: 0, exporter: 0 };
    this.#limits = {
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxBufferedBytes: options.maxBufferedBytes ?? 32 * 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      frameTimeoutMs: options.frameTimeoutMs ?? 30_000,
    };
    this.#socketCheckIntervalMs = options.socketCheckIntervalMs ?? 1000;
    this.#busyFrame = busyFrame(this.#maxClients);

    const table = new HandlerTable();
    for (const [type, handler] of CORE_HANDLERS) table.register(type, handler, 'core');
    let catalog: Catalog | undefined;
    const view = new View(this.#viewSource(() => catalog as Catalog));
    this.view = view;
    this.#features = new FeatureHost(view, table, options.features ?? []);
    const features = this.#features;
    catalog = Object.freeze({
      messageTypes: Object.freeze(table.types()),
      sentTypes: Object.freeze([...new Set([...CORE_SENT_TYPES, ...features.sentTypes])]),
      errorCodes: Object.freeze([...new Set([...ERROR_CODES, ...features.errorCodes])]),
      streams: Object.freeze([...new Set(features.streams)]),
    });
    const dispatcher = new Dispatcher(table, new Handshake(this.version), view);
    this.#host = this.#connectionHost(dispatcher);
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

  /** limits.maxClients as configured; see `effectiveMaxClients` for the one in force. */
  get maxClients(): number {
    return this.#maxClients;
  }

  /** Clients served at once: limits.maxClients, lowered when the open-files limit leaves less room. */
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
    return this.#registry.size;
  }

  uptimeMs(): number {
    return this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt;
  }

  /** Bind and start accepting. Rejects with a FugueError (see docs/errors.md). */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw serverClosed();
    this.#state = 'starting';
    try {
      await this.#listener.start();
    } catch (err) {
      this.#state = 'closed';
      throw err;
    }
    this.#applyBudget(computeFdBudget(this.#maxClients, this.#fdReserve));
    this.#startTimers();
    this.#startedAt = performance.now();
    this.#state = 'listening';
    publish('listening', { server: this.view, socketPath: this.socketPath, pid: process.pid, maxClients: this.effectiveMaxClients, openFilesLimit: this.#budget?.openFilesLimit, activated: this.activated });
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
    const limits = this.#limits;
    if (settings.shutdownTimeoutMs !== undefined) this.shutdownTimeoutMs = settings.shutdownTimeoutMs;
    if (settings.maxFrameBytes !== undefined) limits.maxFrameBytes = settings.maxFrameBytes;
    if (settings.maxBufferedBytes !== undefined) limits.maxBufferedBytes = settings.maxBufferedBytes;
    if (settings.handshakeTimeoutMs !== undefined) limits.handshakeTimeoutMs = settings.handshakeTimeoutMs;
    if (settings.frameTimeoutMs !== undefined) limits.frameTimeoutMs = settings.frameTimeoutMs;
    if (settings.idleTimeoutMs !== undefined) limits.idleTimeoutMs = settings.idleTimeoutMs;
    if (settings.socketCheckIntervalMs !== undefined) this.#socketCheckIntervalMs = settings.socketCheckIntervalMs;
    for (const conn of this.#registry.values()) conn.limitsChanged();
    if (settings.maxClients !== undefined && settings.maxClients !== this.#maxClients) {
      this.#maxClients = settings.maxClients;
      if (this.#budget !== undefined) {
        this.#applyBudget(computeFdBudget(this.#maxClients, this.#fdReserve, this.#budget.openFilesLimit, this.#budget.openNow));
        publish('clientLimit', { server: this.view, maxClients: this.effectiveMaxClients });
      }
    }
    if (this.#state === 'listening') {
      this.#stopTimers();
      this.#startTimers();
    }
  }

  #startTimers(): void {
    const every = sweepIntervalMs(this.#limits);
    if (every !== undefined) this.#timers.push(setInterval(() => sweep(this.#registry.values(), this.#limits), every).unref());
    if (this.#socketCheckIntervalMs > 0) {
      this.#timers.push(setInterval(() => void this.#listener.check(), this.#socketCheckIntervalMs).unref());
    }
  }

  #stopTimers(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  #accept(socket: Socket): void {
    if (this.#state !== 'listening' || this.#registry.size >= this.effectiveMaxClients) {
      const listening = this.#state === 'listening';
      publish('rejected', { server: this.view, reason: listening ? 'server_busy' : 'draining', maxClients: this.effectiveMaxClients });
      socket.on('error', () => {}); // the client may already be gone
      // Read and discard what the client sends: closing a Unix socket with
      // unread input resets the peer, which could then lose our reply.
      socket.on('data', () => {});
      socket.end(listening ? this.#busyFrame : this.#drainingFrame);
      // The client closes on reading the reply; one that does not is cut off.
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const clientId = this.#registry.nextId();
    this.#registry.add(clientId, new Connection(clientId, socket, this.#host));
    if (channels.opened.hasSubscribers) channels.opened.publish({ server: this.view, clientId, socketPath: this.socketPath });
  }

  // What connections call back into: not methods of the server, so not part of its API.
  #connectionHost(dispatcher: Dispatcher): ConnectionHost {
    const features = this.#features;
    return {
      view: this.view,
      dispatcher,
      limits: this.#limits,
      handshaken: (conn) => {
        if (channels.handshake.hasSubscribers) channels.handshake.publish({ server: this.view, clientId: conn.clientId, clientName: conn.name });
        features.connected(conn.client);
      },
      closed: (conn, event) => {
        if (conn.handshaken) features.disconnected(conn.client, event);
        const client = conn.clientIfMade;
        if (client !== undefined) Client.disposeStates(client, (err) => features.failed('(connection state)', 'dispose', conn.clientId, err));
        if (event.reason === 'shutdown_forced') this.#forced++;
        this.#closedBytesIn += event.bytesIn;
        this.#closedBytesOut += event.bytesOut;
        this.#registry.remove(conn.clientId);
        if (channels.closed.hasSubscribers) channels.closed.publish(event);
        if (this.#registry.size === 0) this.#onEmpty?.();
      },
      failed: (conn, error) => publish('notice', { server: this.view, code: 'client_input_failed', clientId: conn.clientId, error }),
    };
  }

  #viewSource(catalog: () => Catalog): ViewSource {
    const registry = this.#registry;
    return {
      version: this.version,
      socketPath: this.#socketPath,
      get catalog() {
        return catalog();
      },
      uptimeMs: () => this.uptimeMs(),
      clientCount: () => registry.size,
      isDraining: () => this.#state === 'draining',
      clientInfos: () => Array.from(registry.values(), (c) => c.info()),
      clientHandle: (id) => registry.get(id)?.client,
      traffic: () => {
        let bytesIn = this.#closedBytesIn;
        let bytesOut = this.#closedBytesOut;
        for (const c of registry.values()) {
          bytesIn += c.bytesIn;
          bytesOut += c.bytesOut;
        }
        return { bytesIn, bytesOut };
      },
    };
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
    this.#stopTimers();
    const initial = this.#registry.size;
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
    for (const conn of this.#registry.values()) conn.notifyShutdown(reason, this.shutdownTimeoutMs);
    if (this.#registry.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.shutdownTimeoutMs);
        this.#onEmpty = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    if (this.#registry.size > 0) {
      await new Promise<void>((resolve) => {
        this.#onEmpty = resolve;
        for (const conn of [...this.#registry.values()]) conn.destroy('shutdown_forced');
      });
    }
    this.#onEmpty = undefined;
    await listenerClosed;
    this.#state = 'closed';
    const result = { durationMs: performance.now() - t0, left: initial - this.#forced, forced: this.#forced };
    publish('drained', { server: this.view, ...result });
    await this.#features.close();
    return result;
  }

  /** Forced shutdown: cut every connection now and remove the socket. */
  destroy(): void {
    this.#stopTimers();
    this.#listener.destroy();
    for (const conn of [...this.#registry.values()]) conn.destroy('shutdown_forced');
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
