// Safe binding: directories, stale sockets, non-socket files, live servers, ownership by inode.
import test from 'ava';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { FugueServer } from '../../src/server/server.js';
import { MAX_SOCKET_PATH_BYTES } from '../../src/server/socket-dir.js';
import { testNeeding } from '../helpers/needs.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { tmpDir } from '../helpers/tmp.js';

const make = (socketPath: string) => new FugueServer({ socketPath, version: '0.0.0-test' });

test('creates the socket at a valid path with mode 0600 and serves on it', async (t) => {
  const dir = tmpDir(t);
  const server = await startServer(t, { socketPath: join(dir, 'f.sock') });
  const st = lstatSync(server.socketPath);
  t.true(st.isSocket());
  t.is(st.mode & 0o777, 0o600);
  t.is(readFileSync(`${server.socketPath}.pid`, 'utf8').trim(), String(process.pid));
  const c = await RawClient.handshaken(server.socketPath);
  c.destroy();
});

test('socket.mode is applied at bind time', async (t) => {
  const server = await startServer(t, { socketMode: 0o660 });
  t.is(lstatSync(server.socketPath).mode & 0o777, 0o660);
});

test('creates missing parent directories with mode 0700', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'a', 'b', 'f.sock');
  await startServer(t, { socketPath: path });
  t.is(statSync(join(dir, 'a')).mode & 0o777, 0o700);
  t.is(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
});

test('removes a stale socket (no listener) and binds', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'f.sock');
  // A real socket file with no listener: bind, then close without unlinking (rename trick).
  const tmp = join(dir, 'old.sock');
  const l = createServer();
  await new Promise<void>((r) => l.listen(tmp, r));
  renameSync(tmp, path);
  await new Promise<void>((r) => l.close(() => r()));
  t.true(lstatSync(path).isSocket());
  await t.throwsAsync(RawClient.connect(path), { code: 'ECONNREFUSED' }, 'the socket is stale: nothing listens on it');
  const server = await startServer(t, { socketPath: path });
  // Served now: the stale socket was replaced by a live one. (Its inode number
  // proves nothing: the file system may give the new socket the old one's.)
  const c = await RawClient.handshaken(server.socketPath);
  c.destroy();
});

for (const [kind, setup] of [
  ['regular file', (p: string) => writeFileSync(p, 'precious')],
  ['directory', (p: string) => mkdirSync(p)],
  ['symbolic link', (p: string) => symlinkSync('/etc/passwd', p)],
] as const) {
  test(`refuses a ${kind} at the socket path and leaves it intact`, async (t) => {
    const dir = tmpDir(t);
    const path = join(dir, 'f.sock');
    setup(path);
    const before = lstatSync(path);
    const err = await t.throwsAsync(make(path).start(), { code: 'FUGUE_ERR_SOCKET_PATH_NOT_SOCKET' });
    t.regex(err!.message, new RegExp(`${path}.*${kind}.*never deletes`));
    const after = lstatSync(path);
    t.is(after.ino, before.ino);
    if (kind === 'regular file') t.is(readFileSync(path, 'utf8'), 'precious');
  });
}

test('refuses to start while another server serves the path, naming its pid, touching nothing', async (t) => {
  const first = await startServer(t);
  const ino = lstatSync(first.socketPath).ino;
  const err = await t.throwsAsync(make(first.socketPath).start(), { code: 'FUGUE_ERR_SOCKET_IN_USE' });
  t.regex(err!.message, new RegExp(`already running at ${first.socketPath}.*pid ${process.pid}`));
  t.is(lstatSync(first.socketPath).ino, ino);
  const c = await RawClient.handshaken(first.socketPath);
  c.destroy();
});

test('refuses a group- or world-writable socket directory without changing anything', async (t) => {
  for (const mode of [0o770, 0o707, 0o777]) {
    const dir = join(tmpDir(t), 'd');
    mkdirSync(dir);
    chmodSync(dir, mode);
    const err = await t.throwsAsync(make(join(dir, 'f.sock')).start(), { code: 'FUGUE_ERR_SOCKET_DIR_UNSAFE' });
    t.regex(err!.message, /writable by (its group|every user).*chmod go-w/);
    t.false(existsSync(join(dir, 'f.sock')));
    t.is(statSync(dir).mode & 0o777, mode);
  }
});

testNeeding({ missing: process.getuid?.() === 0 ? undefined : 'needs root, to chown the directory to another user' }, 'refuses a socket directory owned by another user', async (t) => {
  const dir = join(tmpDir(t), 'd');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, 65534, 65534);
  const err = await t.throwsAsync(make(join(dir, 'f.sock')).start(), { code: 'FUGUE_ERR_SOCKET_DIR_UNSAFE' });
  t.regex(err!.message, /owned by uid 65534/);
  t.false(existsSync(join(dir, 'f.sock')));
});

test('refuses a path longer than sun_path allows, naming its length', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'x'.repeat(MAX_SOCKET_PATH_BYTES));
  const err = await t.throwsAsync(make(path).start(), { code: 'FUGUE_ERR_SOCKET_PATH_TOO_LONG' });
  t.regex(err!.message, new RegExp(`${Buffer.byteLength(path)} bytes long.*at most`));
  t.false(existsSync(path));
});

test('a rolling restart: the successor binds while the old server drains, and the old one never removes it', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'f.sock');
  const old = await startServer(t, { socketPath: path, shutdownTimeoutMs: 5000 });
  const holder = await FugueClient.connect(path); // keeps the old server draining
  const closing = old.close();
  t.false(existsSync(path), 'the old server gave up the path at once');
  const successor = await startServer(t, { socketPath: path, socketCheckIntervalMs: 50 });
  const ino = lstatSync(path).ino;
  t.false(old.removeSocket(), 'removal by identity: not ours any more');
  await holder.detach();
  await closing;
  t.is(lstatSync(path).ino, ino, "the successor's socket survives the old server's drain");
  const c = await RawClient.handshaken(successor.socketPath);
  c.destroy();
  await successor.close();
  t.false(existsSync(path));
});

test('start() after close() is an error', async (t) => {
  const server = await startServer(t);
  await server.close();
  await t.throwsAsync(server.start(), { code: 'FUGUE_ERR_SERVER_CLOSED' });
});
