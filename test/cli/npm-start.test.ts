// Stopping a server started with `npm start` (issue 18 point 4): README says
// to stop it with Ctrl-C or kill -TERM, and npm is the pid a developer sees.
// npm 11 passes SIGINT and SIGTERM on to its script's process, which is the
// server itself because the start script execs it; a terminal's Ctrl-C
// reaches npm and the server both. Real npm, real signals, the real server.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from '../helpers/child-env.js';
import { alive } from '../helpers/proc.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';
import type { LogLine } from '../helpers/log-sink.js';

const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));

/** `npm start` in its own process group (as a terminal's foreground job is), serving `sock`. */
async function npmStart(t: Parameters<typeof tmpDir>[0], sock: string) {
  const env = childEnv({ PATH: process.env.PATH, HOME: process.env.HOME, FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: '0', npm_config_loglevel: 'silent', npm_config_update_notifier: 'false' });
  const npm = spawn('npm', ['start', '--silent'], { cwd: CHECKOUT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  t.teardown(() => { try { process.kill(-npm.pid!, 'SIGKILL'); } catch { /* gone */ } });
  let out = '';
  let err = '';
  npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => npm.on('close', (code) => resolve(code)));
  const logs = (): LogLine[] => out.split('\n').flatMap((l) => { try { return [JSON.parse(l) as LogLine]; } catch { return []; } });
  const serverPid = await waitFor(() => {
    try {
      return Number(readFileSync(`${sock}.pid`, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }, { what: `the server started by npm start to write its pid file (stderr: ${err})`, timeoutMs: 60_000 });
  t.teardown(() => { try { process.kill(serverPid, 'SIGKILL'); } catch { /* gone */ } });
  return { npm, serverPid, exited, logs, stderr: () => err };
}

test('kill -TERM <npm\'s pid> drains the server: it exits 0 having drained, npm exits with it, nothing is left running or listening', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = await npmStart(t, sock);
  t.not(s.serverPid, s.npm.pid, 'the server is npm\'s child, not npm');
  process.kill(s.npm.pid!, 'SIGTERM');
  t.is(await s.exited, 0, s.stderr());
  t.false(alive(s.serverPid), 'no orphaned server');
  t.false(existsSync(sock), 'socket removed');
  const logs = s.logs();
  t.like(logs.find((l) => l.msg === 'received shutdown signal, draining'), { signal: 'SIGTERM' });
  t.like(logs.find((l) => l.msg === 'drain finished'), { forced: 0 });
  t.truthy(logs.find((l) => l.msg === 'fugue-server stopped'));
});

test('Ctrl-C (SIGINT to npm\'s process group, as a terminal sends it) drains once: npm\'s copy of the signal does not force the stop', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = await npmStart(t, sock);
  process.kill(-s.npm.pid!, 'SIGINT');
  t.is(await s.exited, 0, s.stderr());
  t.false(alive(s.serverPid));
  t.false(existsSync(sock));
  const logs = s.logs();
  t.is(logs.filter((l) => l.msg === 'received shutdown signal, draining').length, 1);
  t.falsy(logs.find((l) => l.msg === 'second signal during drain: exiting now'), 'not forced');
  t.truthy(logs.find((l) => l.msg === 'fugue-server stopped'));
});
