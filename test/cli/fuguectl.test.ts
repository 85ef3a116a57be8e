import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CTL_BIN, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';

function ctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CTL_BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('fuguectl ping, status and echo against a running server', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const ping = await ctl(['--socket', sock, 'ping']);
  t.is(ping.code, 0, ping.stderr);
  t.regex(ping.stdout, /^pong from .* in [\d.]+ ms/);
  const status = await ctl(['status'], { FUGUE_SOCKET_PATH: sock });
  t.is(status.code, 0);
  t.like(JSON.parse(status.stdout), { type: 'status', clients: 1, draining: false });
  const echo = await ctl(['--socket', sock, 'echo', 'hello', 'world']);
  t.is(echo.stdout, 'hello world\n');
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});

test('fuguectl exits non-zero with a clear message when no server answers', async (t) => {
  const sock = join(tmpDir(t), 'none.sock');
  const r = await ctl(['--socket', sock, 'ping']);
  t.is(r.code, 69);
  t.regex(r.stderr, new RegExp(`cannot connect to ${sock} \\(ENOENT\\).*is fugue-server running`));
});

test('fuguectl without a command prints usage and exits 64', async (t) => {
  const r = await ctl([]);
  t.is(r.code, 64);
  t.regex(r.stderr, /missing command[\s\S]*Usage: fuguectl/);
});
