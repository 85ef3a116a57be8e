// FugueServer: binds the Unix socket, accepts clients, and drains on close().
// Lifecycle: idle -> starting -> listening -> draining -> closed (one way only).

import { lstatSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { serverClosed } from '../errors.js';
import { encodeFrame, errorMessage, ERROR_TEXT, DEFAULT_MAX_FRAME_BYTES } from '../protocol/index.js';
import { Connection, type ConnectionLimits } from './connection.js';
import { Dispatcher } from './dispatch.js';
import { coreHandlers, type ClientHandle, type ClientInfo, type HandlerTable, type ServerView } from './handlers.js';
import { noopInstrumentation, type CloseEvent, type Instrumentation } from './instrumentation.js';
import { ClientRegistry } from './registry.js';
import { computeFdBudget, type FdBudget, type FdReserve } from './fd-budget.js';
import { InstanceLock } from './instance-lock.js';
import { bindUnixSocket, checkSocketPathLength, ensureSocketDir, listenInherited, removeSocketIfOurs, socketIdentity, type SocketIdentity } from './socket-path.js';

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
  /** Observability hooks. Default: no-op. */
  instrumentation?: Instrumentation;
  /** Message handlers. Default: the protocol v1 core handlers. */
  handlers?: HandlerTable;
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
  /** Clients still connected at the deadline, closed by the server. */
  forced: number;
}

/**
 * The server core: binds the Unix socket safely (or serves one the service
 * manager passed), accepts clients up to the client limit in force, runs each
 * connection's pump, keeps the socket path healthy, and drains on close().
 * Owns node:net; reports through the injected Instrumentation.
 */
export class FugueServer implements ServerView {
  readonly #socketPath: string;
  #inheritedFd: number | undefined;
  readonly version: string;
  readonly handlers: HandlerTable;
  #dispatcher: Dispatcher;
  /** How long a graceful drain waits, in ms (a reload may change it). */
  shutdownTimeoutMs: number;
  #maxClients: number;
  #fdReserve: FdReserve;
  #budget: FdBudget | undefined;
  // The last reason the socket could not be re-created, logged once per change.
  #rebindError = '';
  #mode: number;
  #socketCheckIntervalMs: number;
  #lock: InstanceLock | undefined;
  #socketLost = false;
  #rebinding = false;
  #timers: NodeJS.Timeout[] = [];
  #limits: ConnectionLimits;
  #instr: Instrumentation;
  #state: ServerState = 'idle';
  #listener: Server | undefined;
  #identity: SocketIdentity | undefined;
  #registry = new ClientRegistry<Connection>();
  #startedAt = 0;
  #closing: Promise<DrainResult> | undefined;
  #busyFrame: Buffer;
  #drainingFrame: Buffer;
  #onEmpty: (() => void) | undefined;
  #lostAt = 0;
  #drainDeadline = 0;

  constructor(options: FugueServerOptions) {
    this.#socketPath = options.socketPath;
    this.#inheritedFd = options.inheritedFd;
    this.version = options.version;
    this.handlers = options.handlers ?? coreHandlers();
    this.#dispatcher = new Dispatcher(this.handlers);
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.#maxClients = options.maxClients ?? 1024;
    this.#fdReserve = options.fdReserve ?? { http: 0, exporter: 0 };
    this.#mode = options.socketMode ?? 0o600;
    this.#limits = {
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxBufferedBytes: options.maxBufferedBytes ?? 32 * 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      frameTimeoutMs: options.frameTimeoutMs ?? 30_000,
    };
    this.#socketCheckIntervalMs = options.socketCheckIntervalMs ?? 1000;
    this.#instr = options.instrumentation ?? noopInstrumentation;
    this.#busyFrame = this.#busyReply(this.#maxClients);
    this.#drainingFrame = encodeFrame(errorMessage('server_busy', ERROR_TEXT.server_draining));
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
    return this.#inheritedFd !== undefined;
  }

  /** limits.maxClients as configured; see `effectiveMaxClients` for the one in force. */
  get maxClients(): number {
    return this.#maxClients;
  }

  /** Clients served at once: limits.maxClients, lowered when the open-files limit leaves less room. */
  get effectiveMaxClients(): number {
    return this.#budget?.maxClients ?? this.maxClients;
  }

  /** While draining: time left until the drain deadline, in ms; else 0. */
  get drainRemainingMs(): number {
    return this.#state === 'draining' ? Math.max(0, this.#drainDeadline - performance.now()) : 0;
  }

  /** False while the socket path does not hold this server's listening socket. */
  get socketHealthy(): boolean {
    return !this.#socketLost;
  }

  #busyReply(max: number): Buffer {
    return encodeFrame(errorMessage('server_busy', ERROR_TEXT.server_busy(max)));
  }

  /** The socket file this server created (after start()). */
  get identity(): SocketIdentity | undefined {
    return this.#identity;
  }

  // --- ServerView ---
  uptimeMs(): number {
    return this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt;
  }
  clientCount(): number {
    return this.#registry.size;
  }
  isDraining(): boolean {
    return this.#state === 'draining';
  }
  clients(): ClientInfo[] {
    const out: ClientInfo[] = [];
    for (const conn of this.#registry.values()) out.push(conn.info());
    return out;
  }
  client(id: number): ClientHandle | undefined {
    return this.#registry.get(id);
  }

  /** Bind and start accepting. Rejects with a FugueError (see docs/errors.md). */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw serverClosed();
    this.#state = 'starting';
    try {
      if (this.#inheritedFd !== undefined) {
        const listener = this.#createListener();
        this.#listener = listener;
        await listenInherited(listener, this.#inheritedFd);
        // Readiness follows socket.path, which must name the manager's socket (ListenStream=).
        this.#identity = socketIdentity(this.#socketPath);
        if (this.#identity === undefined) {
          this.#instr.log.warn({ socketPath: this.#socketPath }, 'socket-activated, but socket.path holds no socket: set socket.path (FUGUE_SOCKET_PATH) to the .socket unit\'s ListenStream= path, or clients and readiness checks look in the wrong place');
        }
      } else {
        checkSocketPathLength(this.#socketPath);
        ensureSocketDir(dirname(this.#socketPath), this.#instr.log);
        // Held from before the probe until the drain: two servers starting at once cannot both bind.
        this.#lock = await InstanceLock.acquire(this.#socketPath);
        const listener = this.#createListener();
        this.#listener = listener;
        this.#identity = await bindUnixSocket(listener, this.#socketPath, this.#mode, this.#instr.log);
      }
    } catch (err) {
      this.#lock?.release();
      this.#state = 'closed';
      throw err;
    }
    this.#applyBudget(computeFdBudget(this.#maxClients, this.#fdReserve));
    this.#startTimers();
    this.#startedAt = performance.now();
    this.#state = 'listening';
    this.#instr.listening({ socketPath: this.socketPath, pid: process.pid, maxClients: this.effectiveMaxClients, openFilesLimit: this.#budget?.openFilesLimit });
    if (this.#closing !== undefined) await this.#closing; // close() called during start
  }

  #applyBudget(budget: FdBudget): void {
    this.#budget = budget;
    if (this.#listener !== undefined) this.#listener.maxConnections = budget.maxConnections;
    this.#busyFrame = this.#busyReply(budget.maxClients);
    if (budget.maxClients < this.#maxClients) {
      this.#instr.log.warn(
        { maxClients: this.#maxClients, effectiveMaxClients: budget.maxClients, openFilesLimit: budget.openFilesLimit, openNow: budget.openNow, reserved: budget.reserved },
        'the open-files limit leaves room for fewer clients than limits.maxClients; raise it (ulimit -n, LimitNOFILE=)',
      );
    }
  }

  /**
   * Apply settings a configuration reload changed, without dropping a client:
   * limits hold for every connection from its next message or check on (a
   * lower client limit turns away new clients only), timers restart.
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
        this.#instr.clientLimit({ maxClients: this.effectiveMaxClients });
      }
    }
    if (this.#state === 'listening') {
      this.#stopTimers();
      this.#startTimers();
    }
  }

  #createListener(): Server {
    const listener = createServer({ allowHalfOpen: true });
    listener.on('connection', (socket) => this.#accept(socket));
    // After listen, 'error' events are accept failures (ENFILE, ...): count
    // them and keep serving; the listener stays open.
    listener.on('error', (err: NodeJS.ErrnoException) => this.#instr.acceptError(err));
    // Over maxConnections Node closes the connection itself: count it.
    listener.on('drop', () => this.#instr.rejected('fd_limit'));
    if (this.#budget !== undefined) listener.maxConnections = this.#budget.maxConnections;
    return listener;
  }

  #startTimers(): void {
    const shortest = Math.min(...[this.#limits.frameTimeoutMs, this.#limits.handshakeTimeoutMs].filter((ms) => ms > 0));
    if (Number.isFinite(shortest)) {
      // One sweep for all connections instead of a timer per connection.
      const every = Math.min(1000, Math.max(20, Math.floor(shortest / 4)));
      this.#timers.push(setInterval(() => this.#sweep(), every).unref());
    }
    if (this.#socketCheckIntervalMs > 0) {
      this.#timers.push(setInterval(() => void this.#checkSocket(), this.#socketCheckIntervalMs).unref());
    }
  }

  #stopTimers(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  #sweep(): void {
    const now = performance.now();
    for (const conn of this.#registry.values()) conn.checkTimeouts(now);
  }

  // Readiness follows the socket path: it is healthy while the path holds the
  // socket this server listens on, whatever happened in between (removed,
  // replaced, moved back, directory swapped). Tmp cleaners delete sockets
  // (tmux#1036): when the path is free or holds a dead socket, the server puts
  // its socket back; the instance lock guarantees no other fugue-server is
  // meant to be there. Anything else at the path is never touched.
  async #checkSocket(): Promise<void> {
    if (this.#state !== 'listening' || this.#rebinding || this.#identity === undefined) return;
    if (this.#holdsOurSocket()) {
      if (this.#socketLost) this.#markRestored(false); // e.g. moved away and back
      return;
    }
    if (this.activated) {
      // The service manager owns this socket file: say so, never re-create it.
      if (!this.#socketLost) {
        this.#socketLost = true;
        this.#lostAt = performance.now();
        this.#instr.socketLost({ socketPath: this.socketPath });
        this.#instr.log.error({ socketPath: this.socketPath }, 'the socket-activated socket file is gone; clients cannot connect until the .socket unit is restarted (systemctl restart fugue-server.socket)');
      }
      return;
    }
    this.#rebinding = true;
    if (!this.#socketLost) {
      this.#socketLost = true;
      this.#lostAt = performance.now();
      this.#instr.socketLost({ socketPath: this.socketPath });
    }
    try {
      ensureSocketDir(dirname(this.socketPath), this.#instr.log);
      this.#lock?.restoreTokenFile(this.socketPath);
      const listener = this.#createListener();
      const identity = await bindUnixSocket(listener, this.socketPath, this.#mode, this.#instr.log);
      if (this.#state !== 'listening') {
        // A drain started meanwhile: do not keep a socket we are giving up.
        removeSocketIfOurs(this.socketPath, identity);
        listener.close();
        return;
      }
      const old = this.#listener;
      this.#listener = listener;
      this.#identity = identity;
      old?.close(); // accepted connections stay; only the unreachable listener goes
      this.#markRestored(true);
    } catch (err) {
      // Retried every interval; logged when the reason changes, not every second.
      const why = (err as Error).message;
      if (why !== this.#rebindError) {
        this.#rebindError = why;
        this.#instr.log.error({ err, socketPath: this.socketPath }, 'cannot re-create the socket; will retry');
      }
    } finally {
      this.#rebinding = false;
    }
  }

  #holdsOurSocket(): boolean {
    const id = this.#identity as SocketIdentity;
    try {
      const st = lstatSync(this.socketPath);
      return st.isSocket() && st.ino === id.ino && st.dev === id.dev && this.#listener?.listening === true;
    } catch {
      return false;
    }
  }

  #markRestored(recreated: boolean): void {
    this.#socketLost = false;
    this.#rebindError = '';
    this.#instr.socketRestored({ socketPath: this.socketPath, downMs: performance.now() - this.#lostAt, recreated });
  }

  #accept(socket: Socket): void {
    if (this.#state !== 'listening' || this.#registry.size >= this.effectiveMaxClients) {
      this.#instr.rejected(this.#state === 'listening' ? 'server_busy' : 'draining');
      socket.on('error', () => {}); // the client may already be gone
      // Read and discard what the client sends: closing a Unix socket with
      // unread input resets the peer, which could then lose our reply.
      socket.on('data', () => {});
      socket.end(this.#state === 'listening' ? this.#busyFrame : this.#drainingFrame);
      // The client closes on reading the reply; one that does not is cut off.
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const clientId = this.#registry.nextId();
    const observer = this.#instr.connection({ clientId, socketPath: this.socketPath });
    const conn = new Connection({
      clientId,
      socket,
      dispatcher: this.#dispatcher,
      limits: this.#limits,
      server: this,
      observer,
      log: this.#instr.log,
      onClose: this.#onConnectionClose,
    });
    this.#registry.add(clientId, conn);
  }

  // A field, not a method: one function for every connection's onClose.
  #onConnectionClose = (conn: Connection, _event: CloseEvent): void => {
    this.#registry.remove(conn.clientId);
    if (this.#registry.size === 0) this.#onEmpty?.();
  };

  /** The live connection with this client id, if any. */
  getClient(clientId: number): Connection | undefined {
    return this.#registry.get(clientId);
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
      return { durationMs: 0, left: 0, forced: 0 };
    }
    this.#state = 'draining';
    this.#drainDeadline = t0 + this.shutdownTimeoutMs;
    this.#stopTimers();
    const initial = this.#registry.size;
    this.#instr.draining({ clients: initial, timeoutMs: this.shutdownTimeoutMs });
    // The path is free for a successor from here on: remove the socket, drop the lock.
    this.removeSocket();
    this.#lock?.release();
    // Connections already in the accept backlog still arrive for a moment (the
    // path is gone, so no new ones can): accept them and tell them we are
    // draining, instead of letting close() reset them unseen. Socket-activated,
    // stop accepting at once: the queue is the service manager's, and what
    // waits in it belongs to the next instance.
    const listener = this.#listener as Server;
    const listenerClosed = new Promise<void>((resolve) => setTimeout(() => listener.close(() => resolve()), this.activated ? 0 : BACKLOG_GRACE_MS));

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
    const forced = this.#registry.size;
    if (forced > 0) {
      await new Promise<void>((resolve) => {
        this.#onEmpty = resolve;
        for (const conn of [...this.#registry.values()]) conn.destroy('shutdown_forced');
      });
    }
    this.#onEmpty = undefined;
    await listenerClosed;
    this.#state = 'closed';
    const result = { durationMs: performance.now() - t0, left: initial - forced, forced };
    this.#instr.drained(result);
    return result;
  }

  /** Forced shutdown: cut every connection now and remove the socket. */
  destroy(): void {
    this.#stopTimers();
    this.removeSocket();
    this.#lock?.release();
    if (this.#listener?.listening) this.#listener.close();
    for (const conn of [...this.#registry.values()]) conn.destroy('shutdown_forced');
    this.#state = 'closed';
  }

  /** Remove the socket file if it is still ours (never a socket-activated one). Safe to call on any exit path. */
  removeSocket(): boolean {
    return this.#identity === undefined || this.activated ? false : removeSocketIfOurs(this.socketPath, this.#identity);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
