// The real fuguectl binary in a child process, against a real server (in this
// process, or the real daemon), a fake one on a real socket, or a real HTTP
// server (issue 9 point 7, issue 13 point 6).
import test from 'ava';
import { linkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CTL_EXIT } from '../../src/cli/ctl.js';
import { afterHandshake, frameOf, startFakeServer } from '../helpers/fake-server.js';
import { startApp } from '../helpers/app.js';
import { startServer } from '../helpers/server.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { ctl, NO_STACK, startCtl } from '../helpers/ctl.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

test('fuguectl ping, status, status --json and echo against a running server', async (t) => {
  const server = await startServer(t);
  const sock = server.socketPath;
  const ping = await ctl(['--socket', sock, 'ping']);
  t.is(ping.code, 0, ping.stderr);
  t.regex(ping.stdout, /^pong from .* in [\d.]+ ms\n$/);
  const status = await ctl(['status'], { FUGUE_SOCKET_PATH: sock });
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, new RegExp(`^fugue-server at ${sock}\\n  version   0\\.0\\.0-test\\n  uptime    [\\d.]+ s\\n  clients   1\\n  draining  no\\n$`));
  const json = await ctl(['status', '--json', '--socket', sock]);
  t.is(json.code, 0, json.stderr);
  t.is(json.stdout.split('\n').length, 2, 'one line');
  const fields = JSON.parse(json.stdout) as Record<string, unknown>;
  t.deepEqual(Object.keys(fields).sort(), ['clients', 'draining', 'pid', 'server_version', 'uptime_ms']);
  t.is(fields.pid, process.pid, 'the server (in this process) gives its pid');
  t.like(fields, { server_version: '0.0.0-test', clients: 1, draining: false });
  const echo = await ctl(['--socket', sock, 'echo', 'hello', 'world']);
  t.is(echo.stdout, 'hello world\n');
});

test('fuguectl against the real daemon: status --json and health', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready(30_000);
  const json = await ctl(['--socket', sock, 'status', '--json']);
  t.is(json.code, 0, json.stderr);
  t.like(JSON.parse(json.stdout), { clients: 1, draining: false });
  const health = await ctl(['--socket', sock, 'health']);
  t.is(health.code, 0, health.stderr);
  t.regex(health.stdout, /^healthy: .* answers \(server [\d.]+.*, 1 clients\)\n$/);
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});

test('fuguectl clients lists every connected client, one line each, or as JSON; a server without list_clients exits 76 saying so', async (t) => {
  const { socketPath } = await startApp(t);
  const { FugueClient } = await import('../../src/client/client.js');
  const other = await FugueClient.connect(socketPath, { clientName: 'editor' });
  await other.echo('x');
  const text = await ctl(['--socket', socketPath, 'clients']);
  t.is(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  t.is(lines.length, 2, 'the other client and fuguectl itself');
  t.regex(lines[0]!, /^\d+: "editor" since \d{4}-\d\d-\d\dT[\d:.]+Z, messages 2 in \/ 2 out, bytes \d+ in \/ \d+ out$/);
  t.regex(lines[1]!, /^\d+: "fuguectl" since .*, messages 2 in \/ 1 out, /);
  const json = await ctl(['--socket', socketPath, 'clients', '--json']);
  t.is(json.code, 0, json.stderr);
  const list = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
  t.deepEqual(list.map((c) => c.name), ['editor', 'fuguectl']);
  t.like(list[0], { handshaken: true, messages_in: 2, messages_out: 2 });
  await other.detach();
  // A bare FugueServer has only the core types: list_clients is unknown there.
  const bare = await startServer(t);
  const old = await ctl(['--socket', bare.socketPath, 'clients']);
  t.is(old.code, 76);
  t.regex(old.stderr, /does not support list_clients.*upgrade fugue-server/);
});

test('fuguectl exits 69 with a clear message when no server answers', async (t) => {
  const sock = join(tmpDir(t), 'none.sock');
  const r = await ctl(['--socket', sock, 'ping']);
  t.is(r.code, CTL_EXIT.UNAVAILABLE);
  t.regex(r.stderr, new RegExp(`^fuguectl: cannot connect to ${sock} \\(ENOENT\\).*is fugue-server running`));
});

test('fuguectl without a command prints usage and exits 64', async (t) => {
  const r = await ctl([]);
  t.is(r.code, 64);
  t.regex(r.stderr, /missing command\nUsage: fuguectl[\s\S]*Exit codes:/);
});

test('usage errors exit 64 with one line naming the problem: unknown command or option, another command\'s option, a bad --timeout, missing or extra arguments', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"; commands: ping, status, echo, clients, wait-ready, stop, events, health/],
    [['ping', '--nope'], /unknown option --nope/],
    [['ping', '--json'], /--json is not an option of ping/],
    [['status', '--http', 'http://x'], /--http is not an option of status/],
    [['ping', '--timeout', '0x10'], /--timeout must be a whole number of milliseconds from 1 to 2147483647, got "0x10"/],
    [['ping', '--timeout', '0'], /--timeout must be a whole number of milliseconds from 1 to 2147483647, got "0"/],
    [['ping', '--timeout'], /--timeout needs a value \(MS\)/],
    [['echo'], /echo needs TEXT\.\.\./],
    [['ping', 'extra'], /ping takes no argument "extra"/],
    [['health', '--http', 'localhost:9464'], /--http needs an http:\/\/ or https:\/\/ URL such as http:\/\/127\.0\.0\.1:9464, got "localhost:9464"/],
    [['--socket', '$NOPE/f.sock', 'ping'], /the socket path "\$NOPE\/f\.sock" uses \$NOPE, which is not set; set it or give --socket in full/],
  ];
  // One at a time: the machine has two cores and other tests spawn processes too.
  for (const [args, re] of cases) {
    const r = await ctl(args);
    t.is(r.code, 64, args.join(' '));
    t.regex(r.stderr, new RegExp(`^fuguectl: ${re.source}; run fuguectl --help for usage\\n$`), args.join(' '));
  }
});

test('--help prints the commands, options and exit codes to stdout and exits 0', async (t) => {
  const r = await ctl(['--help']);
  t.is(r.code, 0);
  for (const cmd of ['ping', 'status [--json]', 'echo TEXT...', 'wait-ready', 'stop', 'health [--http URL]']) t.true(r.stdout.includes(`\n  ${cmd}\n`), cmd);
  t.regex(r.stdout, /There is no reload command: reload the configuration with SIGHUP/);
  t.regex(r.stdout, /Exit codes:\n {3}0 {2}success/);
});

test('wait-ready retries while there is no socket, and exits 0 once the server answers', async (t) => {
  const sock = join(tmpDir(t), 'later.sock');
  const waiting = startCtl(['--socket', sock, 'wait-ready', '--timeout', '30000']);
  // It has tried and failed at least once before the server exists.
  await waitFor(() => waiting.live.stderr.includes('fuguectl: waiting for'), { what: 'wait-ready to report it is waiting', timeoutMs: 10_000 });
  t.regex(waiting.live.stderr, new RegExp(`^fuguectl: waiting for ${sock} \\(up to 30000 ms\\): cannot connect to ${sock} \\(ENOENT\\)`));
  await startServer(t, { socketPath: sock });
  const r = await waiting.done;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^ready: ${sock} answered after \\d+ ms\\n$`));
});

test('wait-ready retries on a stale socket (ECONNREFUSED) too', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  // A socket file nobody listens on: a hard link outlives the listener's own name.
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(join(dir, 'tmp.sock'), resolve));
  linkSync(join(dir, 'tmp.sock'), sock);
  await new Promise<void>((resolve) => holder.close(() => resolve()));
  const r = await ctl(['--socket', sock, 'wait-ready', '--timeout', '400']);
  t.is(r.code, CTL_EXIT.TIMEOUT);
  t.regex(r.stderr, new RegExp(`^fuguectl: waiting for ${sock} \\(up to 400 ms\\): cannot connect to ${sock} \\(ECONNREFUSED\\)`));
  t.regex(r.stderr, new RegExp(`\\nfuguectl: no server answered at ${sock} within 400 ms \\(last: cannot connect to ${sock} \\(ECONNREFUSED\\).*\\); check that fugue-server is starting .* or raise --timeout\\n$`));
});

test('wait-ready exits 75 with a clear message at the deadline, and does not wait much longer', async (t) => {
  const sock = join(tmpDir(t), 'never.sock');
  const t0 = performance.now();
  const r = await ctl(['--socket', sock, 'wait-ready', '--timeout', '300']);
  t.is(r.code, 75);
  t.regex(r.stderr, /no server answered at .*never\.sock within 300 ms \(last: cannot connect .*\(ENOENT\)/);
  t.true(performance.now() - t0 < 10_000);
});

test('wait-ready does not retry when the server answers wrongly: a malformed reply exits 76 at once', async (t) => {
  const fake = await startFakeServer(t, (_msg, conn) => conn.frame('null'));
  const r = await ctl(['--socket', fake.path, 'wait-ready', '--timeout', '30000']);
  t.is(r.code, 76);
  t.regex(r.stderr, /^fuguectl: malformed reply from .*: a payload that is null, not a JSON object/);
  t.notRegex(r.stderr, NO_STACK);
});

test('health over the socket: 0 when the server answers and is not draining, 1 otherwise', async (t) => {
  const server = await startServer(t);
  const ok = await ctl(['--socket', server.socketPath, 'health']);
  t.is(ok.code, 0, ok.stderr);
  const none = await ctl(['--socket', join(tmpDir(t), 'none.sock'), 'health']);
  t.is(none.code, CTL_EXIT.UNHEALTHY);
  t.regex(none.stderr, /^fuguectl: unhealthy: cannot connect to .* \(ENOENT\)/);
  const draining = await startFakeServer(t, afterHandshake((msg, conn) => conn.send({ type: 'status', id: msg.id, server_version: '1', uptime_ms: 1, clients: 0, draining: true })));
  const d = await ctl(['--socket', draining.path, 'health']);
  t.is(d.code, 1);
  t.regex(d.stderr, /^fuguectl: unhealthy: the server at .* is draining \(shutting down\)\n$/);
  const garbage = await startFakeServer(t, afterHandshake((_msg, conn) => conn.raw(frameOf('{"type":'))));
  const g = await ctl(['--socket', garbage.path, 'health']);
  t.is(g.code, 1);
  t.regex(g.stderr, /^fuguectl: unhealthy: malformed reply from /);
});

test('health --http URL asks /readyz of the real sidecar: exit 0 when ready', async (t) => {
  const { baseUrl } = await startApp(t);
  const r = await ctl(['health', '--http', baseUrl]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `healthy: ${baseUrl}/readyz answered 200\n`);
});

test('health --http exits 1 on a non-200 answer (with the body), and uses a URL\'s own path as given', async (t) => {
  const seen: string[] = [];
  const http = createHttpServer((req: IncomingMessage, res) => {
    seen.push(req.url ?? '');
    res.writeHead(req.url === '/healthz' ? 200 : 503, { 'content-type': 'application/json' });
    res.end(req.url === '/healthz' ? '{"status":"ok"}' : `{"ready":false,"state":"draining","reason":"graceful shutdown in progress","pad":"${'p'.repeat(100_000)}"}`);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.teardown(() => http.close());
  const base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  const notReady = await ctl(['health', '--http', `${base}/`]);
  t.is(notReady.code, 1);
  t.regex(notReady.stderr, new RegExp(`^fuguectl: unhealthy: ${base}/readyz answered 503: "\\{\\\\"ready\\\\":false,\\\\"state\\\\":\\\\"draining\\\\"`));
  t.true(notReady.stderr.length < 1000, 'the body is cut');
  const live = await ctl(['health', '--http', `${base}/healthz`]);
  t.is(live.code, 0, live.stderr);
  t.deepEqual(seen, ['/readyz', '/healthz']);
});

test('health --http exits 1 when nothing listens or nothing answers in time', async (t) => {
  const closed = createHttpServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const refused = await ctl(['health', '--http', `http://127.0.0.1:${port}`]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^fuguectl: unhealthy: cannot reach http:\/\/127\.0\.0\.1:\d+\/readyz \(ECONNREFUSED\): nothing listens there/);
  const silent = createHttpServer(() => { /* never answers */ });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { silent.closeAllConnections(); silent.close(); });
  const slow = await ctl(['health', '--http', `http://127.0.0.1:${(silent.address() as { port: number }).port}`, '--timeout', '200']);
  t.is(slow.code, 1);
  t.regex(slow.stderr, /^fuguectl: unhealthy: no answer from http:.*\/readyz within 200 ms/);
});

test('a malformed reply (not JSON, null, an empty frame) exits 76 with a one-line message and no stack trace', async (t) => {
  for (const payload of ['not json', 'null', '']) {
    const fake = await startFakeServer(t, afterHandshake((_msg, conn) => conn.frame(payload)));
    for (const args of [['ping'], ['status', '--json'], ['echo', 'x']]) {
      const r = await ctl(['--socket', fake.path, ...args]);
      t.is(r.code, CTL_EXIT.PROTOCOL, `${JSON.stringify(payload)} ${args.join(' ')}: ${r.stderr}`);
      t.regex(r.stderr, /^fuguectl: malformed reply from [^\n]+\n$/);
      t.notRegex(r.stderr, NO_STACK);
    }
  }
});

test('a handshake reply without a numeric client_id exits 76; an oversized reply exits 76', async (t) => {
  const noId = await startFakeServer(t, (msg, conn) => conn.send({ type: 'connected', id: msg?.id, protocol_version: 1, server_version: '1' }));
  const a = await ctl(['--socket', noId.path, 'ping']);
  t.is(a.code, 76);
  t.regex(a.stderr, /"client_id" is not a non-negative integer/);
  const huge = await startFakeServer(t, (_msg, conn) => conn.raw(Buffer.from([0xff, 0xff, 0xff, 0xff])));
  const b = await ctl(['--socket', huge.path, 'status']);
  t.is(b.code, 76);
  t.regex(b.stderr, /announces 4294967295 bytes, more than this client accepts/);
});

test('an error reply exits 76 naming the server\'s code and message; no reply in time exits 75', async (t) => {
  const refusing = await startFakeServer(t, afterHandshake((msg, conn) => conn.send({ type: 'error', id: msg.id, code: 'internal', message: 'it broke' })));
  const r = await ctl(['--socket', refusing.path, 'ping']);
  t.is(r.code, 76);
  t.is(r.stderr, `fuguectl: the server at ${refusing.path} replied internal: it broke\n`);
  const silent = await startFakeServer(t, afterHandshake(() => undefined));
  const s = await ctl(['--socket', silent.path, '--timeout', '200', 'status']);
  t.is(s.code, 75);
  t.regex(s.stderr, /^fuguectl: no reply to status \(id 2\) from .* within 200 ms/);
});
