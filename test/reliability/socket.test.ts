// The socket survives its environment: concurrent starts, deleted sockets,
// rolling restarts, other users. Real server processes throughout.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { testNeeding } from '../helpers/needs.js';
import { httpPortOf, spawnServer, type Spawned } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';
import { scrapeSample } from '../helpers/scrape.js';

async function staleSocketAt(path: string): Promise<void> {
  const l = createServer();
  const tmp = `${path}.tmp`;
  await new Promise<void>((r) => l.listen(tmp, r));
  renameSync(tmp, path);
  await new Promise<void>((r) => l.close(() => r()));
}

test('five servers started at the same instant on one path (with a stale socket there): exactly one serves, the others exit 69', async (t) => {
  t.timeout(60_000);
  for (let round = 0; round < 3; round++) {
    const sock = join(tmpDir(t), 'f.sock');
    await staleSocketAt(sock);
    const servers: Spawned[] = Array.from({ length: 5 }, () => spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } }));
    // Four must exit "already running"; wait for those, then for the winner.
    const exits = await waitFor(() => {
      const done = servers.filter((s) => s.child.exitCode !== null);
      return done.length >= 4 ? done : undefined;
    }, { what: 'four servers to exit', timeoutMs: 30_000 });
    t.is(exits.length, 4, `round ${round}: exactly four exit`);
    await Promise.all(exits.map((s) => s.exited)); // their stderr fully read
    for (const s of exits) {
      t.is(s.child.exitCode, 69, s.stderr);
      t.regex(s.stderr, /already running at/);
    }
    const winner = servers.find((s) => s.child.exitCode === null)!;
    await winner.ready();
    t.is(readFileSync(`${sock}.pid`, 'utf8').trim(), String(winner.child.pid));
    const c = await FugueClient.connect(sock);
    t.is((await c.ping()).type, 'pong');
    await c.detach();
    winner.child.kill('SIGTERM');
    t.is((await winner.exited).code, 0);
    t.false(existsSync(sock));
  }
});

test('a deleted socket file is noticed and re-created; readiness is 503 until it is back; clients keep working', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SOCKET_CHECK_INTERVAL_MS: '100' } });
  await s.ready();
  const port = await waitFor(() => httpPortOf(s), { what: 'sidecar port' });
  const before = await FugueClient.connect(sock);
  const ino = lstatSync(sock).ino;

  // 1. A plain delete (a tmp cleaner): the socket comes back at the same path.
  unlinkSync(sock);
  await waitFor(() => existsSync(sock) && lstatSync(sock).ino !== ino, { what: 'socket re-created', timeoutMs: 5000 });
  const after = await FugueClient.connect(sock);
  t.is((await after.ping()).type, 'pong');
  t.is((await before.echo('still here')).data, 'still here', 'a connection from before the loss keeps working');
  t.is(await scrapeSample(port, 'fugue_socket_rebinds_total'), 1);
  t.truthy(s.logs.find((l) => l.msg === 'socket re-created'));

  // 2. Replaced by something that is not a socket: never deleted, readiness 503 until it goes.
  const blocker = join(tmpDir(t), 'blocker');
  writeFileSync(blocker, 'not a socket');
  renameSync(blocker, sock);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 503, { what: 'readyz 503', timeoutMs: 5000 });
  const r = await (await fetch(`http://127.0.0.1:${port}/readyz`)).json() as { reason: string };
  t.regex(r.reason, /socket file missing/);
  t.is(await scrapeSample(port, 'fugue_socket_listening'), 0);
  t.is((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  t.is(readFileSync(sock, 'utf8'), 'not a socket');
  unlinkSync(sock);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'readyz 200 again', timeoutMs: 5000 });
  t.true(lstatSync(sock).isSocket());
  t.is(await scrapeSample(port, 'fugue_socket_rebinds_total'), 2);
  const third = await FugueClient.connect(sock);
  t.is((await third.ping()).type, 'pong');

  await Promise.all([before.detach(), after.detach(), third.detach()]);
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  t.false(existsSync(sock));
});

test('rolling restart: B starts and serves while A drains; when A finishes, B still owns the socket', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const a = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '20000', FUGUE_SOCKET_CHECK_INTERVAL_MS: '50' } });
  await a.ready();
  const holder = await FugueClient.connect(sock); // keeps A draining
  a.child.kill('SIGTERM');
  await a.waitLog((l) => l.msg.startsWith('drain started'), 'A draining');
  const b = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SOCKET_CHECK_INTERVAL_MS: '50' } });
  await b.ready();
  const ino = lstatSync(sock).ino;
  const c = await FugueClient.connect(sock);
  t.is((await c.status()).clients, 1, 'the new client reached B');
  // A keeps serving its own client while draining, and does not "heal" the socket.
  t.is((await holder.echo('old')).data, 'old');
  await holder.detach();
  t.is((await a.exited).code, 0);
  t.true(existsSync(sock));
  t.is(lstatSync(sock).ino, ino, "B's socket is untouched by A's exit");
  t.is((await c.ping()).type, 'pong');
  const d = await FugueClient.connect(sock);
  t.is((await d.status()).clients, 2);
  await Promise.all([c.detach(), d.detach()]);
  b.child.kill('SIGTERM');
  t.is((await b.exited).code, 0);
});

const NOBODY = 65534;
const canSwitchUid = process.getuid?.() === 0 && spawnSync('python3', ['-c', 'pass'], { uid: NOBODY, gid: NOBODY }).status === 0;

testNeeding({ missing: canSwitchUid ? undefined : `needs root, and python3 runnable as uid ${NOBODY}` }, 'a client running as another uid is denied by the kernel (socket 0600); 0666 lets it in', async (t) => {
  const dir = tmpDir(t);
  chmodSync(dir, 0o711); // others may traverse to the socket, not list or write
  const connectAs = (path: string) =>
    spawnSync('python3', ['-c', 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); print("connected")\nexcept OSError as e:\n print(e.__class__.__name__, e.errno)', path], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' }).stdout.trim();

  const sock = join(dir, 'private.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  t.is(lstatSync(sock).mode & 0o777, 0o600);
  t.is(connectAs(sock), 'PermissionError 13');

  const open = join(dir, 'open.sock');
  const o = spawnServer(t, { env: { FUGUE_SOCKET_PATH: open, FUGUE_SOCKET_MODE: '0666' } });
  await o.ready();
  t.is(connectAs(open), 'connected', 'control: with 0666 the same client gets in');
  s.child.kill('SIGTERM');
  o.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  t.is((await o.exited).code, 0);
});
