// `fuguectl events` against the real daemon (issue 16, "Done when"): a client
// connecting and leaving, a SIGHUP reload and the drain of a SIGTERM, in
// order, with no gap in the sequence; and how it ends, with the documented
// exit codes.
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { childEnv } from '../helpers/child-env.js';
import { CTL_BIN, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/** `fuguectl events ARGS` as a child process, its output collected. */
function watch(t: Parameters<typeof tmpDir>[0], sock: string, args: string[] = []) {
  const child = spawn(process.execPath, [CTL_BIN, '--socket', sock, 'events', ...args], { env: childEnv({ PATH: process.env.PATH }), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const watching = waitFor(() => out.stderr.includes('watching') || out.stdout.length > 0 || child.exitCode !== null, { what: `fuguectl events subscribed (${out.stderr})` });
  return { child, out, exited, watching };
}

test('against the real daemon: a client connecting and leaving, a SIGHUP reload and a SIGTERM drain, in order, no gap; exit 3 when the server shuts down', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const file = join(dir, 'server.json');
  writeFileSync(file, JSON.stringify({ limits: { maxClients: 50 } }));
  const s = spawnServer(t, { args: ['--config', file], env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const w = watch(t, sock, ['--json']);
  await w.watching;
  const c = await FugueClient.connect(sock, { clientName: 'visitor' });
  await c.detach();
  await waitFor(() => w.out.stdout.includes('client.left'), { what: `client.left (${w.out.stdout})` });
  writeFileSync(file, JSON.stringify({ limits: { maxClients: 40 } }));
  s.child.kill('SIGHUP');
  await waitFor(() => w.out.stdout.includes('config.reloaded'), { what: 'config.reloaded' });
  s.child.kill('SIGTERM');
  t.is(await w.exited, 3, w.out.stderr);
  t.is((await s.exited).code, 0);
  const events = w.out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(events.map((e) => e.kind), ['client.connected', 'client.left', 'config.reloaded', 'drain.started']);
  t.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4], 'no gap in the sequence');
  t.like(events[0], { type: 'event', name: 'visitor' });
  t.like(events[1], { name: 'visitor', reason: 'detach' });
  t.like(events[2], { applied: ['limits.maxClients'] });
  t.like(events[3], { clients: 1 });
  t.regex(w.out.stderr, /is shutting down/);
});

test('human lines escape what clients chose; Ctrl-C ends it with exit 0; a lost connection without shutdown is 69; --kind filters', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const only = watch(t, sock, ['--kind', 'client.left']);
  await only.watching;
  const w = watch(t, sock);
  await w.watching;
  const hostile = 'x\u202eevil\u001b[31m\nline';
  const c = await FugueClient.connect(sock, { clientName: hostile });
  await c.detach();
  await waitFor(() => w.out.stdout.split('\n').length > 2, { what: `two lines (${w.out.stdout})` });
  const [connected, left] = w.out.stdout.trim().split('\n');
  t.regex(connected!, /^\d{4}-\d\d-\d\dT[\d:.]+Z #1 client\.connected client_id=\d+ name="x\\u\{202e\}evil\\u\{1b\}\[31m\\nline"$/);
  t.regex(left!, /#2 client\.left .*reason="detach"/);
  t.false(/[\u202e\u001b]/.test(w.out.stdout), 'no raw control reaches the terminal');
  await waitFor(() => only.out.stdout.includes('client.left'), { what: 'the filtered watcher' });
  t.notRegex(only.out.stdout, /client\.connected/);
  t.regex(only.out.stdout, /^\S+ #1 client\.left/, 'a filtered subscription has its own sequence');
  w.child.kill('SIGINT');
  t.is(await w.exited, 0);
  s.child.kill('SIGKILL'); // no shutdown notice: the connection is simply lost
  t.is(await only.exited, 69, only.out.stderr);
  t.regex(only.out.stderr, /closed the connection without saying it was shutting down/);
});

test('usage: an unknown kind is exit 64 naming the kinds', async (t) => {
  const w = watch(t, '/nonexistent/f.sock', ['--kind', 'client.joined']);
  t.is(await w.exited, 64);
  t.regex(w.out.stderr, /--kind takes event kinds \(client\.connected, client\.left/);
});
