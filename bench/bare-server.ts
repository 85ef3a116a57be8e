// The benchmark's baseline: the smallest Node server that speaks protocol v1
// (docs/protocol.md) correctly enough for the load generator. It does what any
// Node implementation of the protocol must do -- decode frames, JSON.parse each
// payload, JSON.stringify each reply, one coalesced write() per incoming chunk --
// and nothing else: no logs, no metrics, no spans, no limits beyond a frame cap.
// fugue-server's numbers are reported as a ratio to this one, measured in the
// same run on the same machine, so the ratio is the cost of everything fugue adds.
//
// The fan-out rows' two types (bench/fanout-feature.ts has fugue's side) are
// written the way a user would write a broadcast: JSON.stringify and a frame
// once per message, then one socket.write() per subscriber, without bounds.
//
// Usage: node dist/bench/bare-server.js <socket path>
// It deliberately imports nothing from src/: the baseline must not inherit the
// code it is the baseline for.

import { createServer, type Socket } from 'node:net';
import { readFileSync, unlinkSync } from 'node:fs';

const socketPath = process.argv[2];
if (socketPath === undefined) {
  process.stderr.write('usage: bare-server <socket path>\n');
  process.exit(64);
}

// Same version string as fugue so `connected` replies are the same size.
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const MAX_FRAME = 16 * 1024 * 1024;
const startedAt = performance.now();
let nextClientId = 1;
let clients = 0;

type Msg = { type?: unknown; id?: unknown; data?: unknown; protocol_version?: unknown; n?: unknown; size?: unknown };

// Fan-out: the subscribed sockets, the next message's sequence number, a payload per size.
const subscribers = new Set<Socket>();
let seq = 1;
const payloads = new Map<number, string>();

// n messages to every subscriber: each serialised and framed once, written to each socket.
function publish(n: number, size: number): Record<string, unknown> {
  let data = payloads.get(size);
  if (data === undefined) payloads.set(size, (data = 'x'.repeat(size)));
  for (let i = 0; i < n; i++) {
    const json = JSON.stringify({ type: 'bench.msg', seq: seq++, data });
    const frame = Buffer.allocUnsafe(4 + Buffer.byteLength(json));
    frame.writeUInt32BE(frame.length - 4, 0);
    frame.write(json, 4, 'utf8');
    for (const s of subscribers) s.write(frame);
  }
  return { type: 'bench.published', n, sent: n * subscribers.size, dropped: 0 };
}

const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

// One reply batch -> one Buffer -> one write(). Buffer.byteLength then write()
// into a single allocation, as fugue's encodeJsonFrames does.
function writeBatch(socket: Socket, out: string[]): void {
  let total = 0;
  const sizes = new Array<number>(out.length);
  for (let i = 0; i < out.length; i++) {
    const n = Buffer.byteLength(out[i] as string);
    sizes[i] = n;
    total += 4 + n;
  }
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < out.length; i++) {
    buf.writeUInt32BE(sizes[i] as number, off);
    off += 4;
    off += buf.write(out[i] as string, off, 'utf8');
  }
  socket.write(buf);
}

function serve(socket: Socket): void {
  const clientId = nextClientId++;
  clients++;
  let handshaken = false;
  let closing = false;
  // Incremental decoder state. Frames inside a chunk are decoded in place; only
  // a frame that spans chunks is copied, once, into a buffer of its exact size
  // (a Buffer.concat of the whole pending tail per read would make the baseline
  // slower than fugue for large frames, which is not a useful baseline).
  const header = Buffer.alloc(4);
  let headerFilled = 0;
  let body: Buffer | undefined;
  let bodyFilled = 0;
  let out: string[] = [];

  // Handle one payload; replies go to `out`, written once per chunk.
  const onFrame = (buf: Buffer, start: number, end: number): void => {
    let msg: Msg;
    try {
      msg = JSON.parse(buf.toString('utf8', start, end)) as Msg;
    } catch {
      out.push('{"type":"error","code":"bad_message","message":"payload is not valid JSON"}');
      return;
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') {
      out.push('{"type":"error","code":"bad_message","message":"expected an object with a string type"}');
      return;
    }
    const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : undefined;
    let reply: Record<string, unknown> | undefined;
    if (!handshaken && msg.type !== 'connect') {
      reply = { type: 'error', code: 'handshake_required', message: 'send "connect" first' };
    } else {
      switch (msg.type) {
        case 'connect':
          if (handshaken) {
            reply = { type: 'error', code: 'already_connected', message: 'already connected' };
          } else if (msg.protocol_version !== 1) {
            reply = { type: 'error', code: 'unsupported_version', message: 'this server speaks protocol 1', supported: [1], server_version: VERSION };
            closing = true;
          } else {
            handshaken = true;
            reply = { type: 'connected', protocol_version: 1, server_version: VERSION, client_id: clientId };
          }
          break;
        case 'ping':
          reply = { type: 'pong' };
          break;
        case 'echo':
          reply = { type: 'echo', data: msg.data };
          break;
        case 'status':
          reply = { type: 'status', server_version: VERSION, uptime_ms: Math.floor(performance.now() - startedAt), clients, draining: false };
          break;
        case 'detach':
          closing = true;
          break;
        case 'bench.subscribe':
          subscribers.add(socket);
          reply = { type: 'bench.subscribed', subscribers: subscribers.size };
          break;
        case 'bench.publish':
          reply = isCount(msg.n, 1) && isCount(msg.size, 0) ? publish(msg.n, msg.size) : { type: 'error', code: 'bad_message', message: 'n and size must be integers' };
          break;
        default:
          reply = { type: 'error', code: 'unknown_type', message: `unknown message type ${JSON.stringify(msg.type)}` };
      }
    }
    if (reply !== undefined) {
      if (id !== undefined) reply.id = id;
      out.push(JSON.stringify(reply));
    }
  };

  socket.on('data', (chunk: Buffer) => {
    if (closing) return;
    let off = 0;
    const len = chunk.length;
    while (off < len && !closing) {
      if (body === undefined) {
        let frameLen: number;
        if (headerFilled === 0 && len - off >= 4) {
          frameLen = chunk.readUInt32BE(off);
          off += 4;
        } else {
          const n = Math.min(4 - headerFilled, len - off);
          chunk.copy(header, headerFilled, off, off + n);
          headerFilled += n;
          off += n;
          if (headerFilled < 4) break;
          headerFilled = 0;
          frameLen = header.readUInt32BE(0);
        }
        if (frameLen > MAX_FRAME) {
          // The stream cannot be resynchronised: answer and close, like fugue.
          out.push(JSON.stringify({ type: 'error', code: 'frame_too_large', message: `frame length ${frameLen} exceeds ${MAX_FRAME}` }));
          closing = true;
          break;
        }
        if (len - off >= frameLen) {
          onFrame(chunk, off, off + frameLen);
          off += frameLen;
          continue;
        }
        body = Buffer.allocUnsafe(frameLen);
        bodyFilled = 0;
      } else {
        const n = Math.min(body.length - bodyFilled, len - off);
        chunk.copy(body, bodyFilled, off, off + n);
        bodyFilled += n;
        off += n;
        if (bodyFilled === body.length) {
          const b = body;
          body = undefined;
          onFrame(b, 0, b.length);
        }
      }
    }
    if (out.length > 0) {
      writeBatch(socket, out);
      out = [];
    }
    // detach / fatal error: everything owed is queued above; end() sends FIN after it.
    if (closing) socket.end();
  });
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    clients--;
    subscribers.delete(socket);
  });
}

const server = createServer({ allowHalfOpen: true }, serve);
// A stale socket from an earlier crashed run would make listen() fail.
try {
  unlinkSync(socketPath);
} catch {
  // absent: the usual case
}
server.listen({ path: socketPath, backlog: 511 });

// Shutdown is abrupt on purpose (the harness only stops it); remove the socket.
const stop = () => {
  server.close();
  try {
    unlinkSync(socketPath);
  } catch {
    // already gone
  }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
