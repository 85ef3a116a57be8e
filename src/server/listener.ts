// The listening socket at the socket path: binding it safely (socket-path.ts)
// or adopting the one the service manager passed, keeping the path healthy
// while serving, and giving it up. Readiness follows the path: healthy while
// the path holds this server's listening socket, whatever happened in between
// (removed, replaced, moved back, directory swapped). Tmp cleaners delete
// sockets (tmux#1036): when the path is free or holds a dead socket, the
// listener puts its socket back; the instance lock guarantees no other
// fugue-server is meant to be there. Anything else at the path is never touched.

import { lstatSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { boundUnixPath } from '../host.js';
import { channels, publish } from './channels.js';
import { InstanceLock } from './instance-lock.js';
import { setTimeout as delay } from 'node:timers/promises';
import { checkSocketPathLength, ensureSocketDir, type Notify, type SocketNotice } from './socket-dir.js';
import { bindUnixSocket, listenInherited, removeSocketIfOurs, replaceUnixSocket, socketIdentity, type SocketIdentity } from './socket-path.js';
import type { ServerView } from './view.js';

/** What the listener reports to its server. */
export interface ListenerHandlers {
  connection(socket: Socket): void;
  /** An accept failed (ENFILE, ...); the listener stays open. */
  acceptError(err: NodeJS.ErrnoException): void;
  /** Node closed a connection over maxConnections itself. */
  drop(): void;
}

export interface SocketListenerOptions {
  socketPath: string;
  mode: number;
  /** A listening socket passed by the service manager (socket activation). */
  inheritedFd: number | undefined;
  view: ServerView;
  handlers: ListenerHandlers;
}

export class SocketListener {
  readonly socketPath: string;
  readonly #mode: number;
  readonly #inheritedFd: number | undefined;
  readonly #view: ServerView;
  readonly #handlers: ListenerHandlers;
  #server: Server | undefined;
  #identity: SocketIdentity | undefined;
  #lock: InstanceLock | undefined;
  #maxConnections: number | undefined;
  #lost = false;
  #lostAt = 0;
  #rebinding = false;
  #closed = false;
  #lockTaken: Promise<void> = Promise.resolve();
  // The last reason the socket could not be re-created, reported once per change.
  #rebindError = '';
  readonly #notify: Notify;

  constructor(options: SocketListenerOptions) {
    this.socketPath = options.socketPath;
    this.#mode = options.mode;
    this.#inheritedFd = options.inheritedFd;
    this.#view = options.view;
    this.#handlers = options.handlers;
    const view = this.#view;
    this.#notify = (notice) => publish('notice', { ...notice, server: view } as SocketNotice);
  }

  /** True when serving a socket passed by the service manager. */
  get activated(): boolean {
    return this.#inheritedFd !== undefined;
  }

  /** False while the socket path does not hold this server's listening socket. */
  get healthy(): boolean {
    return !this.#lost;
  }

  /** The socket file this server listens on (after start()). */
  get identity(): SocketIdentity | undefined {
    return this.#identity;
  }

  /** net.Server.maxConnections: beyond it Node closes connections itself (the fd budget). */
  set maxConnections(n: number | undefined) {
    this.#maxConnections = n;
    if (this.#server !== undefined && n !== undefined) this.#server.maxConnections = n;
  }

  /**
   * Bind the path (or adopt the manager's socket). With `takeover`, a live
   * fugue-server at the path is replaced (replaceUnixSocket): its instance
   * lock is taken once it lets go of it (`lockTaken`). Rejects with a
   * FugueError, the path unchanged.
   */
  async start(takeover = false): Promise<void> {
    try {
      if (this.#inheritedFd !== undefined) {
        this.#server = this.#create();
        await listenInherited(this.#server, this.#inheritedFd);
        // Readiness follows socket.path, which must name the manager's socket
        // (ListenStream=): where the kernel says that socket was bound, when /proc tells.
        const bound = boundUnixPath(this.#inheritedFd);
        this.#identity = bound === undefined || bound === this.socketPath ? socketIdentity(this.socketPath) : undefined;
        if (this.#identity === undefined) {
          publish('notice', { server: this.#view, code: 'activation_path_mismatch', socketPath: this.socketPath, boundPath: bound });
          this.#markLost();
        }
        return;
      }
      checkSocketPathLength(this.socketPath);
      ensureSocketDir(dirname(this.socketPath), this.#notify);
      // Held from before the probe until the drain: two servers starting at once cannot both bind.
      this.#lock = await InstanceLock.acquire(this.socketPath).catch((err: unknown) => {
        if (takeover && (err as { code?: string }).code === 'FUGUE_ERR_SOCKET_IN_USE') return undefined; // the predecessor holds it
        throw err;
      });
      this.#server = this.#create();
      if (this.#lock !== undefined) {
        this.#identity = await bindUnixSocket(this.#server, this.socketPath, this.#mode, this.#notify);
      } else {
        this.#identity = await replaceUnixSocket(this.#server, this.socketPath, this.#mode, this.#notify);
        this.#lockTaken = this.#takeLockWhenFree();
      }
    } catch (err) {
      this.#lock?.release();
      throw err;
    }
  }

  #create(): Server {
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', this.#handlers.connection);
    // After listen, 'error' events are accept failures (ENFILE, ...): reported; the listener stays open.
    server.on('error', this.#handlers.acceptError);
    server.on('drop', this.#handlers.drop);
    if (this.#maxConnections !== undefined) server.maxConnections = this.#maxConnections;
    return server;
  }

  /** Settles once this listener holds the instance lock (after a takeover: once the predecessor released it at its drain). */
  get lockTaken(): Promise<void> {
    return this.#lockTaken;
  }

  // After a takeover: the predecessor releases the lock when its drain starts.
  async #takeLockWhenFree(): Promise<void> {
    while (!this.#closed) {
      try {
        this.#lock = await InstanceLock.acquire(this.socketPath);
        if (this.#closed) this.#lock.release();
        return;
      } catch {
        await delay(50);
      }
    }
  }

  /** Check that the path still holds our socket; re-create it when the path is free (not when socket-activated, nor without the lock). */
  async check(): Promise<void> {
    if (this.#closed || this.#rebinding) return;
    if (this.#holdsOurSocket()) {
      if (this.#lost) this.#markRestored(false); // e.g. moved away and back
      return;
    }
    if (this.activated || this.#lock === undefined) {
      // The service manager owns this socket file, or (a takeover not yet
      // complete) the predecessor still holds the lock: say so, never re-create it.
      this.#markLost();
      return;
    }
    this.#rebinding = true;
    this.#markLost();
    try {
      ensureSocketDir(dirname(this.socketPath), this.#notify);
      this.#lock?.restoreTokenFile(this.socketPath);
      const server = this.#create();
      const identity = await bindUnixSocket(server, this.socketPath, this.#mode, this.#notify);
      if (this.#closed) {
        // A drain started meanwhile: do not keep a socket we are giving up.
        removeSocketIfOurs(this.socketPath, identity);
        server.close();
        return;
      }
      const old = this.#server;
      this.#server = server;
      this.#identity = identity;
      old?.close(); // accepted connections stay; only the unreachable listener goes
      this.#markRestored(true);
    } catch (err) {
      // Another server answers at the path: a successor took it over (or the
      // user put one there). Never touch it: the path is lost to this server.
      if ((err as { code?: string }).code === 'FUGUE_ERR_SOCKET_IN_USE') return;
      // Retried every interval; reported when the reason changes, not every second.
      const why = (err as Error).message;
      if (why !== this.#rebindError) {
        this.#rebindError = why;
        publish('notice', { server: this.#view, code: 'socket_rebind_failed', socketPath: this.socketPath, error: err as Error });
      }
    } finally {
      this.#rebinding = false;
    }
  }

  #holdsOurSocket(): boolean {
    const id = this.#identity;
    if (id === undefined) return false;
    try {
      const st = lstatSync(this.socketPath);
      return st.isSocket() && st.ino === id.ino && st.dev === id.dev && this.#server?.listening === true;
    } catch {
      return false;
    }
  }

  #markLost(): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#lostAt = performance.now();
    if (channels.socket.hasSubscribers) channels.socket.publish({ server: this.#view, socketPath: this.socketPath, state: 'lost', activated: this.activated, downMs: 0, recreated: false });
  }

  #markRestored(recreated: boolean): void {
    this.#lost = false;
    this.#rebindError = '';
    if (channels.socket.hasSubscribers) channels.socket.publish({ server: this.#view, socketPath: this.socketPath, state: 'restored', activated: this.activated, downMs: performance.now() - this.#lostAt, recreated });
  }

  /**
   * Give the path up (a drain starts): remove the socket file if it is still
   * ours and drop the lock, so a successor can bind at once; keep accepting
   * what is already queued for `graceMs` (to answer it), then close.
   */
  stopAccepting(graceMs: number): Promise<void> {
    this.#closed = true;
    this.remove();
    this.#lock?.release();
    const server = this.#server;
    if (server === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => setTimeout(() => server.close(() => resolve()), graceMs));
  }

  /** Close now (forced stop). */
  destroy(): void {
    this.#closed = true;
    this.remove();
    this.#lock?.release();
    if (this.#server?.listening) this.#server.close();
  }

  /** True while the path holds this listener's socket (false once a successor took it over). */
  holdsPath(): boolean {
    return this.#holdsOurSocket();
  }

  /** Remove the socket file if it is still ours (never a socket-activated one). Safe on any exit path. */
  remove(): boolean {
    return this.#identity === undefined || this.activated ? false : removeSocketIfOurs(this.socketPath, this.#identity);
  }
}
