// The real fugue-server CLI in a child process: signals, exit codes, socket cleanup.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { testNeeding } from '../helpers/needs.js';
import { RawClient } from '../helpers/raw-client.js';
import { SERVER_BIN, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';

function sockIn(t: Parameters<typeof tmpDir>[0]): string {
  return join(tmpDir(t), 'f.sock');
}

test('SIGTERM drains: clients get shutdown, leave, the socket is removed, exit 0, phases logged', async (t) => {
  const sock = sockIn(t);
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '5000' } });
  await s.ready();
  const clients = await Promise.all(Array.from({ length: 10 }, () => FugueClient.connect(sock)));
  const notices = clients.map((c) => onceWithin<Record<string, unknown>>(c, 'message', 5000, 'shutdown').then(async (m) => { await c.detach(); return m; }));
  s.child.kill('SIGTERM');
  for (const m of await Promise.all(notices)) t.like(m, { type: 'shutdown', timeout_ms: 5000 });
  const exit = await s.exited;
  t.deepEqual(exit, { code: 0, signal: null });
  t.false(existsSync(sock));
  t.false(existsSync(`${sock}.pid`));
  const drain = s.logs.find((l) => l.msg.startsWith('drain started'));
  t.is(drain?.clients, 10);
  const done = s.logs.find((l) => l.msg === 'drain finished');
  t.like(done, { left: 10, forced: 0 });
  t.is(typeof done?.durationMs, 'number');
  t.is(s.logs.filter((l) => l.msg === 'client disconnected').length, 10);
});

test('SIGINT drains too; clients that stay are closed at the timeout and counted as forced', async (t) => {
  const sock = sockIn(t);
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '300' } });
  await s.ready();
  const stay = await RawClient.handshaken(sock);
  s.child.kill('SIGINT');
  const msgs = await stay.untilClosed(5000);
  t.like(msgs[0], { type: 'shutdown', timeout_ms: 300 });
  t.deepEqual(await s.exited, { code: 0, signal: null });
  t.like(s.logs.find((l) => l.msg === 'drain finished'), { forced: 1, left: 0 });
  t.like(s.logs.find((l) => l.msg === 'client disconnected'), { reason: 'shutdown_forced' });
  t.false(existsSync(sock));
});

test('a second signal during the drain exits at once with 128+signal and removes the socket', async (t) => {
  const sock = sockIn(t);
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '60000' } });
  await s.ready();
  const stay = await RawClient.handshaken(sock);
  s.child.kill('SIGTERM');
  await s.waitLog((l) => l.msg.startsWith('drain started'), 'drain started');
  s.child.kill('SIGTERM');
  const exit = await s.exited;
  t.is(exit.code, 143);
  t.false(existsSync(sock));
  await stay.untilClosed();
});

test('after kill -9 the stale socket is detected and a restarted server serves at once', async (t) => {
  const sock = sockIn(t);
  const a = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await a.ready();
  const c = await FugueClient.connect(sock);
  a.child.kill('SIGKILL');
  await a.exited;
  await c.closed();
  t.true(lstatSync(sock).isSocket(), 'kill -9 leaves the socket file behind');
  const b = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await b.ready();
  t.truthy(b.logs.find((l) => l.msg.startsWith('removed stale socket')));
  const d = await FugueClient.connect(sock);
  t.is((await d.ping()).type, 'pong');
  await d.detach();
  b.child.kill('SIGTERM');
  t.is((await b.exited).code, 0);
});

test('a second server on a live socket exits 69 with "already running" and its pid, touching nothing', async (t) => {
  const sock = sockIn(t);
  const a = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await a.ready();
  const ino = lstatSync(sock).ino;
  const b = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  const exit = await b.exited;
  t.is(exit.code, 69);
  t.regex(b.stderr, new RegExp(`already running at ${sock}.*pid ${a.child.pid}`));
  t.is(lstatSync(sock).ino, ino);
  const c = await FugueClient.connect(sock);
  t.is((await c.ping()).type, 'pong');
  await c.detach();
});

test('a non-socket file at the socket path: exit 73, file left intact', async (t) => {
  const sock = sockIn(t);
  writeFileSync(sock, 'keep me');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  t.is((await s.exited).code, 73);
  t.regex(s.stderr, /is a regular file, not a socket/);
  t.true(lstatSync(sock).isFile());
});

test('an unsafe socket directory: exit 77 with the fix in the message', async (t) => {
  const dir = join(tmpDir(t), 'shared');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: join(dir, 'f.sock') } });
  t.is((await s.exited).code, 77);
  t.regex(s.stderr, /writable by every user \(mode 0777\).*chmod go-w/);
});

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const nobodyCanRead = () => spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(SERVER_BIN)})`], { uid: NOBODY, gid: NOBODY }).status === 0;

// A checkout inside a private (0700) directory, as CI's may be, is not reachable
// by an unprivileged uid: grant search (x) permission on its ancestors for this
// test only, and restore the modes afterwards.
function letOthersTraverse(t: Parameters<typeof tmpDir>[0]): void {
  const restore: Array<[string, number]> = [];
  // The built server, and the node binary itself (CI's Node 24 lives in a private temp dir).
  for (const start of [dirname(SERVER_BIN), dirname(process.execPath)]) {
    for (let dir = start; dir !== '/'; dir = dirname(dir)) {
      const mode = statSync(dir).mode & 0o7777;
      if ((mode & 0o001) === 0 && !restore.some(([d]) => d === dir)) {
        restore.push([dir, mode]);
        chmodSync(dir, mode | 0o001);
      }
    }
  }
  t.teardown(() => {
    for (const [dir, mode] of restore) chmodSync(dir, mode);
  });
}

testNeeding({ missing: isRoot ? undefined : `needs root, to run the server as uid ${NOBODY}`, serial: true }, 'permission denied: as an unprivileged uid in a directory it may not write, exit 77 and a clear message', async (t) => {
  if (!nobodyCanRead()) letOthersTraverse(t);
  t.true(nobodyCanRead(), 'uid 65534 can read the built server');
  const root = tmpDir(t); // 0700, owned by root
  chmodSync(root, 0o755); // others may traverse, not write
  const home = join(root, 'home');
  mkdirSync(home);
  const sock = join(root, 'sub', 'f.sock');
  const s = spawnServer(t, { uid: NOBODY, gid: NOBODY, env: { FUGUE_SOCKET_PATH: sock, HOME: home } });
  const exit = await s.exited;
  t.is(exit.code, 77, s.stderr);
  t.regex(s.stderr, new RegExp(`${join(root, 'sub')}.*EACCES`));
  t.false(existsSync(join(root, 'sub')));
});

test('the HTTP port in use: exit 75 with a clear message and no socket left behind', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const sock = sockIn(t);
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: String(port) } });
  t.is((await s.exited).code, 75);
  t.regex(s.stderr, new RegExp(`127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\).*http\\.port`));
  t.false(existsSync(sock));
});

test('a bad config value: exit 78 naming the key, the value, its source and what is expected', async (t) => {
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sockIn(t), FUGUE_MAX_CLIENTS: 'lots' } });
  t.is((await s.exited).code, 78);
  t.regex(s.stderr, /limits\.maxClients: must be an integer from 1 to 1000000, got "lots" \(from env FUGUE_MAX_CLIENTS; expected connections\)/);
});

test('an unknown flag: exit 64', async (t) => {
  const s = spawnServer(t, { args: ['--frobnicate'] });
  t.is((await s.exited).code, 64);
  t.regex(s.stderr, /unknown flag --frobnicate.*--help/);
});

test('--check-config validates and exits 0; --print-config prints the effective config', async (t) => {
  const sock = sockIn(t);
  const dir = tmpDir(t);
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ limits: { maxClients: 7 }, log: { level: 'warn' } }));
  const check = spawnServer(t, { args: ['--config', file, '--check-config'], env: { FUGUE_SOCKET_PATH: sock } });
  t.is((await check.exited).code, 0);
  t.regex(check.stdout, /configuration is valid/);
  const print = spawnServer(t, { args: ['--config', file, '--print-config', '--max-clients', '9'], env: { FUGUE_SOCKET_PATH: sock, FUGUE_LOG_LEVEL: 'debug' } });
  t.is((await print.exited).code, 0);
  const cfg = JSON.parse(print.stdout) as { limits: { maxClients: number }; log: { level: string }; socket: { path: string } };
  t.is(cfg.limits.maxClients, 9);
  t.is(cfg.log.level, 'debug');
  t.is(cfg.socket.path, sock);
  t.false(existsSync(sock), '--print-config does not bind');
});

test('npm start -- --config FILE starts the server with that config', async (t) => {
  const sock = sockIn(t);
  const file = join(tmpDir(t), 'c.json');
  writeFileSync(file, JSON.stringify({ socket: { path: sock }, http: { port: 0 } }));
  const { spawn } = await import('node:child_process');
  const child = spawn('npm', ['start', '--silent', '--', '--config', file], { cwd: new URL('../../../', import.meta.url).pathname, env: { ...process.env, npm_config_loglevel: 'silent' }, stdio: 'ignore', detached: true });
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } });
  await waitFor(() => existsSync(sock), { what: 'socket created via npm start', timeoutMs: 60_000 });
  const c = await FugueClient.connect(sock);
  t.is((await c.ping()).type, 'pong');
  await c.detach();
  process.kill(-child.pid!, 'SIGTERM');
  await waitFor(() => !existsSync(sock), { what: 'socket removed after SIGTERM', timeoutMs: 10_000 });
});
