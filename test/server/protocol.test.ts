// Protocol v1 over a real Unix socket, against an in-process server.
import test from 'ava';
import { encodeFrame } from '../../src/protocol/index.js';
import { FugueServer } from '../../src/server/server.js';
import { featureOf } from '../helpers/feature.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait-for.js';

test('connect returns connected with protocol_version, server_version and a client_id', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.connect(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'connect', protocol_version: 1, client_name: 'tester', id: 'h1' });
  const m = await c.next();
  t.like(m, { type: 'connected', id: 'h1', protocol_version: 1, server_version: '0.0.0-test' });
  t.true(Number.isInteger(m.client_id));
});

test('ping, echo and status reply with the request id', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'ping', id: 1 });
  t.deepEqual(await c.next(), { type: 'pong', id: 1 });
  const data = { nested: [1, 'two', { three: null }], emoji: '✓ ü' };
  c.send({ type: 'echo', id: 'e', data });
  t.deepEqual(await c.next(), { type: 'echo', id: 'e', data });
  c.send({ type: 'status', id: 3 });
  const s = await c.next();
  t.like(s, { type: 'status', id: 3, server_version: '0.0.0-test', clients: 1, draining: false });
  t.true((s.uptime_ms as number) >= 0);
});

test('a message without id gets a reply without id', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'ping' });
  t.deepEqual(await c.next(), { type: 'pong' });
});

test('replies come in request order for many pipelined requests', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  const n = 2000;
  c.write(Buffer.concat(Array.from({ length: n }, (_, i) => encodeFrame(i % 2 ? { type: 'ping', id: i } : { type: 'echo', id: i, data: i }))));
  for (let i = 0; i < n; i++) t.is((await c.next()).id, i);
});

test('detach: the server flushes owed replies and closes the connection cleanly', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  c.write(Buffer.concat([encodeFrame({ type: 'ping', id: 1 }), encodeFrame({ type: 'echo', id: 2, data: 'x' }), encodeFrame({ type: 'detach' })]));
  const left = await c.untilClosed();
  t.deepEqual(left.map((m) => m.id), [1, 2]);
});

test('the status count follows clients connecting and leaving', async (t) => {
  const server = await startServer(t);
  const a = await RawClient.handshaken(server.socketPath);
  const b = await RawClient.handshaken(server.socketPath);
  a.send({ type: 'status' });
  t.is((await a.next()).clients, 2);
  b.end();
  await b.closed;
  await waitFor(() => server.clientCount() === 1, { what: 'the server to see b leave' });
  a.send({ type: 'status' });
  t.is((await a.next()).clients, 1);
  a.destroy();
});

// --- every error code ---

test('bad_message for every malformed payload, and the connection stays open', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  const payloads: Array<[Buffer | string, RegExp]> = [
    ['', /empty frame/],
    [Buffer.from([0xc3, 0x28]), /UTF-8/],
    ['{not json', /JSON/],
    ['[1]', /not a JSON object/],
    ['42', /not a JSON object/],
    ['{"id":1}', /missing field "type"/],
    ['{"type":null}', /"type" must be a string/],
    ['{"type":"ping","id":[1]}', /"id"/],
    ['{"type":"echo"}', /missing field "data"/],
    ['{"type":"connect","protocol_version":"1"}', /protocol_version/],
  ];
  for (const [p, re] of payloads) {
    c.writeFrame(p);
    const m = await c.next();
    t.is(m.type, 'error');
    t.is(m.code, 'bad_message', String(p));
    t.regex(m.message as string, re);
  }
  c.send({ type: 'ping', id: 'still-open' });
  t.deepEqual(await c.next(), { type: 'pong', id: 'still-open' });
});

test('bad_message keeps the id when the id is valid', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'echo', id: 9 });
  t.like(await c.next(), { type: 'error', id: 9, code: 'bad_message' });
});

test('handshake_required before connect, for known and unknown types, connection stays open', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.connect(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'ping', id: 1 });
  t.like(await c.next(), { type: 'error', id: 1, code: 'handshake_required' });
  c.send({ type: 'no-such-type', id: 2 });
  t.like(await c.next(), { type: 'error', id: 2, code: 'handshake_required' });
  c.send({ type: 'connect', protocol_version: 1 });
  t.is((await c.next()).type, 'connected');
});

test('already_connected on a second connect', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'connect', protocol_version: 1, id: 5 });
  t.like(await c.next(), { type: 'error', id: 5, code: 'already_connected' });
});

test('unsupported_version lists supported versions and the server version, then closes', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.connect(server.socketPath);
  c.send({ type: 'connect', protocol_version: 2, id: 1 });
  const [m, ...rest] = await c.untilClosed();
  t.like(m, { type: 'error', id: 1, code: 'unsupported_version', supported: [1], server_version: '0.0.0-test' });
  t.regex(m!.message as string, /upgrade fugue-server/);
  t.deepEqual(rest, []);
});

test('unknown_type names the type and the known ones; the connection stays open', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'frobnicate', id: 1 });
  const m = await c.next();
  t.like(m, { type: 'error', id: 1, code: 'unknown_type' });
  t.regex(m.message as string, /"frobnicate".*connect, detach, ping, echo, status/);
  c.send({ type: 'ping', id: 2 });
  t.is((await c.next()).type, 'pong');
});

test('frame_too_large is replied and the connection closed', async (t) => {
  const server = await startServer(t, { maxFrameBytes: 1024, maxBufferedBytes: 1 << 20 });
  const c = await RawClient.handshaken(server.socketPath);
  c.send({ type: 'ping', id: 1 });
  c.writeFrame(Buffer.alloc(10), 1025);
  const msgs = await c.untilClosed();
  t.deepEqual(msgs[0], { type: 'pong', id: 1 });
  t.like(msgs[1], { type: 'error', code: 'frame_too_large' });
  t.regex(msgs[1]!.message as string, /1025.*1024/);
});

test('server_busy when limits.maxClients is reached, then closed; others keep working', async (t) => {
  const server = await startServer(t, { maxClients: 2 });
  const a = await RawClient.handshaken(server.socketPath);
  const b = await RawClient.handshaken(server.socketPath);
  t.teardown(() => { a.destroy(); b.destroy(); });
  const c = await RawClient.connect(server.socketPath);
  const msgs = await c.untilClosed();
  t.is(msgs.length, 1);
  t.like(msgs[0], { type: 'error', code: 'server_busy' });
  t.regex(msgs[0]!.message as string, /maxClients = 2/);
  a.send({ type: 'ping', id: 1 });
  t.is((await a.next()).type, 'pong');
});

test('timeout when no connect arrives within handshakeTimeoutMs', async (t) => {
  const server = await startServer(t, { handshakeTimeoutMs: 100 });
  const c = await RawClient.connect(server.socketPath);
  const msgs = await c.untilClosed();
  t.like(msgs[0], { type: 'error', code: 'timeout' });
  t.regex(msgs[0]!.message as string, /handshakeTimeoutMs/);
});

test('idle timeout closes a silent connection with error timeout; off by default', async (t) => {
  // The timer runs from accept: 150 ms failed when a loaded machine took longer
  // than that to complete the handshake. 1 s still closes the connection promptly.
  const server = await startServer(t, { idleTimeoutMs: 1000 });
  const c = await RawClient.handshaken(server.socketPath);
  const msgs = await c.untilClosed();
  t.like(msgs[0], { type: 'error', code: 'timeout' });
  t.regex(msgs[0]!.message as string, /idleTimeoutMs/);
});

test('internal: a throwing handler gets error internal and the connection survives', async (t) => {
  const server = await startServer(t, { features: [featureOf('boom', { boom: { handle() { throw new Error('kaboom'); } } })] });
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.send({ type: 'boom', id: 1 });
  t.like(await c.next(), { type: 'error', id: 1, code: 'internal' });
  c.send({ type: 'ping', id: 2 });
  t.is((await c.next()).type, 'pong');
});

test('an async handler keeps replies in request order', async (t) => {
  const slow = featureOf('slow', {
    slow: {
      handle: async (msg) => {
        await new Promise((r) => setTimeout(r, 30));
        return { type: 'slow_done', n: msg.n };
      },
    },
  });
  const server = await startServer(t, { features: [slow] });
  const c = await RawClient.handshaken(server.socketPath);
  t.teardown(() => c.destroy());
  c.write(Buffer.concat([encodeFrame({ type: 'slow', id: 1, n: 1 }), encodeFrame({ type: 'ping', id: 2 }), encodeFrame({ type: 'slow', id: 3, n: 3 }), encodeFrame({ type: 'echo', id: 4, data: 4 })]));
  const got = [await c.next(), await c.next(), await c.next(), await c.next()];
  t.deepEqual(got.map((m) => [m.id, m.type]), [[1, 'slow_done'], [2, 'pong'], [3, 'slow_done'], [4, 'echo']]);
});

test('handlers can be registered for new types without touching the pump; duplicates and the handshake types are refused', (t) => {
  const socketPath = '/tmp/unused.sock';
  const server = new FugueServer({ socketPath, version: '1', features: [featureOf('sessions', { 'session.list': { handle: () => ({ type: 'sessions', sessions: [] }) } })] });
  t.true(server.view.catalog.messageTypes.includes('session.list'));
  t.throws(() => new FugueServer({ socketPath, version: '1', features: [featureOf('dup', { ping: { handle: () => undefined } })] }), { message: /feature "dup": a handler for message type "ping" is already registered by feature "core"/ });
  t.throws(() => new FugueServer({ socketPath, version: '1', features: [featureOf('hs', { connect: { handle: () => undefined } })] }), { message: /belongs to the protocol's handshake/ });
});

test('an over-limit frame behind a pending async handler is answered after it, then the connection closes', async (t) => {
  const slow = featureOf('slow', {
    slow: {
      handle: async () => {
        await new Promise((r) => setTimeout(r, 30));
        return { type: 'slow_done' };
      },
    },
  });
  const server = await startServer(t, { features: [slow], maxFrameBytes: 1024, maxBufferedBytes: 1 << 20 });
  const c = await RawClient.handshaken(server.socketPath);
  const big = Buffer.alloc(4);
  big.writeUInt32BE(5000);
  c.write(Buffer.concat([encodeFrame({ type: 'slow', id: 1 }), encodeFrame({ type: 'ping', id: 2 }), big]));
  const msgs = await c.untilClosed();
  t.deepEqual(msgs.map((m) => m.type === 'error' ? m.code : m.type), ['slow_done', 'pong', 'frame_too_large']);
});
