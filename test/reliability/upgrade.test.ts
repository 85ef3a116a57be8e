// An upgrade no client notices (issue 18, point 1): `fugue-server --takeover`
// replaces a running server while a client connects every few milliseconds
// and another keeps a connection busy. No connection attempt may fail (not
// refused, not reset, no missing path) and no request on the busy connection
// may go unanswered. Real processes, real signals, real sockets.
import test from 'ava';
import { spawn } from 'node:child_process';
import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/free-port.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const LOOP = fileURLToPath(new URL('../../../test/fixtures/connect-loop.mjs', import.meta.url));

interface LoopCounts {
  attempts: number;
  ok: number;
  failures: Record<string, number>;
  longSent: number;
  longAnswered: number;
  longShutdowns: number;
}

/** /readyz's status, or 0 while nothing answers on the port. */
async function readyz(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
  } catch {
    return 0;
  }
}

function startLoop(t: Parameters<typeof tmpDir>[0], sock: string) {
  const child = spawn(process.execPath, [LOOP, sock, '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return {
    started: waitFor(() => out.includes('started'), { what: 'the connect loop' }),
    async stop(): Promise<LoopCounts> {
      child.kill('SIGTERM');
      await waitFor(() => out.includes('"attempts"'), { what: `the loop's counts (${out})` });
      return JSON.parse(out.split('\n').find((l) => l.includes('"attempts"'))!) as LoopCounts;
    },
  };
}

test('--takeover replaces a running server with no failed connection attempt and no lost request; the HTTP port is handed over', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const port = await freePort();
  const file = join(dir, 'server.json');
  writeFileSync(file, JSON.stringify({ socket: { path: sock }, http: { port }, shutdown: { timeoutMs: 5000 } }));
  const env = { FUGUE_HTTP_PORT: String(port) }; // (spawnServer sets port 0 otherwise)
  const old = spawnServer(t, { args: ['--config', file], env });
  await old.ready();
  const loop = startLoop(t, sock);
  await loop.started;
  await waitFor(async () => (await readyz(port)) === 200, { what: 'the old server ready' });
  const before = lstatSync(sock).ino;
  const next = spawnServer(t, { args: ['--config', file, '--takeover'], env });
  await next.waitLog((l) => l.msg === 'took over the socket path; told the predecessor to drain', 'the takeover', 30_000);
  t.like(await next.waitLog((l) => l.msg === 'server listening', 'the new server listening'), { socketPath: sock });
  t.is((await old.exited).code, 0, 'the old server drained and exited 0');
  await next.waitLog((l) => l.msg === 'http sidecar listening', 'the port handed over', 30_000);
  await waitFor(async () => (await readyz(port)) === 200, { what: 'the new server ready on the same port' });
  const counts = await loop.stop();
  t.log(`UPGRADE: ${counts.attempts} connection attempts, ${counts.ok} ok, failures ${JSON.stringify(counts.failures)}; busy connection: ${counts.longSent} requests, ${counts.longAnswered} answered, ${counts.longShutdowns} shutdown notices`);
  t.deepEqual(counts.failures, {}, 'no attempt failed');
  t.is(counts.ok, counts.attempts);
  t.true(counts.attempts >= 100, `enough attempts through the upgrade (${counts.attempts})`);
  t.true(counts.longShutdowns >= 1, 'the busy connection was told to move on');
  t.true(counts.longAnswered >= counts.longSent - 1, `every request on the busy connection was answered but at most the one in flight at the end (${counts.longAnswered}/${counts.longSent})`);
  t.not(lstatSync(sock).ino, before, 'the path holds the new server\'s socket');
  t.is(readFileSync(`${sock}.pid`, 'utf8').trim(), String(next.child.pid));
  t.falsy(old.logs.find((l) => l.msg === 'cannot re-create the socket; will retry'), 'the old server never tried to repair the path');
  next.child.kill('SIGTERM');
  t.is((await next.exited).code, 0);
});

test('a takeover that cannot start changes nothing: a bad configuration, or something at the path that is not a fugue-server', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const old = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await old.ready();
  const ino = lstatSync(sock).ino;
  const bad = spawnServer(t, { args: ['--takeover', '--max-clients', 'lots'], env: { FUGUE_SOCKET_PATH: sock } });
  t.is((await bad.exited).code, 78);
  t.is(lstatSync(sock).ino, ino, 'the path still holds the old socket');
  t.is(old.child.exitCode, null, 'the old server still runs');
  old.child.kill('SIGTERM');
  t.is((await old.exited).code, 0);

  // A plain listener (not fugue-server) at the path: refused, untouched.
  const other = join(dir, 'other.sock');
  const plain = createServer((s) => s.end());
  await new Promise<void>((resolve) => plain.listen(other, resolve));
  t.teardown(() => plain.close());
  const oino = lstatSync(other).ino;
  const refused = spawnServer(t, { args: ['--takeover'], env: { FUGUE_SOCKET_PATH: other } });
  t.is((await refused.exited).code, 69);
  t.regex(refused.stderr, /cannot take over .*other\.sock: .*Nothing was changed/);
  t.is(lstatSync(other).ino, oino);
});

test('--takeover with nobody at the path starts as usual', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { args: ['--takeover'], env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  t.truthy(s.logs.find((l) => l.msg.startsWith('takeover: no server answers')));
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});
