// A small typed client for protocol v1, used by fuguectl, the tests and the
// benchmark. Requests get numeric ids; replies are matched by id, and
// unsolicited messages (`shutdown`, errors without id) are emitted as 'message'.

import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { FugueError } from '../errors.js';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION, type ServerMessage } from '../protocol/index.js';

export interface ConnectOptions {
  /** Sent as `client_name`. */
  clientName?: string;
  /** Give up connecting / waiting for a reply after this long, in ms. Default: 5000. */
  timeoutMs?: number;
  /** Skip the `connect` handshake (for tests of the handshake itself). */
  handshake?: boolean;
}

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

export class FugueClient extends EventEmitter {
  readonly socket: Socket;
  readonly timeoutMs: number;
  connected: ConnectedInfo | undefined;
  #decoder = new FrameDecoder({ maxFrameBytes: 0xffff_ffff });
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Promise<void>;
  // Unsolicited messages that arrive before connect() has returned the client
  // (nobody can be listening yet): re-emitted once it has.
  #early: ServerMessage[] | undefined = [];

  private constructor(socket: Socket, timeoutMs: number) {
    super();
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      for (const payload of this.#decoder.push(chunk)) this.#onMessage(JSON.parse(payload.toString('utf8')) as ServerMessage);
    });
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      const err = new FugueError('FUGUE_ERR_CLIENT_CLOSED', 'the server closed the connection before replying');
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.#pending.clear();
      this.emit('close');
    });
    socket.on('error', (err) => this.emit('socketError', err));
  }

  /** Connect to `socketPath` and complete the handshake. */
  static async connect(socketPath: string, options: ConnectOptions = {}): Promise<FugueClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no answer from ${socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const hint = err.code === 'ENOENT' ? 'no socket there: is fugue-server running? (check --socket / FUGUE_SOCKET_PATH)'
          : err.code === 'ECONNREFUSED' ? 'a stale socket: no server is listening; start fugue-server'
            : err.code === 'EACCES' ? 'permission denied: the socket belongs to another user' : err.message;
        reject(new FugueError('FUGUE_ERR_CLIENT_CONNECT', `cannot connect to ${socketPath} (${err.code ?? 'error'}): ${hint}`, { cause: err }));
      });
    });
    const client = new FugueClient(socket, timeoutMs);
    if (options.handshake !== false) {
      const reply = await client.request({ type: 'connect', protocol_version: PROTOCOL_VERSION, ...(options.clientName ? { client_name: options.clientName } : {}) });
      if (reply.type !== 'connected') {
        client.destroy();
        throw new FugueError('FUGUE_ERR_CLIENT_PROTOCOL', `handshake refused: ${String(reply.code)}: ${String(reply.message)}`, { details: { reply } });
      }
      client.connected = reply as unknown as ConnectedInfo;
    }
    const early = client.#early ?? [];
    client.#early = undefined;
    if (early.length > 0) setImmediate(() => { for (const m of early) client.emit('message', m); });
    return client;
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

  /** Send a message with a fresh id and wait for the reply carrying it. */
  request(message: Record<string, unknown> & { type: string }): Promise<ServerMessage> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no reply to ${message.type} (id ${id}) within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeFrame({ ...message, id }));
    });
  }

  /** Send without waiting for a reply. */
  send(message: object): void {
    this.socket.write(encodeFrame(message));
  }

  ping(): Promise<ServerMessage> {
    return this.request({ type: 'ping' });
  }

  echo(data: unknown): Promise<ServerMessage> {
    return this.request({ type: 'echo', data });
  }

  status(): Promise<ServerMessage> {
    return this.request({ type: 'status' });
  }

  /** Send `detach` and wait for the server to close the connection. */
  async detach(): Promise<void> {
    this.send({ type: 'detach' });
    await this.#closed;
  }

  /** Resolves when the socket has closed. */
  closed(): Promise<void> {
    return this.#closed;
  }

  /** Close our side and wait for the socket to close. */
  async close(): Promise<void> {
    this.socket.end();
    await this.#closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
