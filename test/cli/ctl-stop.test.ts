// fuguectl stop (issue 18 point 4): the server behind the socket is told to
// drain, and fuguectl waits for it to exit; whatever answers at the socket
// cannot make fuguectl signal another process. The real daemon, the real
// fuguectl, fake servers on real sockets, real processes as bystanders.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { ctl } from '../helpers/ctl.js';
import { alive } from '../helpers/proc.js';
import { afterHandshake, startFakeServer } from '../helpers/fake-server.js';
import { RawClient } from '../helpers/raw-client.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';

/** A live process that serves nothing: what a lying server points at. */
async function bystander(t: Parameters<typeof tmpDir>[0]) {
  const child = spawn(process.execPath, ['-e', 'console.log("up"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('up'), { what: 'the bystander process to run', timeoutMs: 10_000 });
  return child;
}

/** A fake server whose status reply gives `fields` (pid, draining...). */
function lyingServer(t: Parameters<typeof tmpDir>[0], fields: Record<string, unknown>) {
  return startFakeServer(t, afterHandshake((msg, conn) => conn.send({ type: 'status', id: msg.id, server_version: '9.9.9', uptime_ms: 1, clients: 1, draining: false, ...fields })));
}

test('stop: the real server drains (its client is told and leaves), exits 0, its socket is gone, and fuguectl waited for it', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '5000' } });
  await s.ready();
  const client = await FugueClient.connect(sock, { clientName: 'editor' });
  const told = onceWithin<Record<string, unknown>>(client, 'message', 10_000, 'shutdown notice').then(async (m) => { await client.detach(); return m; });
  const r = await ctl(['--socket', sock, 'stop']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, new RegExp(`^fuguectl: sent SIGTERM to the server at ${sock} \\(pid ${s.child.pid}\\); waiting up to 60000 ms for it to drain and exit\\n$`));
  t.regex(r.stdout, new RegExp(`^stopped: the server at ${sock} \\(pid ${s.child.pid}\\) exited after \\d+ ms\\n$`));
  t.like(await told, { type: 'shutdown', reason: 'received SIGTERM' });
  t.false(alive(s.child.pid!), 'fuguectl returned only once the server had exited');
  t.deepEqual(await s.exited, { code: 0, signal: null });
  t.false(existsSync(sock));
  t.like(s.logs.find((l) => l.msg === 'drain finished'), { left: 1, forced: 0 });
});

test('stop through another spelling of the path (a symbolic link to the socket\'s directory) finds the same server', async (t) => {
  const base = tmpDir(t);
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync('real', join(base, 'link'));
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: join(base, 'link', 'f.sock') } });
  await s.ready();
  const r = await ctl(['--socket', join(base, 'real', 'f.sock'), 'stop']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await s.exited, { code: 0, signal: null });
});

test('stop --timeout: a server still draining at the deadline is left draining (no second signal), exit 75 saying what to do', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SHUTDOWN_TIMEOUT_MS: '60000' } });
  await s.ready();
  const stay = await RawClient.handshaken(sock); // never leaves: the drain runs to its deadline
  t.teardown(() => stay.destroy());
  const r = await ctl(['--socket', sock, 'stop', '--timeout', '3000']);
  t.is(r.code, 75, r.stderr);
  t.regex(r.stderr, new RegExp(`fuguectl: the server at ${sock} \\(pid ${s.child.pid}\\) is still running 3000 ms after fuguectl stop: it is draining .* Wait for it \\(raise --timeout next time\\), or stop it at once with a second kill -TERM ${s.child.pid}, which cuts the clients still connected\\n$`));
  t.is(s.child.exitCode, null, 'still draining');
  t.is(s.logs.filter((l) => l.msg === 'received shutdown signal, draining').length, 1, 'one SIGTERM');
  t.falsy(s.logs.find((l) => l.msg === 'second signal during drain: exiting now'));
});

test('a fake server giving another live process\'s pid: fuguectl refuses (exit 77), signals nothing, and that process lives on', async (t) => {
  const victim = await bystander(t);
  const fake = await lyingServer(t, { pid: victim.pid });
  const r = await ctl(['--socket', fake.path, 'stop']);
  t.is(r.code, 77, r.stderr);
  t.is(r.stderr, `fuguectl: not stopping the server at ${fake.path}: pid ${victim.pid} does not hold the socket listening at ${fake.path}: whatever answered there gave a pid that is not its own, or runs in another PID namespace. See who listens: ss -xlp. No signal was sent\n`);
  t.is(r.stdout, '');
  t.is(victim.exitCode, null);
  t.is(victim.signalCode, null);
});

test('a fake server giving the pid of a real fugue-server elsewhere: refused, and that server keeps serving', async (t) => {
  const sock = join(tmpDir(t), 'real.sock');
  const real = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await real.ready();
  const fake = await lyingServer(t, { pid: real.child.pid });
  const r = await ctl(['--socket', fake.path, 'stop']);
  t.is(r.code, 77, r.stderr);
  t.regex(r.stderr, new RegExp(`pid ${real.child.pid} does not hold the socket listening at ${fake.path}`));
  const ping = await ctl(['--socket', sock, 'ping']);
  t.is(ping.code, 0, 'the real server still serves');
  t.falsy(real.logs.find((l) => l.msg === 'received shutdown signal, draining'));
  real.child.kill('SIGTERM');
  t.is((await real.exited).code, 0);
});

test('pid 1, no pid, or a pid that is not a number: refused with what to do instead, nothing signalled', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ pid: 1 }, /it says it is pid 1 \(init, or a container's main process\), which fuguectl never signals; stop it through what started it/],
    [{}, /it does not say its pid \(a fugue-server older than fuguectl stop\); stop it with kill -TERM "\$\(cat .*fake\.sock\.pid\)"/],
    [{ pid: '123' }, /it gave "123" as its pid, which is not a process id/],
    [{ pid: -5 }, /it gave -5 as its pid/],
  ];
  for (const [fields, re] of cases) {
    const fake = await lyingServer(t, fields);
    const r = await ctl(['--socket', fake.path, 'stop']);
    t.is(r.code, 77, JSON.stringify(fields));
    t.regex(r.stderr, re);
    t.regex(r.stderr, /No signal was sent\n$/);
  }
});

test('a server already draining (its own pid, shown to hold the socket) is only waited for: no second SIGTERM', async (t) => {
  // The fake runs in this test process, which does hold the socket: fuguectl
  // must not signal it, because the server says it is draining already.
  const fake = await lyingServer(t, { pid: process.pid, draining: true });
  const r = await ctl(['--socket', fake.path, 'stop', '--timeout', '2000']);
  t.is(r.code, 75, r.stderr);
  t.regex(r.stderr, new RegExp(`^fuguectl: the server at ${fake.path} \\(pid ${process.pid}\\) is already draining; waiting up to 2000 ms for it to exit\\n`));
});

test('the advice of "already running" (exit 69), fuguectl --socket PATH stop, works as written', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const first = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await first.ready();
  const second = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  t.is((await second.exited).code, 69);
  const advice = /stop it first \(fuguectl --socket (\S+) stop, which checks that pid and waits for the drain, or kill -TERM (\d+)\)/.exec(second.stderr);
  t.truthy(advice, second.stderr);
  t.is(advice![1], sock);
  t.is(Number(advice![2]), first.child.pid!);
  const r = await ctl(['--socket', advice![1]!, 'stop']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await first.exited, { code: 0, signal: null });
});
