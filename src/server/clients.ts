// The connected clients of one server: each accepted socket becomes a
// Connection here, and this is what connections call back into (their
// handshake, their close), what the ServerView reads (snapshots, handles,
// traffic) and what a drain waits on. The order at a close is fixed here:
// the features' onDisconnect hooks, then per-connection state disposed, then
// `fugue:connection:closed`.

import type { Socket } from 'node:net';
import { channels, publish } from './channels.js';
import { Client, type ClientHandle, type ClientInfo } from './client.js';
import { Connection, type ConnectionHost, type ConnectionLimits } from './connection.js';
import type { Dispatcher } from './dispatch.js';
import type { CloseEvent } from './events.js';
import type { FeatureHost } from './features.js';
import { ClientRegistry } from './registry.js';
import type { ServerView } from './view.js';

export class ClientSet implements ConnectionHost {
  readonly view: ServerView;
  readonly dispatcher: Dispatcher;
  readonly limits: ConnectionLimits;
  readonly #features: FeatureHost;
  readonly #registry = new ClientRegistry<Connection>();
  #onEmpty: (() => void) | undefined;
  /** Connections closed with reason shutdown_forced (a drain's deadline, a forced stop). */
  forced = 0;
  // Traffic of closed connections (live ones are summed on demand).
  #closedBytesIn = 0;
  #closedBytesOut = 0;

  constructor(view: ServerView, dispatcher: Dispatcher, limits: ConnectionLimits, features: FeatureHost) {
    this.view = view;
    this.dispatcher = dispatcher;
    this.limits = limits;
    this.#features = features;
  }

  get size(): number {
    return this.#registry.size;
  }

  values(): IterableIterator<Connection> {
    return this.#registry.values();
  }

  /** Turn `socket` away with `reply` (a framed error), never making it a client. */
  static refuse(socket: Socket, reply: Buffer): void {
    socket.on('error', () => {}); // the client may already be gone
    // Read and discard what the client sends: closing a Unix socket with
    // unread input resets the peer, which could then lose our reply.
    socket.on('data', () => {});
    socket.end(reply);
    // The client closes on reading the reply; one that does not is cut off.
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Make `socket` a client: a fresh id, its pump, `fugue:connection:opened`. */
  add(socket: Socket, socketPath: string): Connection {
    const clientId = this.#registry.nextId();
    const conn = new Connection(clientId, socket, this);
    this.#registry.add(clientId, conn);
    if (channels.opened.hasSubscribers) channels.opened.publish({ server: this.view, clientId, socketPath });
    return conn;
  }

  infos(): ClientInfo[] {
    return Array.from(this.#registry.values(), (c) => c.info());
  }

  handle(id: number): ClientHandle | undefined {
    return this.#registry.get(id)?.client;
  }

  traffic(): { bytesIn: number; bytesOut: number } {
    let bytesIn = this.#closedBytesIn;
    let bytesOut = this.#closedBytesOut;
    for (const c of this.#registry.values()) {
      bytesIn += c.bytesIn;
      bytesOut += c.bytesOut;
    }
    return { bytesIn, bytesOut };
  }

  /** Resolves once no client is connected (at once when none is). */
  whenEmpty(): Promise<void> {
    if (this.#registry.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#onEmpty;
      this.#onEmpty = () => {
        previous?.();
        resolve();
      };
    });
  }

  /** Tell every client the server is shutting down, wait up to `timeoutMs` for them to leave, then close the rest (shutdown_forced). */
  async drain(reason: string, timeoutMs: number): Promise<void> {
    for (const conn of this.#registry.values()) conn.notifyShutdown(reason, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.whenEmpty(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    const empty = this.whenEmpty();
    this.destroyAll();
    await empty;
  }

  /** Close every connection now, counted as shutdown_forced. */
  destroyAll(): void {
    for (const conn of [...this.#registry.values()]) conn.destroy('shutdown_forced');
  }

  // --- ConnectionHost ---

  handshaken(conn: Connection): void {
    if (channels.handshake.hasSubscribers) channels.handshake.publish({ server: this.view, clientId: conn.clientId, clientName: conn.name });
    this.#features.connected(conn.client);
  }

  closed(conn: Connection, event: CloseEvent): void {
    if (conn.handshaken) this.#features.disconnected(conn.client, event);
    const client = conn.clientIfMade;
    if (client !== undefined) Client.disposeStates(client, (err) => this.#features.failed('(connection state)', 'dispose', conn.clientId, err));
    if (event.reason === 'shutdown_forced') this.forced++;
    this.#closedBytesIn += event.bytesIn;
    this.#closedBytesOut += event.bytesOut;
    this.#registry.remove(conn.clientId);
    if (channels.closed.hasSubscribers) channels.closed.publish(event);
    if (this.#registry.size === 0 && this.#onEmpty !== undefined) {
      const onEmpty = this.#onEmpty;
      this.#onEmpty = undefined;
      onEmpty();
    }
  }

  failed(conn: Connection, error: unknown): void {
    publish('notice', { server: this.view, code: 'client_input_failed', clientId: conn.clientId, error });
  }
}
