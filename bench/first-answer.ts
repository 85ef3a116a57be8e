// A server's start-up as its first client sees it (bench/README.md, "Start-up,
// per call and at rest"): from just before spawn() until a client, polling the
// socket path, has connected and got the reply to its first request. The
// request is `connect`, the one every client sends first (docs/protocol.md),
// and the reply `connected`: a server that has bound its socket but cannot
// answer yet is not started. The same definition, code and polling serve the
// bare server and fugue.
//
// The client polls every POLL_MS: a connect() refused with ENOENT (no socket
// file yet) or ECONNREFUSED (bound, not listening yet) is retried after that
// pause. The harness runs on core 1 and the server on core 0, so polling takes
// nothing from the server; the result is late by at most one pause plus one
// failed connect() (an attempt every 1.3-2 ms on the 2-core VM, against
// start-ups of 100 ms and more; the report prints the measured period).

import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sleep } from './processes.js';
import { exitedDuringStart, type ServerSpec, type SpawnedServer } from './servers.js';

/** The pause between two connect() attempts, in ms. */
export const POLL_MS = 1;

/** How long a server may take to answer its first client before the run fails, in ms. */
const START_DEADLINE_MS = 15_000;

export interface FirstAnswer {
  /** ms from spawn() to the first connect() that succeeded. */
  connectMs: number;
  /** ms from spawn() to the end of the `connected` reply: the start-up time. */
  answerMs: number;
  /** connect() attempts refused before that (no socket file yet, or not listening yet). */
  refused: number;
}

/** `{"type":"connect",...}` as one length-prefixed frame. */
function connectFrame(): Buffer {
  const body = Buffer.from(JSON.stringify({ type: 'connect', protocol_version: 1, client_name: 'bench-startup', id: 1 }));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

type Attempt = { kind: 'connected'; socket: Socket; at: number } | { kind: 'refused'; errno: string };

function tryConnect(path: string): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => resolve({ kind: 'connected', socket, at: performance.now() }));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve({ kind: 'refused', errno: err.code });
      else reject(new Error(`connect(${path}) failed with ${err.code ?? err.message}, not ENOENT or ECONNREFUSED`));
    });
  });
}

/** The first whole frame the server sends, and when its last byte arrived. */
function firstReply(socket: Socket, path: string): Promise<{ reply: string; at: number }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const fail = (why: string) => reject(new Error(`the first client of ${path} ${why}`));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
      resolve({ reply: buf.subarray(4, 4 + buf.readUInt32BE(0)).toString('utf8'), at: performance.now() });
    });
    socket.once('error', (err) => fail(`lost its connection before a reply: ${err.message}`));
    socket.once('end', () => fail(`was closed by the server before a reply (${buf.length} bytes received)`));
  });
}

/**
 * Poll `server`'s socket until a client connects and gets `connected` back.
 * @throws when the server exits first, answers with anything else, or takes
 * longer than 15 s.
 */
export async function firstAnswer(spec: ServerSpec, server: SpawnedServer): Promise<FirstAnswer> {
  const deadline = server.spawnedAt + START_DEADLINE_MS;
  let refused = 0;
  for (;;) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) throw await exitedDuringStart(spec, server);
    const a = await tryConnect(server.socket);
    if (a.kind === 'connected') {
      const { socket } = a;
      try {
        socket.write(connectFrame());
        const { reply, at } = await firstReply(socket, server.socket);
        if ((JSON.parse(reply) as { type?: unknown }).type !== 'connected') throw new Error(`${spec.id} answered its first connect with ${reply.slice(0, 300)}, not connected`);
        return { connectMs: a.at - server.spawnedAt, answerMs: at - server.spawnedAt, refused };
      } finally {
        socket.destroy();
      }
    }
    refused++;
    if (performance.now() > deadline) {
      throw new Error(`${spec.id} did not answer a first client on ${server.socket} within ${START_DEADLINE_MS / 1000} s (last connect(): ${a.errno}):\n${await server.output()}`);
    }
    await sleep(POLL_MS);
  }
}
