// Every line logged before an exit reaches a reader that is reading: a clean
// stop, a forced stop by a second signal, a failed start, an uncaught
// exception. Lines are batched per turn of the event loop (log-sink.ts), so
// each exit path must flush them: the real CLI, its stdout read by the test.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { RawClient } from '../helpers/raw-client.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';

const PRELOAD = fileURLToPath(new URL('../../../test/fixtures/throw-when-listening.mjs', import.meta.url));

test('a clean stop: every line up to "fugue-server stopped", including those of clients that left just before SIGTERM', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const n = 100;
  await Promise.all(Array.from({ length: n }, async () => {
    const c = await FugueClient.connect(sock);
    await c.detach();
  }));
  s.child.kill('SIGTERM'); // at once: some of those lines are still pending in the sink
  t.is((await s.exited).code, 0);
  t.is(s.logs.filter((l) => l.msg === 'client disconnected').length, n);
  t.is(s.logs.at(-1)?.msg, 'fugue-server stopped');
});

test('a forced stop (second signal): the line that says so, and the lines of the clients it cut off (logged while the exit flushes), all reach stdout', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '60000' } });
  await s.ready();
  const stay = await RawClient.handshaken(sock);
  s.child.kill('SIGTERM');
  await s.waitLog((l) => l.msg.startsWith('drain started'), 'drain started');
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 143);
  const forced = s.logs.findIndex((l) => l.msg === 'second signal during drain: exiting now');
  t.true(forced >= 0, 'the second signal is logged');
  t.is(s.logs.filter((l, i) => i > forced && l.msg === 'client disconnected' && l.reason === 'shutdown_forced').length, 1, 'the client cut off by the forced exit has its line');
  // The drain summary agrees with the clients' close reasons (issue 18).
  t.like(s.logs.find((l) => l.msg === 'drain finished'), { left: 0, forced: 1 });
  await stay.untilClosed();
});

test('a failed start: the error line reaches stdout as well as stderr', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: String((busy.address() as { port: number }).port) } });
  t.is((await s.exited).code, 75);
  t.like(s.logs.at(-1), { level: 'error', code: 'FUGUE_ERR_HTTP_LISTEN' });
  t.truthy(s.logs.find((l) => l.msg === 'starting fugue-server'));
});

test('an uncaught exception: the error line and the lines before it reach stdout; exit 70, socket removed', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, NODE_OPTIONS: `--import=${PRELOAD}` } });
  const exit = await s.exited;
  t.is(exit.code, 70, s.stderr);
  const crash = s.logs.at(-1);
  t.is(crash?.msg, 'uncaught exception: exiting');
  t.regex(JSON.stringify(crash?.err), /an uncaught exception from the test preload/);
  t.truthy(s.logs.find((l) => l.msg === 'server listening'));
  const { existsSync } = await import('node:fs');
  t.false(existsSync(sock));
});
