// A client written in Python from docs/protocol.md alone, against the real server process.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testNeeding } from '../helpers/needs.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const CLIENT = fileURLToPath(new URL('../../../test/fixtures/foreign_client.py', import.meta.url));
const hasPython = spawnSync('python3', ['--version']).status === 0;
const maybe = (title: string, impl: Parameters<typeof testNeeding>[2]) => testNeeding({ missing: hasPython ? undefined : 'python3 is not installed', providedByCi: true }, title, impl);

function runPython(args: string[]) {
  const child = spawn('python3', [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '', lines: [] as Array<Record<string, unknown>> };
  child.stdout.on('data', (d: Buffer) => {
    out.stdout += d.toString();
    out.lines = out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  });
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, out, exited };
}

maybe('a Python client gets every reply and every error code it can provoke', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const py = runPython([sock, 'all']);
  const code = await py.exited;
  t.is(code, 0, `${py.out.stdout}\n${py.out.stderr}`);
  t.true(py.out.lines.length >= 20);
  t.true(py.out.lines.every((l) => l.ok === true));
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});

maybe('200 Python clients at once; SIGTERM drains them all, removes the socket, exits 0; kill -9 + restart serves again', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_LOG_LEVEL: 'warn' } });
  await s.ready();
  const py = runPython([sock, 'many']);
  await waitFor(() => py.out.lines.some((l) => l.ready === 200) || py.child.exitCode !== null, { what: '200 python clients ready', timeoutMs: 30_000 });
  s.child.kill('SIGTERM');
  t.is(await py.exited, 0, `${py.out.stdout.slice(-2000)}\n${py.out.stderr}`);
  t.deepEqual(await s.exited, { code: 0, signal: null });
  t.false(existsSync(sock));

  const again = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await again.ready();
  again.child.kill('SIGKILL');
  await again.exited;
  t.true(existsSync(sock), 'stale socket left by kill -9');
  const third = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await third.ready();
  const py2 = runPython([sock, 'all']);
  t.is(await py2.exited, 0, py2.out.stdout + py2.out.stderr);
  third.child.kill('SIGTERM');
  t.is((await third.exited).code, 0);
});
