// The client object features get (fastify's `reply`, apart from `reply.raw`):
// identity and counters, `send`, `close(reason)` and per-connection state.
// It drives its connection through the narrow ClientPort below and never
// hands the connection out, so a feature cannot reach the socket pump or
// complete a handshake.

import { replyPayload, PreparedMessage, type Frameable, type ServerMessage } from '../protocol/index.js';

/** A snapshot of one connected client. */
export interface ClientInfo {
  /** Unique for the server's lifetime (the `client_id` of `connected`). */
  id: number;
  /** The `client_name` it sent with `connect`, if any. */
  name: string | undefined;
  /** When it connected, in Unix milliseconds. */
  connectedAt: number;
  /** Whether it completed `connect`. */
  handshaken: boolean;
  /** Messages received from it and sent to it (replies and unsolicited ones). */
  messagesIn: number;
  messagesOut: number;
  /** Bytes read from it and written to it. */
  bytesIn: number;
  bytesOut: number;
}

/**
 * Per-connection state a feature keeps: created by `init` on first use
 * (`client.state(key)`), dropped when the connection closes, after `dispose`
 * (if given) has run. Make one key per kind of state, once, with
 * `connectionState()`.
 */
export interface ConnectionState<T> {
  init(client: ClientHandle): T;
  dispose?(value: T, client: ClientHandle): void;
}

/** A key for per-connection state (see ConnectionState). */
export function connectionState<T>(init: (client: ClientHandle) => T, dispose?: (value: T, client: ClientHandle) => void): ConnectionState<T> {
  return Object.freeze(dispose === undefined ? { init } : { init, dispose });
}

/** One connected client, as features see it: the sender of a message (`ctx.client`) or another one (`server.client(id)`). */
export interface ClientHandle {
  readonly id: number;
  readonly name: string | undefined;
  readonly handshaken: boolean;
  /** False once the connection is closing or closed: `send` then returns false. */
  readonly open: boolean;
  /** Bytes owed to it that it has not taken yet: queued for the next write and unsent in the socket. */
  readonly bufferedBytes: number;
  /** A snapshot of its counters. */
  info(): ClientInfo;
  /**
   * Send an unsolicited message (no `id`): a plain object, or a
   * PreparedMessage serialised once for many recipients (`scope.prepare`).
   * It is queued behind everything already owed to the client (replies stay
   * in request order), written with them, bounded by the same
   * `limits.maxBufferedBytes` (a client that does not read is disconnected
   * as a slow consumer), and published on `fugue:push`. Returns false,
   * sending nothing, to a client that is not handshaken or no longer open.
   * Throws what JSON.stringify throws.
   */
  send(message: ServerMessage | PreparedMessage): boolean;
  /**
   * Close the connection cleanly once everything owed to it is written (for
   * a message being handled: after its reply). Counted as
   * `closed_by_feature`; `reason` goes into the close event and the log.
   */
  close(reason: string): void;
  /** This connection's value for `key`, created on first use. */
  state<T>(key: ConnectionState<T>): T;
}

/** What a Client drives: implemented by the connection, never given to features. */
export interface ClientPort {
  readonly clientId: number;
  readonly name: string | undefined;
  readonly handshaken: boolean;
  readonly open: boolean;
  readonly bufferedBytes: number;
  info(): ClientInfo;
  /** Queue an unsolicited message (one recipient: published on fugue:push once written). */
  push(payload: Frameable, type: string): void;
  /** Queue one of a stream's messages (the stream publishes one event for all recipients). */
  pushQuiet(payload: Frameable): void;
  /** Call `fn` once the client has taken what it is owed. */
  whenDrained(fn: () => void): void;
  /** Close cleanly after what is owed (closed_by_feature). */
  closeByFeature(detail: string): void;
}

export class Client implements ClientHandle {
  readonly #port: ClientPort;
  #states: Map<ConnectionState<unknown>, unknown> | undefined;

  constructor(port: ClientPort) {
    this.#port = port;
  }

  get id(): number {
    return this.#port.clientId;
  }

  get name(): string | undefined {
    return this.#port.name;
  }

  get handshaken(): boolean {
    return this.#port.handshaken;
  }

  get open(): boolean {
    return this.#port.open;
  }

  get bufferedBytes(): number {
    return this.#port.bufferedBytes;
  }

  info(): ClientInfo {
    return this.#port.info();
  }

  send(message: ServerMessage | PreparedMessage): boolean {
    const port = this.#port;
    if (!port.handshaken || !port.open) return false;
    port.push(message instanceof PreparedMessage ? message : replyPayload(message, undefined), message.type);
    return true;
  }

  close(reason: string): void {
    this.#port.closeByFeature(reason);
  }

  state<T>(key: ConnectionState<T>): T {
    const states = (this.#states ??= new Map());
    if (states.has(key)) return states.get(key) as T;
    const value = key.init(this);
    states.set(key, value);
    return value;
  }

  /** The port behind a client object made here (for streams), or undefined for anything else. Static: not on the objects features hold. */
  static portOf(client: ClientHandle): ClientPort | undefined {
    return client instanceof Client ? client.#port : undefined;
  }

  /**
   * Run every state's dispose once the connection closed, and drop the
   * states. Static, so it is not a method features see on a client; a
   * failing dispose is reported to `onError` and the others still run.
   */
  static disposeStates(client: Client, onError: (err: unknown) => void): void {
    const states = client.#states;
    if (states === undefined) return;
    client.#states = undefined;
    for (const [key, value] of states) {
      try {
        key.dispose?.(value, client);
      } catch (err) {
        onError(err);
      }
    }
  }
}
