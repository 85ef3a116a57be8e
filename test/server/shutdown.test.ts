// Graceful drain through the programmatic API (signals are tested in test/cli).
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';

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

test('a client still in its handshake when the drain starts gets connected first, then shutdown', async (t) => {
  const server = await startServer(t, { shutdownTimeoutMs: 2000 });
  const c = await RawClient.connect(server.socketPath);
  await waitFor(() => server.clientCount() === 1, { what: 'client registered' });
  const closing = server.close();
  c.send({ type: 'connect', protocol_version: 1, id: 1 });
  t.like(await c.next(), { type: 'connected', id: 1 });
  const notice = await c.next();
  t.is(notice.type, 'shutdown');
  t.true((notice.timeout_ms as number) <= 2000 && (notice.timeout_ms as number) > 0);
  c.send({ type: 'detach' });
  await closing;
});

test('a connection still in the accept backlog when the drain starts is told the server is shutting down, not reset', async (t) => {
  const dir = tmpDir(t);
  const server = await startServer(t, { socketPath: join(dir, 'f.sock'), shutdownTimeoutMs: 1000 });
  const marker = join(dir, 'connected');
  // A separate process connects while this event loop is kept busy, so the
  // server has not accepted it yet when close() runs.
  const py = spawn('python3', ['-c', [
    'import socket,struct,sys,json',
    's=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])',
    'open(sys.argv[2],"w").close()',
    'h=b""',
    'while len(h)<4:',
    '  c=s.recv(4-len(h))',
    '  if not c: print("closed"); sys.exit(0)',
    '  h+=c',
    'n=struct.unpack(">I",h)[0]; b=b""',
    'while len(b)<n: b+=s.recv(n-len(b))',
    'print(b.decode())',
  ].join('\n'), server.socketPath, marker]);
  let out = '';
  py.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => py.on('close', resolve));
  const deadline = Date.now() + 5000;
  while (!existsSync(marker) && Date.now() < deadline); // busy on purpose: no accept may run
  t.true(existsSync(marker), 'the client connected');
  const closing = server.close();
  await exited;
  const msg = JSON.parse(out) as Record<string, unknown>;
  t.like(msg, { type: 'error', code: 'server_busy' });
  t.regex(msg.message as string, /shutting down/);
  await closing;
});
