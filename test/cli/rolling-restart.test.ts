// A rolling restart on one configuration (the same socket path and the same
// HTTP port), with the real CLI and real signals: the successor serves the
// socket at once and takes the sidecar's port over when the draining
// predecessor exits. docs/operations.md, "Rolling restart".
import test from 'ava';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { freePort } from '../helpers/free-port.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';

async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

test('same socket, same port: the successor serves the socket while the predecessor drains, then takes the port; the predecessor finishes cleanly', async (t) => {
  t.timeout(60_000);
  const sock = join(tmpDir(t), 'f.sock');
  const port = await freePort();
  const env = { FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: String(port), FUGUE_SHUTDOWN_TIMEOUT_MS: '20000' };
  const a = spawnServer(t, { env });
  await a.ready();
  const held = await FugueClient.connect(sock, { clientName: 'held' });
  const notice = onceWithin<Record<string, unknown>>(held, 'message', 5000, 'shutdown notice');
  a.child.kill('SIGTERM');
  await notice; // A is draining, held open by this client

  const draining = await readyz(port);
  t.is(draining?.status, 503);
  t.like(draining?.body, { state: 'draining', service: 'fugue-server', pid: a.child.pid });

  const b = spawnServer(t, { env });
  await b.ready();
  t.like(await b.waitLog((l) => l.msg.startsWith('http port held by a draining fugue-server'), 'handover announced'), { predecessorPid: a.child.pid });
  const fresh = await FugueClient.connect(sock, { clientName: 'fresh' });
  t.is((await fresh.ping()).type, 'pong', 'B serves the socket while A still drains');
  t.is((await held.ping()).type, 'pong', 'A still answers its own client during the drain');
  t.is((await readyz(port))?.body.pid, a.child.pid, 'the port is still A\'s: its drain stays observable');

  await held.detach();
  t.deepEqual(await a.exited, { code: 0, signal: null });
  t.truthy(a.logs.find((l) => l.msg === 'fugue-server stopped'));
  await b.waitLog((l) => l.msg === 'http sidecar listening', 'B takes the port', 15_000);
  const after = await waitFor(async () => {
    const r = await readyz(port);
    return r?.body.pid === b.child.pid ? r : undefined;
  }, { what: 'B to answer /readyz on the port' });
  t.is(after.status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.regex(metrics, /^fugue_active_clients 1$/m, 'B serves /metrics on the configured port');
  t.true(existsSync(sock), 'A did not remove B\'s socket');

  await fresh.detach();
  b.child.kill('SIGTERM');
  t.is((await b.exited).code, 0);
  t.false(existsSync(sock));
});

test('the port held by something that is not a draining fugue-server: exit 75 at once, as before', async (t) => {
  const other = createServer((_req, res) => res.end('{"ready":true}'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.teardown(() => other.close());
  const port = (other.address() as { port: number }).port;
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: String(port) } });
  t.is((await s.exited).code, 75);
  t.regex(s.stderr, /EADDRINUSE/);
  t.false(existsSync(sock));
});
