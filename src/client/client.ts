// A small typed client for protocol v1, used by fuguectl, the tests and the
// benchmark. Requests get numeric ids; replies are matched by id, and
// unsolicited messages (`shutdown`, errors without id) are emitted as 'message'.
//
// The client distrusts the server (issue 13, point 6): a reply frame over
// `maxReplyBytes`, a payload that is not one UTF-8 JSON object with a string
// `type`, or a protocol v1 message with wrongly typed fields (replies.ts)
// fails every pending request with a FugueError (exit 76 in fuguectl) and
// closes the connection: after one malformed frame nothing that follows on
// the stream can be trusted.

import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { FugueError } from '../errors.js';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION, type ServerMessage } from '../protocol/index.js';
import { expectReply, parseReply, serverText } from './replies.js';

/** Default of {@link ConnectOptions.maxReplyBytes}: 32 MiB, twice the server's default `limits.maxFrameBytes`, so the echo of a maximum-size request fits. */
export const DEFAULT_MAX_REPLY_BYTES = 32 * 1024 * 1024;

/** Default of {@link ConnectOptions.timeoutMs}, in ms. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** Options of {@link FugueClient.connect}. */
export interface ConnectOptions {
  /** Sent as `client_name`. Default: none. */
  clientName?: string;
  /** Give up connecting, and waiting for each reply, after this long, in ms. Default: 5000. */
  timeoutMs?: number;
  /** Skip the `connect` handshake (for tests of the handshake itself). Default: false. */
  handshake?: boolean;
  /**
   * Largest reply frame payload accepted, in bytes. A server announcing a
   * larger frame fails every pending request with
   * FUGUE_ERR_CLIENT_REPLY_TOO_LARGE and the connection is closed; no memory
   * is set aside for it. Default: 33554432 (32 MiB).
   */
  maxReplyBytes?: number;
}

/** The `connected` reply's fields. */
export interface ConnectedInfo {
  protocol_version: number;
  server_version: string;
  client_id: number;
}

interface Pending {
  resolve(msg: ServerMessage): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): FugueError {
  const hint = err.code === 'ENOENT' ? 'no socket there: is fugue-server running? (check --socket / FUGUE_SOCKET_PATH)'
    : err.code === 'ECONNREFUSED' ? 'a stale socket: no server is listening; start fugue-server'
      : err.code === 'EACCES' ? 'permission denied: the socket or its directory is another user\'s; connect as the server\'s user, or as a member of its group where the server shares it (socket.mode "0660" and a directory the group can traverse)'
        : err.code === 'ENOTSOCK' ? 'that path is not a socket; check --socket / FUGUE_SOCKET_PATH'
          : err.message;
  return new FugueError('FUGUE_ERR_CLIENT_CONNECT', `cannot connect to ${socketPath} (${err.code ?? 'error'}): ${hint}`, { cause: err, details: { socketPath, errno: err.code } });
}

/**
 * A connection to a fugue-server. Events: 'message' (unsolicited server
 * messages, already validated), 'close', 'socketError' (the socket's error,
 * before 'close'), and 'protocolError' (the FugueError that closed the
 * connection after a malformed or oversized frame).
 */
export class FugueClient extends EventEmitter {
  readonly socket: Socket;
  /** The path connected to, as given. */
  readonly socketPath: string;
  /** {@link ConnectOptions.timeoutMs}, in ms. */
  readonly timeoutMs: number;
  /** {@link ConnectOptions.maxReplyBytes}, in bytes. */
  readonly maxReplyBytes: number;
  /** The `connected` reply's fields, after the handshake. */
  connected: ConnectedInfo | undefined;
  #decoder: FrameDecoder;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Promise<void>;
  #isClosed = false;
  /** Set once the server sent something malformed: every later request fails with it. */
  #failure: FugueError | undefined;
  // Unsolicited messages that arrive before connect() has returned the client
  // (nobody can be listening yet): re-emitted once it has.
  #early: ServerMessage[] | undefined = [];

  private constructor(socket: Socket, socketPath: string, timeoutMs: number, maxReplyBytes: number) {
    super();
    this.socket = socket;
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
    this.maxReplyBytes = maxReplyBytes;
    this.#decoder = new FrameDecoder({ maxFrameBytes: maxReplyBytes });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.#isClosed = true;
      this.#rejectAll(this.#failure ?? new FugueError('FUGUE_ERR_CLIENT_CLOSED', `the server at ${socketPath} closed the connection before replying; if it is shutting down, retry once it is back`, { details: { socketPath } }));
      this.emit('close');
    });
    socket.on('error', (err) => this.emit('socketError', err));
  }

  /** Connect to `socketPath` and complete the handshake. Throws FugueError (FUGUE_ERR_CLIENT_*). */
  static async connect(socketPath: string, options: ConnectOptions = {}): Promise<FugueClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no answer from ${socketPath} within ${timeoutMs} ms; check the server's health (logs, /healthz) or raise the timeout`, { details: { socketPath, timeoutMs } }));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(connectError(socketPath, err));
      });
    });
    const client = new FugueClient(socket, socketPath, timeoutMs, options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES);
    if (options.handshake !== false) {
      let reply: ServerMessage;
      try {
        reply = expectReply(await client.request({ type: 'connect', protocol_version: PROTOCOL_VERSION, ...(options.clientName ? { client_name: options.clientName } : {}) }), 'connected', 'connect', socketPath);
      } catch (err) {
        client.destroy();
        throw err;
      }
      if (reply.type !== 'connected') {
        client.destroy();
        throw new FugueError('FUGUE_ERR_CLIENT_PROTOCOL', `handshake refused by ${socketPath}: ${serverText(reply.code, 64)}: ${serverText(reply.message, 500)}`, { details: { socketPath, code: reply.code } });
      }
      client.connected = { protocol_version: reply.protocol_version as number, server_version: reply.server_version as string, client_id: reply.client_id as number };
    }
    const early = client.#early ?? [];
    client.#early = undefined;
    if (early.length > 0) setImmediate(() => { for (const m of early) client.emit('message', m); });
    return client;
  }

  #onData(chunk: Buffer): void {
    if (this.#failure !== undefined) return;
    for (const payload of this.#decoder.push(chunk)) {
      let msg: ServerMessage;
      try {
        msg = parseReply(payload, this.socketPath);
      } catch (err) {
        this.#fail(err as FugueError);
        return;
      }
      this.#onMessage(msg);
      if (this.#failure !== undefined) return;
    }
    const tooLarge = this.#decoder.error;
    if (tooLarge !== undefined) {
      const length = tooLarge.details.length as number;
      this.#fail(new FugueError(
        'FUGUE_ERR_CLIENT_REPLY_TOO_LARGE',
        `reply from ${this.socketPath} announces ${length} bytes, more than this client accepts (maxReplyBytes ${this.maxReplyBytes}); the connection was closed. Raise maxReplyBytes if the server really sends replies this large`,
        { details: { socketPath: this.socketPath, length, max: this.maxReplyBytes } },
      ));
    }
  }

  /** The server cannot be trusted any more: fail everything and close. */
  #fail(err: FugueError): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    this.#rejectAll(err);
    this.socket.destroy();
    // Only for listeners: an 'error' event without one would throw.
    this.emit('protocolError', err);
  }

  #rejectAll(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  #onMessage(msg: ServerMessage): void {
    const id = msg.id;
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending !== undefined) {
      this.#pending.delete(id as number);
      clearTimeout(pending.timer);
      pending.resolve(msg);
    } else if (this.#early !== undefined) {
      this.#early.push(msg);
    } else {
      this.emit('message', msg);
    }
  }

  /**
   * Send a message with a fresh id and wait for the reply carrying it (any
   * well-formed message; `error` replies resolve too). Rejects with
   * FUGUE_ERR_CLIENT_TIMEOUT, _CLOSED, _BAD_REPLY or _REPLY_TOO_LARGE.
   */
  request(message: Record<string, unknown> & { type: string }): Promise<ServerMessage> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#isClosed) return Promise.reject(new FugueError('FUGUE_ERR_CLIENT_CLOSED', `the connection to ${this.socketPath} is closed; connect again`, { details: { socketPath: this.socketPath } }));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no reply to ${message.type} (id ${id}) from ${this.socketPath} within ${this.timeoutMs} ms; check the server's health (logs, /healthz) or raise the timeout`, { details: { socketPath: this.socketPath, timeoutMs: this.timeoutMs } }));
      }, this.timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeFrame({ ...message, id }));
    });
  }

  // A reply of the wrong type to a typed request also means the server cannot be trusted.
  async #typed(message: Record<string, unknown> & { type: string }, replyType: string): Promise<ServerMessage> {
    const reply = await this.request(message);
    try {
      return expectReply(reply, replyType, message.type, this.socketPath);
    } catch (err) {
      this.#fail(err as FugueError);
      throw err;
    }
  }

  /** Send without waiting for a reply. */
  send(message: object): void {
    this.socket.write(encodeFrame(message));
  }

  /** `ping`; resolves with the `pong` (or an `error` reply). */
  ping(): Promise<ServerMessage> {
    return this.#typed({ type: 'ping' }, 'pong');
  }

  /** `echo`; resolves with the `echo` reply carrying `data` (or an `error` reply). */
  echo(data: unknown): Promise<ServerMessage> {
    return this.#typed({ type: 'echo', data }, 'echo');
  }

  /** `status`; resolves with the `status` reply, its documented fields checked (or an `error` reply). */
  status(): Promise<ServerMessage> {
    return this.#typed({ type: 'status' }, 'status');
  }

  /** `list_clients` (the clients feature): a `clients` reply listing every open connection, or an `error` (`unknown_type` from a server without it). */
  listClients(): Promise<ServerMessage> {
    return this.#typed({ type: 'list_clients' }, 'clients');
  }

  /** Send `detach` and wait for the server to close the connection (at most `timeoutMs`, then the socket is destroyed). */
  async detach(): Promise<void> {
    if (!this.#isClosed && this.#failure === undefined) this.send({ type: 'detach' });
    await this.#closedWithin();
  }

  /** Resolves when the socket has closed. */
  closed(): Promise<void> {
    return this.#closed;
  }

  /** Close our side and wait for the socket to close (at most `timeoutMs`, then it is destroyed). */
  async close(): Promise<void> {
    this.socket.end();
    await this.#closedWithin();
  }

  // A server that never closes its side must not keep the caller waiting.
  async #closedWithin(): Promise<void> {
    if (this.#isClosed) return;
    const timer = setTimeout(() => this.socket.destroy(), this.timeoutMs);
    try {
      await this.#closed;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Close the connection at once; pending requests fail with FUGUE_ERR_CLIENT_CLOSED. */
  destroy(): void {
    this.socket.destroy();
  }
}

