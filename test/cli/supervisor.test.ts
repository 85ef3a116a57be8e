// The real CLI under a service manager: sd_notify messages to a real AF_UNIX
// datagram receiver (in order: READY, RELOADING + MONOTONIC_USEC, READY,
// STOPPING + EXTEND_TIMEOUT_USEC, WATCHDOG pings), and systemd socket
// activation, both with Debian's systemd-socket-activate and with a parent
// that holds the listening socket across restarts as systemd does.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, openSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FugueClient } from '../../src/client/client.js';
import { childEnv, childEnvArgs } from '../helpers/child-env.js';
import { testNeeding } from '../helpers/needs.js';
import { startNotifyReceiver } from '../helpers/notify-receiver.js';
import { SERVER_BIN, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';

const HAS_ACTIVATE = spawnSync('systemd-socket-activate', ['--version']).status === 0;
const PARENT = fileURLToPath(new URL('../../../test/fixtures/activation_parent.py', import.meta.url));

test('sd_notify: READY once serving, RELOADING with MONOTONIC_USEC then READY around a reload, STOPPING and EXTEND_TIMEOUT_USEC when the drain starts, in that order', async (t) => {
  const rx = await startNotifyReceiver(t);
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, NOTIFY_SOCKET: rx.address, FUGUE_SHUTDOWN_TIMEOUT_MS: '4000' } });
  const ready = await rx.waitFor((m) => m.READY === '1', 'READY=1', { timeoutMs: 30_000 }); // a start under CI load
  t.true(existsSync(sock), 'READY comes once the socket is bound');
  t.regex(ready.fields.STATUS ?? '', /serving 0 clients on /);
  t.is(ready.pid, s.child.pid, 'sent by the main process (NotifyAccess=main)');
  const c = await FugueClient.connect(sock);

  s.child.kill('SIGHUP');
  const reloading = await rx.waitFor((m) => m.RELOADING === '1', 'RELOADING=1', { after: ready });
  t.regex(reloading.fields.MONOTONIC_USEC ?? '', /^\d+$/);
  const usec = BigInt(reloading.fields.MONOTONIC_USEC!);
  t.true(usec <= reloading.monotonicUsec && reloading.monotonicUsec - usec < 5_000_000n, 'MONOTONIC_USEC is CLOCK_MONOTONIC now');
  const again = await rx.waitFor((m) => m.READY === '1', 'READY=1 after the reload', { after: reloading });
  t.regex(again.fields.STATUS ?? '', /serving 1 clients.*configuration reloaded/);

  const notice = onceWithin(c, 'message', 5000, 'shutdown notice');
  s.child.kill('SIGTERM');
  const stopping = await rx.waitFor((m) => m.STOPPING === '1', 'STOPPING=1', { after: again });
  t.regex(stopping.fields.STATUS ?? '', /draining 1 clients \(SIGTERM\)/);
  const extend = await rx.waitFor((m) => m.EXTEND_TIMEOUT_USEC !== undefined, 'EXTEND_TIMEOUT_USEC', { after: reloading });
  // shutdown.timeoutMs + the span flush bound + the log flush bound + 1 s
  t.is(extend.fields.EXTEND_TIMEOUT_USEC, String((4000 + 5000 + 2000 + 1000) * 1000));
  await notice;
  await c.detach();
  t.is((await s.exited).code, 0);
  // Nothing is sent out of order: READY, RELOADING, READY, STOPPING ... (STATUS-only updates may come between).
  const kinds = rx.messages().map((m) => (m.READY ? 'READY' : m.RELOADING ? 'RELOADING' : m.STOPPING ? 'STOPPING' : undefined)).filter(Boolean);
  t.deepEqual(kinds, ['READY', 'RELOADING', 'READY', 'STOPPING']);
});

test('sd_notify: WATCHDOG=1 at half of WATCHDOG_USEC, to an abstract-namespace socket; a long drain keeps extending the stop timeout', async (t) => {
  const rx = await startNotifyReceiver(t, { abstract: true });
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '400000', FUGUE_SHUTDOWN_TIMEOUT_MS: '3000' } });
  const ready = await rx.waitFor((m) => m.READY === '1', 'READY=1', { timeoutMs: 30_000 }); // a start under CI load
  await waitFor(() => rx.messages().filter((m) => m.WATCHDOG === '1').length >= 6, { what: 'six watchdog pings (every 200 ms)', timeoutMs: 5000 });
  const pings = rx.datagrams.filter((d) => d.fields.WATCHDOG === '1');
  const gaps = pings.slice(1).map((p, i) => Number(p.monotonicUsec - pings[i]!.monotonicUsec) / 1000);
  const mean = (Number(pings.at(-1)!.monotonicUsec - pings[0]!.monotonicUsec) / 1000) / gaps.length;
  t.log(`watchdog gaps (ms): ${gaps.map((g) => g.toFixed(0)).join(', ')}; mean ${mean.toFixed(0)}`);
  // Pings come every WATCHDOG_USEC/2 = 200 ms. The mean gap over five tells that
  // from pinging every 400 ms (mean >= 400: timers never fire early) or twice as
  // often (100), and leaves a loaded machine 150 ms of lateness per ping; single
  // gaps do not, as one late ping shortens the next gap.
  t.true(mean > 150 && mean < 350, `mean gap ${mean} ms, gaps ${gaps}`);
  const stay = await FugueClient.connect(sock);
  s.child.kill('SIGTERM');
  const stopping = await rx.waitFor((m) => m.STOPPING === '1', 'STOPPING=1', { after: ready });
  // While the drain waits for the client, the stop timeout is extended and a status says what is left.
  await rx.waitFor((m) => /draining: 1 clients left/.test(m.STATUS ?? ''), 'a drain status line', { after: stopping });
  t.false(rx.datagrams.some((d) => d.fields.WATCHDOG === '1' && d.monotonicUsec > stopping.monotonicUsec + 50_000n), 'no watchdog pings once stopping');
  await stay.detach();
  t.is((await s.exited).code, 0);
});

testNeeding({ missing: HAS_ACTIVATE ? undefined : "systemd-socket-activate is not installed; .ci/run installs Debian's systemd package (apt-get install systemd)", providedByCi: true }, 'systemd-socket-activate: the first client\'s connection starts the server, and it is answered; the socket file is left to the manager', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const child = spawn('systemd-socket-activate', ['-l', sock, '-E', `FUGUE_SOCKET_PATH=${sock}`, '-E', 'FUGUE_HTTP_PORT=0', '-E', `PATH=${process.env.PATH}`, ...childEnvArgs(), process.execPath, SERVER_BIN], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => existsSync(sock), { what: `systemd-socket-activate listening (${out})` });
  t.false(out.includes('server listening'), 'no server runs before the first connection');
  const c = await FugueClient.connect(sock, { clientName: 'first', timeoutMs: 10_000 });
  t.is((await c.ping()).type, 'pong', 'the connection that started the server is answered');
  // Logged once observability is up, which may be after the first client was served.
  await waitFor(() => out.includes('"msg":"server listening"'), { what: 'the server listening line' });
  t.notRegex(out, /removed stale socket|already running/, 'no probe, no stale-socket handling');
  await c.detach();
  const exited = onceWithin(child, 'exit', 15_000, 'exit');
  child.kill('SIGTERM');
  await exited;
  t.true(lstatSync(sock).isSocket(), 'the socket file belongs to the manager: not unlinked');
});

testNeeding({ missing: HAS_ACTIVATE ? undefined : "systemd-socket-activate is not installed; .ci/run installs Debian's systemd package (apt-get install systemd)", providedByCi: true }, 'socket-activated with socket.path naming another path: it serves, but says so, and /readyz and fugue_socket_listening say not ready', async (t) => {
  const dir = tmpDir(t);
  const passed = join(dir, 'passed.sock');
  const configured = join(dir, 'configured.sock');
  const child = spawn('systemd-socket-activate', ['-l', passed, '-E', `FUGUE_SOCKET_PATH=${configured}`, '-E', 'FUGUE_HTTP_PORT=0', '-E', `PATH=${process.env.PATH}`, ...childEnvArgs(), process.execPath, SERVER_BIN], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => existsSync(passed), { what: `systemd-socket-activate listening (${out})` });
  const c = await FugueClient.connect(passed, { timeoutMs: 10_000 });
  t.is((await c.ping()).type, 'pong', 'the socket it was given is served');
  const port = await waitFor(() => /"msg":"http sidecar listening"[^\n]*"port":(\d+)/.exec(out)?.[1] ?? /"port":(\d+)[^\n]*"msg":"http sidecar listening"/.exec(out)?.[1], { what: 'the sidecar port' });
  const mismatch = await waitFor(() => out.split('\n').find((l) => l.includes('does not name the socket the service manager passed')), { what: 'the mismatch logged' });
  t.like(JSON.parse(mismatch), { level: 'error', socketPath: configured, boundPath: passed });
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.is(ready.status, 503, 'not ready: clients and probes that follow socket.path find nothing there');
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.regex(metrics, /^fugue_socket_listening 0$/m);
  await c.detach();
  const exited = onceWithin(child, 'exit', 15_000, 'exit');
  child.kill('SIGTERM');
  await exited;
});

test('a parent that holds the socket across restarts (as systemd does): no connection attempt is refused, one made while no instance runs is answered by the next', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const parent = spawn('python3', [PARENT, sock, process.execPath, SERVER_BIN], {
    env: childEnv({ PATH: process.env.PATH, HOME: process.env.HOME, FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: '0', FUGUE_SHUTDOWN_TIMEOUT_MS: '3000' }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => parent.kill('SIGKILL'));
  const lines: string[] = [];
  createInterface({ input: parent.stdout! }).on('line', (l) => lines.push(l));
  let stderr = '';
  parent.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const command = async (cmd: string, reply: RegExp): Promise<string> => {
    const before = lines.length;
    parent.stdin!.write(`${cmd}\n`);
    return waitFor(() => lines.slice(before).find((l) => reply.test(l)), { what: `${cmd} -> ${reply} (stderr: ${stderr.slice(-2000)})`, timeoutMs: 15_000 });
  };
  await command('bind', /^bound$/);

  // Instance 1 serves.
  const pid1 = Number((await command('start', /^started \d+$/)).split(' ')[1]);
  const a = await FugueClient.connect(sock, { clientName: 'a', timeoutMs: 10_000 });
  t.is((await a.ping()).type, 'pong');
  // Drained with SIGTERM: it exits 0 and leaves the socket file alone.
  process.kill(pid1, 'SIGTERM');
  await onceWithin(a, 'message', 5000, 'shutdown notice');
  await a.detach();
  t.regex(await command('wait', /^exited /), /^exited 0$/);
  t.true(lstatSync(sock).isSocket());
  // No instance runs: a connection is queued by the kernel, not refused.
  const queued = createConnection(sock);
  const connected = await new Promise<boolean>((resolve) => {
    queued.once('connect', () => resolve(true));
    queued.once('error', () => resolve(false));
  });
  t.true(connected, 'connect() succeeds while no instance runs');
  const replies: string[] = [];
  queued.on('data', (d: Buffer) => replies.push(d.subarray(4).toString()));
  queued.write(Buffer.concat([Buffer.from([0, 0, 0, 39]), Buffer.from('{"type":"connect","protocol_version":1}')]));
  // Instance 2 with the same descriptor answers it.
  await command('start', /^started \d+$/);
  await waitFor(() => replies.some((r) => r.includes('"connected"')), { what: 'the queued connection answered by instance 2', timeoutMs: 10_000 });
  const b = await FugueClient.connect(sock, { clientName: 'b' });
  t.is((await b.ping()).type, 'pong');
  queued.destroy();
  await b.detach();
  await command('stop', /^exited 0$/);
});

test('socket activation with a descriptor that is not a listening AF_UNIX stream socket: exit 78 with a clear message', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, 'x');
  // fd 3 is a regular file; LISTEN_PID is the shell, which execs node.
  const cases: Array<[string, number | 'tcp', RegExp]> = [
    ['a regular file', openSync(file, 'r'), /it is not a socket/],
    ['a TCP socket', 'tcp', /TCP socket; fugue-server serves Unix sockets only/],
  ];
  for (const [what, fdOrTcp, expected] of cases) {
    let fd: number;
    let close = () => {};
    if (fdOrTcp === 'tcp') {
      const srv = createServer();
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      fd = (srv as unknown as { _handle: { fd: number } })._handle.fd;
      close = () => srv.close();
    } else fd = fdOrTcp;
    const child = spawn('sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$1"`, process.execPath, SERVER_BIN], {
      env: childEnv({ PATH: process.env.PATH, HOME: process.env.HOME, FUGUE_SOCKET_PATH: join(dir, 'f.sock'), FUGUE_HTTP_PORT: '0' }),
      stdio: ['ignore', 'pipe', 'pipe', fd],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await onceWithin<number>(child, 'close', 15_000, 'exit');
    close();
    t.is(code, 78, `${what}: ${stderr}`);
    t.regex(stderr, /socket activation: cannot serve descriptor 3/, what);
    t.regex(stderr, expected, what);
    t.false(existsSync(join(dir, 'f.sock')), `${what}: nothing bound instead`);
  }
  // Several descriptors, none named "fugue".
  const child = spawn('sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=a:b exec "$0" "$1"', process.execPath, SERVER_BIN], {
    env: childEnv({ PATH: process.env.PATH, HOME: process.env.HOME, FUGUE_SOCKET_PATH: join(dir, 'f.sock') }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await onceWithin<number>(child, 'close', 15_000, 'exit');
  t.is(code, 78);
  t.regex(stderr, /several sockets were passed and none is named "fugue"/);
});
