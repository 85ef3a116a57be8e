// A lean protocol client for load tests: a socket, a frame decoder and
// counters, with messages handed to `onMessage`. Cheap enough for 10,000 at once.

import { createConnection, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/protocol/index.js';

export type Msg = Record<string, unknown> & { type: string; id?: number | string };

/** A socket and a frame decoder; messages go to `onMessage`. */
export class Lite {
  readonly socket: Socket;
  onMessage: (m: Msg) => void = () => {};
  error: NodeJS.ErrnoException | undefined;
  peerEnded = false;
  framesSent = 0;
  framesReceived = 0;
  readonly closed: Promise<void>;
  #decoder = new FrameDecoder({ maxFrameBytes: 0xffff_ffff });

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.#decoder.push(chunk)) {
        this.framesReceived++;
        this.onMessage(JSON.parse(p.toString('utf8')) as Msg);
      }
    });
    socket.on('end', () => (this.peerEnded = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (this.error ??= err));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(path: string): Promise<Lite> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new Lite(s));
      });
    });
  }

  /** Open and complete the handshake; resolves with the server's client_id. */
  static async handshaken(path: string, name: string): Promise<{ c: Lite; clientId: number }> {
    const c = await Lite.open(path);
    const reply = await new Promise<Msg>((resolve, reject) => {
      c.onMessage = resolve;
      c.closed.then(() => reject(new Error(`connection closed during the handshake (${c.error?.code ?? 'EOF'})`)), () => {});
      c.send({ type: 'connect', protocol_version: 1, client_name: name, id: 'hello' });
    });
    c.onMessage = () => {};
    if (reply.type !== 'connected' || reply.id !== 'hello' || typeof reply.client_id !== 'number') throw new Error(`handshake failed: ${JSON.stringify(reply)}`);
    return { c, clientId: reply.client_id };
  }

  send(msg: object): void {
    this.framesSent++;
    this.socket.write(encodeFrame(msg));
  }
}

