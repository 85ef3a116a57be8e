// Every signal an admin, a supervisor or a terminal can send, against the real
// CLI: drain signals drain and clean up, SIGHUP reloads, SIGUSR1/SIGUSR2 report
// and never open the inspector. docs/operations.md, "Signals".
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { SIGNAL_ACTIONS } from '../../src/cli/signals.js';
import { FugueClient } from '../../src/client/client.js';
import { freePort } from '../helpers/free-port.js';
import { RawClient } from '../helpers/raw-client.js';
import { httpPortOf, spawnServer, type Spawned } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';
import { scrapeSample } from '../helpers/scrape.js';
import { testNeeding } from '../helpers/needs.js';

const DRAIN_SIGNALS = Object.entries(SIGNAL_ACTIONS).filter(([, a]) => a === 'drain').map(([s]) => s as NodeJS.Signals);

/** True when something accepts TCP connections on 127.0.0.1:port. */
function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('the table covers the catchable signals whose default action ends the process', (t) => {
  // signal(7): default action Term or Core, minus those left alone on purpose (see signals.ts).
  const terminating = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTRAP', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSYS'];
  t.deepEqual(Object.keys(SIGNAL_ACTIONS).sort(), terminating.sort());
});

// Serial: a dozen servers starting at once would only measure the machine's load.
for (const signal of DRAIN_SIGNALS) {
  test.serial(`${signal} drains gracefully: the client is told, the socket and pid file are removed, exit 0`, async (t) => {
    const sock = join(tmpDir(t), 'f.sock');
    const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '5000' } });
    await s.ready();
    const c = await FugueClient.connect(sock);
    const notice = onceWithin<Record<string, unknown>>(c, 'message', 5000, 'shutdown notice');
    s.child.kill(signal);
    t.like(await notice, { type: 'shutdown', reason: `received ${signal}` });
    await c.detach();
    t.deepEqual(await s.exited, { code: 0, signal: null });
    t.false(existsSync(sock));
    t.false(existsSync(`${sock}.pid`));
    t.like(s.logs.find((l) => l.msg === 'received shutdown signal, draining'), { signal });
    t.truthy(s.logs.find((l) => l.msg === 'fugue-server stopped'));
  });
}

test('a second drain signal of another kind forces the exit with 128+its number', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '60000' } });
  await s.ready();
  const stay = await RawClient.handshaken(sock);
  s.child.kill('SIGQUIT');
  await s.waitLog((l) => l.msg.startsWith('drain started'), 'drain started');
  s.child.kill('SIGINT');
  t.is((await s.exited).code, 130);
  t.false(existsSync(sock));
  t.false(existsSync(`${sock}.pid`));
  await stay.untilClosed();
});

test('control: without fugue-server\'s handler, SIGUSR1 opens Node\'s inspector on the port the check below watches', async (t) => {
  const port = await freePort();
  // It says "up" once it runs JavaScript: by then Node's own SIGUSR1 handler is installed
  // (a SIGUSR1 during Node's bootstrap would kill it instead: the default action).
  const child = spawn(process.execPath, ['-e', 'console.log("up"); setInterval(() => {}, 1000)'], { env: { PATH: process.env.PATH, NODE_OPTIONS: `--inspect-port=127.0.0.1:${port}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  await waitFor(() => stdout.includes('up'), { what: 'the control process to run', timeoutMs: 10_000 });
  child.kill('SIGUSR1');
  await waitFor(() => tcpOpen(port), { what: `the inspector to open (stderr: ${stderr})`, timeoutMs: 10_000, intervalMs: 50 });
  t.regex(stderr, /Debugger listening/);
});

for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) {
  test(`${signal} logs one status line, keeps serving, and never opens a debugger port`, async (t) => {
    const sock = join(tmpDir(t), 'f.sock');
    const inspectPort = await freePort();
    const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, NODE_OPTIONS: `--inspect-port=127.0.0.1:${inspectPort}` } });
    await s.ready();
    const c = await FugueClient.connect(sock, { clientName: 'witness' });
    s.child.kill(signal);
    const status = await s.waitLog((l) => l.msg === 'status', 'status line');
    t.like(status, { signal, state: 'listening', ready: true, clients: 1, socketPath: sock });
    s.child.kill(signal);
    await waitFor(() => s.logs.filter((l) => l.msg === 'status').length === 2, { what: 'a second status line' });
    t.false(await tcpOpen(inspectPort), 'no inspector port');
    t.notRegex(s.stderr, /Debugger listening/);
    t.is((await c.ping()).type, 'pong');
    await c.detach();
    s.child.kill('SIGTERM');
    t.is((await s.exited).code, 0);
  });
}

// Node 22.14+ has --disable-sigusr1, which docs/operations.md recommends: it
// silences SIGUSR1 altogether, and the docs say so and point at SIGUSR2.
const SIGUSR1_FLAG = process.allowedNodeEnvironmentFlags.has('--disable-sigusr1');
testNeeding({ missing: SIGUSR1_FLAG ? undefined : `needs Node 22.14+ for --disable-sigusr1 (this is ${process.version})` }, 'with node --disable-sigusr1, SIGUSR1 does nothing (no status line, no debugger port), SIGUSR2 still logs the status line, and the server says so at start', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const inspectPort = await freePort();
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, NODE_OPTIONS: `--disable-sigusr1 --inspect-port=127.0.0.1:${inspectPort}` } });
  await s.ready();
  t.truthy(s.logs.find((l) => l.msg.startsWith('node runs with --disable-sigusr1: SIGUSR1 is ignored')));
  s.child.kill('SIGUSR1');
  s.child.kill('SIGUSR2');
  // Signals are delivered lowest number first, and libuv hands them over in order: SIGUSR1's line would come first.
  t.like(await s.waitLog((l) => l.msg === 'status', 'the SIGUSR2 status line'), { signal: 'SIGUSR2' });
  t.is(s.logs.filter((l) => l.msg === 'status' && l.signal === 'SIGUSR1').length, 0);
  t.false(await tcpOpen(inspectPort), 'no inspector port');
  t.is(s.child.exitCode, null, 'still running');
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});

test('SIGHUP reloads: live keys apply without dropping a client, restart-only keys are named and keep their value, a bad file is refused and counted', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const file = join(dir, 'server.json');
  const writeConfig = (o: object) => writeFileSync(file, JSON.stringify(o));
  writeConfig({ limits: { maxClients: 10 }, log: { level: 'info' } });
  const s: Spawned = spawnServer(t, { args: ['--config', file], env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const port = await waitFor(() => httpPortOf(s), { what: 'sidecar port' });
  const first = await FugueClient.connect(sock, { clientName: 'first' });
  t.is(await scrapeSample(port, 'fugue_max_clients'), 10);
  t.falsy(s.logs.find((l) => l.msg === 'client handshake complete'), 'debug lines are off at info');

  // 1. A good change: two live keys and one that needs a restart.
  writeConfig({ limits: { maxClients: 2 }, log: { level: 'debug' }, http: { maxConnections: 8 } });
  s.child.kill('SIGHUP');
  const reloaded = await s.waitLog((l) => l.msg === 'configuration reloaded', 'configuration reloaded');
  t.deepEqual((reloaded.applied as string[]).sort(), ['limits.maxClients', 'log.level']);
  t.deepEqual(reloaded.restartRequired, ['http.maxConnections']);
  t.like(await s.waitLog((l) => l.msg.startsWith('configuration reload: these keys only take effect after a restart'), 'the restart-only warning'), { keys: ['http.maxConnections'] });
  t.is(await scrapeSample(port, 'fugue_max_clients'), 2);
  t.is(await scrapeSample(port, 'fugue_config_reloads_total{result="success"}'), 1);
  t.is((await first.ping()).type, 'pong', 'the client from before the reload is still served');
  const second = await FugueClient.connect(sock, { clientName: 'second' });
  await s.waitLog((l) => l.msg === 'client handshake complete' && l.clientName === 'second', 'a debug line after the reload');
  const third = await RawClient.handshaken(sock).catch((e: Error) => e);
  const busy = third instanceof Error ? third.message : JSON.stringify(await third.untilClosed());
  t.regex(busy, /server_busy/, 'the lowered limit turns the next client away');

  // 2. A bad file: refused, the running configuration stays, the reason names key, value and source.
  writeConfig({ limits: { maxClients: 'lots' } });
  s.child.kill('SIGHUP');
  const refused = await s.waitLog((l) => l.msg.startsWith('configuration reload refused'), 'reload refused');
  t.is(refused.level, 'error');
  t.regex(refused.msg, /limits\.maxClients/);
  t.regex(refused.msg, /"lots"/);
  t.regex(refused.msg, new RegExp(`config file ${file.replace(/[.]/g, '\\.')}`));
  t.is(await scrapeSample(port, 'fugue_config_reloads_total{result="failure"}'), 1);
  t.is(await scrapeSample(port, 'fugue_max_clients'), 2, 'the running value stays');
  t.is((await second.ping()).type, 'pong');

  // 3. --check-config on the same sources says the same thing, with exit 78.
  const check = spawnServer(t, { args: ['--config', file, '--check-config'], env: { FUGUE_SOCKET_PATH: sock } });
  const checked = await check.exited;
  t.is(checked.code, 78);
  t.regex(check.stderr, /limits\.maxClients/);

  await first.detach();
  await second.detach();
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});
