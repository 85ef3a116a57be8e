// A raw protocol client for tests: sends arbitrary bytes, reads frames. Unlike
// FugueClient it never fixes up what the test sends.

import { createConnection, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, type ServerMessage } from '../../src/protocol/index.js';

export class RawClient {
  readonly socket: Socket;
  readonly messages: ServerMessage[] = [];
  #waiters: Array<() => void> = [];
  #decoder = new FrameDecoder({ maxFrameBytes: 0xffff_ffff });
  #ended = false;
  readonly closed: Promise<void>;
  /** Set when the server ended its side (FIN). */
  get ended(): boolean {
    return this.#ended;
  }

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.#decoder.push(chunk)) this.messages.push(JSON.parse(p.toString('utf8')) as ServerMessage);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => { this.#ended = true; this.#wake(); resolve(); }));
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Connect and complete the handshake. */
  static async handshaken(path: string, clientName = 'test'): Promise<RawClient> {
    const c = await RawClient.connect(path);
    c.send({ type: 'connect', protocol_version: 1, client_name: clientName });
    const m = await c.next();
    if (m.type !== 'connected') throw new Error(`handshake failed: ${JSON.stringify(m)}`);
    return c;
  }

  send(msg: object): void {
    this.socket.write(encodeFrame(msg));
  }

  write(bytes: Buffer | Uint8Array): void {
    this.socket.write(bytes);
  }

  /** A frame with an explicit length header and payload. */
  writeFrame(payload: Buffer | string, length?: number): void {
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const h = Buffer.alloc(4);
    h.writeUInt32BE(length ?? body.length);
    this.socket.write(Buffer.concat([h, body]));
  }

  /** The next message not yet taken, waiting up to `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.#ended) throw new Error('connection ended while waiting for a message');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return this.messages.shift() as ServerMessage;
  }

  /** Wait until the server closes the connection; returns the messages left unread. */
  async untilClosed(timeoutMs = 5000): Promise<ServerMessage[]> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise((_r, reject) => { timer = setTimeout(() => reject(new Error(`connection not closed within ${timeoutMs} ms`)), timeoutMs); })]);
    clearTimeout(timer);
    return this.messages.splice(0);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
