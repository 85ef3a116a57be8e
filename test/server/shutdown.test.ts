// Graceful drain through the programmatic API (signals are tested in test/cli).
import test from 'ava';
import { existsSync } from 'node:fs';
import { FugueClient } from '../../src/client/client.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { onceWithin } from '../helpers/wait-for.js';

test('close() sends shutdown with timeout_ms to every client, removes the socket at once, and resolves when they leave', async (t) => {
  const server = await startServer(t, { shutdownTimeoutMs: 5000 });
  const clients = await Promise.all(Array.from({ length: 20 }, () => FugueClient.connect(server.socketPath)));
  // Each client leaves when told to.
  const notices = clients.map((c) =>
    onceWithin<{ type: string; reason: string; timeout_ms: number }>(c, 'message', 5000, 'shutdown notice').then(async (m) => {
      await c.detach();
      return m;
    }),
  );
  const closing = server.close('test shutdown');
  t.false(existsSync(server.socketPath), 'socket file removed as soon as the drain starts');
  t.is(server.state, 'draining');
  const got = await Promise.all(notices);
  for (const m of got) t.deepEqual(m, { type: 'shutdown', reason: 'test shutdown', timeout_ms: 5000 });
  const result = await closing;
  t.is(result.left, 20);
  t.is(result.forced, 0);
  t.is(server.state, 'closed');
});

test('clients still connected at the deadline are closed and counted as forced', async (t) => {
  const server = await startServer(t, { shutdownTimeoutMs: 200 });
  const stay = await RawClient.handshaken(server.socketPath);
  const leave = await FugueClient.connect(server.socketPath);
  leave.once('message', () => void leave.detach());
  const result = await server.close();
  t.is(result.forced, 1);
  t.is(result.left, 1);
  t.true(result.durationMs >= 190);
  const msgs = await stay.untilClosed();
  t.like(msgs[0], { type: 'shutdown', timeout_ms: 200 });
});

test('requests sent during the drain are still answered before the connection closes', async (t) => {
  const server = await startServer(t, { shutdownTimeoutMs: 3000 });
  const c = await FugueClient.connect(server.socketPath);
  const notice = onceWithin(c, 'message', 3000, 'shutdown notice');
  const closing = server.close();
  await notice;
  const r = await c.echo('late');
  t.is(r.data, 'late');
  const s = await c.status();
  t.is(s.draining, true);
  await c.detach();
  t.is((await closing).forced, 0);
});

test('close() is idempotent: concurrent and repeated calls share one drain', async (t) => {
  const server = await startServer(t, { shutdownTimeoutMs: 100 });
  const c = await RawClient.handshaken(server.socketPath);
  const a = server.close();
  const b = server.close();
  t.is(a, b);
  const [ra, rb] = await Promise.all([a, b]);
  t.is(ra, rb);
  t.is(await server.close(), ra);
  const msgs = await c.untilClosed();
  t.is(msgs.filter((m) => m.type === 'shutdown').length, 1, 'exactly one shutdown notice');
});

test('no new connections are accepted once the drain has started', async (t) => {
  const server = await startServer(t, { shutdownTimeoutMs: 1000 });
  const c = await RawClient.handshaken(server.socketPath);
  const closing = server.close();
  await t.throwsAsync(RawClient.connect(server.socketPath), { code: 'ENOENT' });
  c.destroy();
  await closing;
});
