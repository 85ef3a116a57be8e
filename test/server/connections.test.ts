// Many clients, ids, churn, disconnects mid-frame, slow consumers, long-lived connections.
import test from 'ava';
import { FugueClient } from '../../src/client/client.js';
import { encodeFrame } from '../../src/protocol/index.js';
import { record } from '../helpers/feature.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait-for.js';

test('serves 200 concurrent clients, each with its own traffic', async (t) => {
  const server = await startServer(t, { maxClients: 1024 });
  const clients = await Promise.all(Array.from({ length: 200 }, (_, i) => FugueClient.connect(server.socketPath, { clientName: `c${i}` })));
  t.is(server.clientCount(), 200);
  const replies = await Promise.all(clients.map((c, i) => Promise.all([c.echo({ i }), c.ping(), c.echo(`s${i}`)])));
  replies.forEach(([e1, p, e2], i) => {
    t.deepEqual(e1.data, { i });
    t.is(p.type, 'pong');
    t.is(e2.data, `s${i}`);
  });
  t.is(new Set(clients.map((c) => c.connected?.client_id)).size, 200);
  await Promise.all(clients.map((c) => c.detach()));
  await waitFor(() => server.clientCount() === 0, { what: 'all clients gone' });
});

test('client ids are unique for the server lifetime, across thousands of rapid connect/disconnect cycles', async (t) => {
  const server = await startServer(t);
  const ids = new Set<number>();
  let n = 0;
  for (let round = 0; round < 40; round++) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => FugueClient.connect(server.socketPath)));
    for (const c of batch) ids.add(c.connected!.client_id);
    n += batch.length;
    // Alternate clean detach and abrupt close.
    await Promise.all(batch.map((c, i) => (i % 2 ? c.detach() : (c.destroy(), c.closed()))));
  }
  t.is(n, 2000);
  t.is(ids.size, 2000);
  await waitFor(() => server.clientCount() === 0, { what: 'registry empty after churn' });
  const c = await FugueClient.connect(server.socketPath);
  t.false(ids.has(c.connected!.client_id));
  c.destroy();
});

test('single connect and disconnect: cleanup runs exactly once with reason client_eof', async (t) => {
  const server = await startServer(t);
  const closes = record(t, server.view, 'closed');
  const c = await RawClient.handshaken(server.socketPath);
  c.send({ type: 'ping' });
  await c.next();
  c.end();
  await c.closed;
  await waitFor(() => closes.length === 1, { what: 'one close' });
  t.is(closes[0]!.reason, 'client_eof');
  t.is(closes[0]!.messagesIn, 2);
  t.is(closes[0]!.messagesOut, 2);
  t.is(server.clientCount(), 0);
});

test('a client that disconnects in the middle of a frame is cleaned up and the partial frame reported', async (t) => {
  const server = await startServer(t);
  const closes = record(t, server.view, 'closed');
  const c = await RawClient.handshaken(server.socketPath);
  const frame = encodeFrame({ type: 'echo', data: 'x'.repeat(100) });
  c.write(frame.subarray(0, 50));
  c.destroy(); // data already written reaches the server before the close

  await waitFor(() => closes.length === 1, { what: 'close recorded' });
  t.true(['client_eof', 'client_reset'].includes(closes[0]!.reason));
  t.is(closes[0]!.partialFrameBytes, 50);
  // The server still serves others.
  const d = await FugueClient.connect(server.socketPath);
  t.is((await d.ping()).type, 'pong');
  d.destroy();
});

test('requests sent just before the client half-closes are still answered', async (t) => {
  const server = await startServer(t);
  const c = await RawClient.handshaken(server.socketPath);
  c.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => encodeFrame({ type: 'echo', id: i, data: i }))));
  c.end();
  const msgs = await c.untilClosed();
  t.deepEqual(msgs.map((m) => m.id), Array.from({ length: 100 }, (_, i) => i));
});

test('a client that stops reading is disconnected at maxBufferedBytes; others are unaffected', async (t) => {
  const server = await startServer(t, { maxFrameBytes: 65536, maxBufferedBytes: 256 * 1024 });
  const closes = record(t, server.view, 'closed');
  const slow = await RawClient.handshaken(server.socketPath, 'slow');
  slow.socket.pause(); // never read again
  const good = await FugueClient.connect(server.socketPath);
  const data = 'y'.repeat(60_000);
  const frame = encodeFrame({ type: 'echo', data });
  // Keep sending until the server cuts us off (bounded by a count).
  for (let i = 0; i < 400 && !slow.socket.destroyed && closes.length === 0; i++) {
    if (!slow.socket.write(frame)) await new Promise((r) => { slow.socket.once('drain', r); setTimeout(r, 50); });
  }
  await waitFor(() => closes.find((c) => c.reason === 'slow_consumer'), { what: 'slow consumer disconnected' });
  t.is((await good.echo('fine')).data, 'fine');
  good.destroy();
  slow.destroy();
});

test('a long-running connection exchanges messages for several seconds', async (t) => {
  const idleTimeoutMs = 1000;
  const server = await startServer(t, { idleTimeoutMs });
  const c = await FugueClient.connect(server.socketPath);
  const start = Date.now();
  const until = start + 4 * idleTimeoutMs;
  let n = 0;
  let lastReply = start;
  while (Date.now() < until) {
    const r = await c.echo(n);
    t.is(r.data, n);
    lastReply = Date.now();
    n++;
    if (n % 50 === 0) await new Promise((r2) => setTimeout(r2, 20)); // pacing
  }
  // Traffic keeps the idle timer from firing: replies still came long after one idle timeout.
  t.true(lastReply - start >= 3 * idleTimeoutMs, `last reply ${lastReply - start} ms in, after ${n} exchanges`);
  const s = await c.status();
  t.is(s.clients, 1);
  await c.detach();
});
