// The programs as installed (package.json "bin": dist/bin/, bundled by the
// build into CommonJS so that a start and a fuguectl call load four files
// instead of dozens, without the ESM loader; docs/performance.md): the same code as dist/src/ (which the other
// CLI tests run, for coverage), checked here end to end: they start, serve,
// find their package's files (version, config/default.json), stop.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from '../helpers/child-env.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

function run(bin: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [join(ROOT, bin), ...args], { env: childEnv({ PATH: process.env.PATH, HOME: '/tmp', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out, exited };
}

test('the bundled fugue-server and fuguectl of package.json "bin" start, serve, know their version and default config, and stop', async (t) => {
  t.deepEqual(pkg.bin, { 'fugue-server': 'dist/bin/fugue-server.js', fuguectl: 'dist/bin/fuguectl.js' });
  const sock = join(tmpDir(t), 'f.sock');
  const version = run(pkg.bin['fugue-server']!, ['--version'], {});
  t.is(await version.exited, 0);
  t.is(version.out.stdout.trim(), pkg.version);
  const s = run(pkg.bin['fugue-server']!, [], { FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: '0' });
  t.teardown(() => s.child.kill('SIGKILL'));
  await waitFor(() => s.out.stdout.includes('"http sidecar listening"'), { what: `the bundled server up (${s.out.stderr})` });
  const start = JSON.parse(s.out.stdout.split('\n')[0]!) as { configFiles: string[]; version: string };
  t.deepEqual(start.configFiles, [join(ROOT, 'config', 'default.json')]);
  t.is(start.version, pkg.version);
  const ping = run(pkg.bin.fuguectl!, ['--socket', sock, 'status', '--json'], {});
  t.is(await ping.exited, 0, ping.out.stderr);
  t.like(JSON.parse(ping.out.stdout), { server_version: pkg.version, clients: 1 });
  s.child.kill('SIGTERM');
  t.is(await s.exited, 0);
});

// npx (npm exec) in a checkout runs the checkout's own bin by installing the
// checkout into its cache as a link, which runs its prepare script. A prepare
// that rebuilt unconditionally deleted dist/ under a running server and under
// this very suite (the README's quick start and operations.md use
// `npx fuguectl` from a checkout): prepare builds only when dist/ is missing
// or older than the sources.
test('npx fuguectl in a checkout, with an empty npm cache (as on a new machine): the checkout\'s fuguectl runs and dist/ is left as it is', async (t) => {
  const stamp = join(ROOT, 'dist', 'bin', 'package.json');
  const before = statSync(stamp, { bigint: true });
  const npx = spawn('npx', ['--yes', 'fuguectl', '--version'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: tmpDir(t), npm_config_cache: tmpDir(t), npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npx.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => npx.on('close', resolve));
  t.is(code, 0, out);
  t.is(out.trim().split('\n').at(-1), pkg.version);
  const after = statSync(stamp, { bigint: true });
  t.is(after.ino, before.ino, 'dist/ was not rebuilt');
  t.is(after.mtimeNs, before.mtimeNs, 'dist/ was not rebuilt');
});
