// fuguectl finds the server the way the server found its socket (issue 18,
// point 4): the same --config files and FUGUE_CONFIG, FUGUE_SOCKET_PATH over
// them, --socket over that; a bad file gets the server's own message; a FUGUE_*
// variable fugue does not know stops the server and fuguectl alike. Real
// daemons, the real fuguectl, real files.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONFIG_FILE } from '../../src/config/load.js';
import { ctl } from '../helpers/ctl.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';

test('a server started from a config file is found through --config and FUGUE_CONFIG (a relative socket.path is resolved against the file\'s directory, whatever the working directory)', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, 'server.yaml');
  writeFileSync(file, 'socket:\n  path: run/f.sock   # relative to this file\nhttp:\n  port: 0\n');
  const s = spawnServer(t, { args: ['--config', file] });
  await s.ready();
  const elsewhere = tmpDir(t);
  const byFlag = await ctl(['--config', file, 'wait-ready', '--timeout', '10000'], {}, { cwd: elsewhere });
  t.is(byFlag.code, 0, byFlag.stderr);
  t.is(byFlag.stdout.split(' ')[1], join(dir, 'run', 'f.sock'));
  const byEnv = await ctl(['status', '--json'], { FUGUE_CONFIG: file }, { cwd: elsewhere });
  t.is(byEnv.code, 0, byEnv.stderr);
  t.like(JSON.parse(byEnv.stdout), { draining: false });
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});

test('precedence is the server\'s: the file < FUGUE_SOCKET_PATH < --socket, and later files win', async (t) => {
  const dir = tmpDir(t);
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.yml');
  writeFileSync(a, JSON.stringify({ socket: { path: join(dir, 'a.sock') } }));
  writeFileSync(b, `socket:\n  path: ${join(dir, 'b.sock')}\n`);
  // Nothing listens anywhere: the message says which path was tried and where it came from.
  const files = await ctl(['--config', a, '--config', b, 'ping']);
  t.is(files.code, 69);
  t.regex(files.stderr, new RegExp(`^fuguectl: cannot connect to ${join(dir, 'b.sock')} \\(ENOENT\\).*\\(fuguectl took the socket path from config file ${b}, line 2\\)\\n$`));
  const list = await ctl(['ping'], { FUGUE_CONFIG: `${b},${a}` });
  t.regex(list.stderr, new RegExp(`cannot connect to ${join(dir, 'a.sock')} .*from config file ${a}, line 1\\)`));
  const env = await ctl(['--config', a, 'ping'], { FUGUE_SOCKET_PATH: 'e.sock' }, { cwd: dir });
  t.regex(env.stderr, new RegExp(`cannot connect to ${join(dir, 'e.sock')} .*from env FUGUE_SOCKET_PATH\\)`));
  const flag = await ctl(['--config', a, '--socket', join(dir, 'f.sock'), 'ping'], { FUGUE_SOCKET_PATH: 'e.sock' });
  t.regex(flag.stderr, new RegExp(`^fuguectl: cannot connect to ${join(dir, 'f.sock')} \\(ENOENT\\)[^(]*\\([^)]*\\)\\n$`), 'no source note for --socket');
  const none = await ctl(['ping'], { XDG_RUNTIME_DIR: dir });
  t.regex(none.stderr, new RegExp(`cannot connect to ${join(dir, 'fugue', 'fugue.sock')} .*from the default: no --socket, FUGUE_SOCKET_PATH or config file \\(--config, FUGUE_CONFIG\\) named one\\)`));
});

test('config/default.json sets no socket.path (fuguectl does not read it, so it must not)', (t) => {
  t.false('path' in ((JSON.parse(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')) as { socket?: object }).socket ?? {}));
});

/** The problems of a configuration error, one per line, without the program's prefix. */
function problemLines(stderr: string, prefix: string): string {
  return stderr.slice(prefix.length).split(/\n\s*/).join(' ').trim();
}

test('a bad config file: fuguectl exits 78 with the server\'s own message (file, line, key, what is expected)', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'socket:\n  pth: /x.sock\n  mode: 0600\nlimits:\n  maxClients: lots\n');
  const server = spawnServer(t, { args: ['--config', file, '--check-config'] });
  t.is((await server.exited).code, 78);
  const mine = await ctl(['--config', file, 'ping']);
  t.is(mine.code, 78);
  t.is(mine.stderr.split('\n').length, 2, 'one line');
  t.is(problemLines(mine.stderr, 'fuguectl: '), problemLines(server.stderr, 'fugue-server: '));
  t.regex(mine.stderr, new RegExp(`socket\\.pth: unknown key \\(in config file ${file}, line 2; did you mean socket\\.path\\?`));
  t.regex(mine.stderr, /socket\.mode: must be an octal permission string .* line 3/);
  t.regex(mine.stderr, /limits\.maxClients: must be an integer .*got "lots" .* line 5/);
  const missing = await ctl(['status'], { FUGUE_CONFIG: join(dir, 'nope.json') });
  t.is(missing.code, 78);
  t.regex(missing.stderr, new RegExp(`^fuguectl: invalid configuration: config file ${join(dir, 'nope.json')}: cannot open it \\(ENOENT\\): no such file; check the path given with --config or FUGUE_CONFIG`));
});

test('a FUGUE_* variable fugue does not know stops the server and fuguectl alike, naming it and the closest known one; FUGUE_TEST_* is reserved', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const server = spawnServer(t, { args: ['--check-config'], env: { FUGUE_SOCKET_PATH: sock, FUGUE_MAXCLIENTS: '10' } });
  t.is((await server.exited).code, 78);
  const expected = /FUGUE_MAXCLIENTS: unknown environment variable, set to "10" \(did you mean FUGUE_MAX_CLIENTS\? .*\); unset it or correct its name/;
  t.regex(server.stderr, expected);
  t.notRegex(server.stdout, /configuration is valid/);
  const mine = await ctl(['--socket', sock, 'ping'], { FUGUE_MAXCLIENTS: '10' });
  t.is(mine.code, 78);
  t.regex(mine.stderr, expected);
  const typo = await ctl(['ping'], { FUGUE_SOCKET_PTH: sock });
  t.regex(typo.stderr, /FUGUE_SOCKET_PTH: unknown environment variable, set to ".*" \(did you mean FUGUE_SOCKET_PATH\?/);
  // The test suite's own variables, and everything fuguectl reads, are fine for both.
  const ok = spawnServer(t, { args: ['--check-config'], env: { FUGUE_SOCKET_PATH: sock, FUGUE_CONFIG: '', FUGUE_TEST_FUZZ_SEED: '7' } });
  t.is((await ok.exited).code, 0, ok.stderr);
  const ctlOk = await ctl(['--socket', sock, 'ping'], { FUGUE_TEST_FUZZ_SEED: '7', FUGUE_MAX_CLIENTS: '10', FUGUE_LOG_LEVEL: 'debug' });
  t.is(ctlOk.code, 69, 'only the connection fails: every variable is known or reserved');
});

test('an empty or unusable FUGUE_SOCKET_PATH is refused by fuguectl as by the server', async (t) => {
  for (const [value, re] of [['', /socket\.path: must be a non-empty string, got "" \(from env FUGUE_SOCKET_PATH; expected path\)/], ['$NOPE/f.sock', /socket\.path: uses \$NOPE, which is not set, got "\$NOPE\/f\.sock" \(from env FUGUE_SOCKET_PATH; expected path\)/]] as const) {
    const server = spawnServer(t, { args: ['--check-config'], env: { FUGUE_SOCKET_PATH: value } });
    t.is((await server.exited).code, 78);
    t.regex(server.stderr, re);
    const mine = await ctl(['ping'], { FUGUE_SOCKET_PATH: value });
    t.is(mine.code, 78, mine.stderr);
    t.regex(mine.stderr, re);
  }
});
