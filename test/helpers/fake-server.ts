// A fake fugue server for client tests: a real `net` server on a Unix socket in
// a fresh temp dir (never a mock of net), whose answers a test scripts,
// malformed ones included.

import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { FrameDecoder } from '../../src/protocol/index.js';
import { tmpDir } from './tmp.js';

/** One client connection as the fake server sees it. */
export interface FakeConnection {
  socket: Socket;
  /** Send raw bytes (no framing). */
  raw(bytes: Uint8Array | string): void;
  /** Send `payload` as one frame (a header with its exact length). */
  frame(payload: Uint8Array | string): void;
  /** Send a message as one JSON frame. */
  send(message: unknown): void;
  /** The well-formed `connected` reply to a `connect` request. */
  connected(request: Record<string, unknown>): void;
}

/** Called for each frame a client sends, parsed as JSON (undefined if it is not JSON). */
export type FakeHandler = (message: Record<string, unknown> | undefined, conn: FakeConnection) => void;

export interface FakeServer {
  path: string;
  server: Server;
  /** Connections accepted so far. */
  connections: Socket[];
}

export function frameOf(payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** Start a fake server that calls `handler` for every frame it receives; closed at teardown. */
export async function startFakeServer(t: ExecutionContext, handler: FakeHandler, path = join(tmpDir(t), 'fake.sock')): Promise<FakeServer> {
  const connections: Socket[] = [];
  const server = createServer((socket) => {
    connections.push(socket);
    socket.on('error', () => { /* the client may go away at any moment */ });
    const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 * 1024 });
    const conn: FakeConnection = {
      socket,
      raw: (bytes) => { if (!socket.destroyed) socket.write(bytes); },
      frame: (payload) => conn.raw(frameOf(payload)),
      send: (message) => conn.frame(JSON.stringify(message)),
      connected: (request) => conn.send({ type: 'connected', id: request.id, protocol_version: 1, server_version: '9.9.9-fake', client_id: 1 }),
    };
    socket.on('data', (chunk: Buffer) => {
      for (const payload of decoder.push(chunk)) {
        let msg: Record<string, unknown> | undefined;
        try {
          msg = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
        } catch {
          msg = undefined;
        }
        handler(msg, conn);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  t.teardown(() => {
    for (const s of connections) s.destroy();
    server.close();
  });
  return { path, server, connections };
}

/** A handler that completes the handshake, then answers every other request with `answer`. */
export function afterHandshake(answer: (msg: Record<string, unknown>, conn: FakeConnection) => void): FakeHandler {
  return (msg, conn) => {
    if (msg?.type === 'connect') conn.connected(msg);
    else if (msg?.type === 'detach') conn.socket.end();
    else if (msg !== undefined) answer(msg, conn);
  };
}
