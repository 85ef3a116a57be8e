import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONFIG_FILE, defaultSocketPath, loadConfig } from '../../src/config/load.js';
import { keySpecs } from '../../src/config/schema.js';
import type { FugueError } from '../../src/errors.js';
import { tmpDir } from '../helpers/tmp.js';

const env = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' };

test('defaults: socket under $XDG_RUNTIME_DIR/fugue, else ~/.fugue', (t) => {
  t.is(loadConfig({ env }).config.socket.path, '/run/user/1000/fugue/fugue.sock');
  t.is(loadConfig({ env: { HOME: '/home/u' } }).config.socket.path, '/home/u/.fugue/fugue.sock');
  const c = loadConfig({ env }).config;
  t.is(c.limits.maxClients, 1024);
  t.is(c.limits.maxFrameBytes, 16777216);
  t.is(c.shutdown.timeoutMs, 10000);
  t.is(c.limits.handshakeTimeoutMs, 10000);
  t.is(c.limits.idleTimeoutMs, 0);
  t.is(c.socket.mode, '0600');
  t.is(c.http.host, '127.0.0.1');
});

test('precedence: defaults < default.json < --config files (in order) < env < flags', (t) => {
  const dir = tmpDir(t);
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  writeFileSync(a, JSON.stringify({ limits: { maxClients: 10, idleTimeoutMs: 5 }, shutdown: { timeoutMs: 1 } }));
  writeFileSync(b, JSON.stringify({ limits: { maxClients: 20 } }));
  const files = ['--config', a, '--config', b];
  t.is(loadConfig({ env, argv: files }).config.limits.maxClients, 20);
  t.is(loadConfig({ env, argv: files }).config.limits.idleTimeoutMs, 5);
  t.is(loadConfig({ env: { ...env, FUGUE_MAX_CLIENTS: '30' }, argv: files }).config.limits.maxClients, 30);
  t.is(loadConfig({ env: { ...env, FUGUE_MAX_CLIENTS: '30' }, argv: [...files, '--max-clients', '40'] }).config.limits.maxClients, 40);
  t.is(loadConfig({ env: { ...env, FUGUE_MAX_CLIENTS: '30' }, argv: [...files, '--max-clients=50'] }).config.limits.maxClients, 50);
});

test('FUGUE_CONFIG names config files (comma-separated) when no --config is given', (t) => {
  const dir = tmpDir(t);
  const a = join(dir, 'a.json');
  writeFileSync(a, JSON.stringify({ log: { level: 'debug' } }));
  const r = loadConfig({ env: { ...env, FUGUE_CONFIG: a } });
  t.is(r.config.log.level, 'debug');
  t.true(r.files.includes(a));
});

test('every key has an env var and a flag, all distinct', (t) => {
  const specs = Object.values(keySpecs('/x'));
  t.is(new Set(specs.map((s) => s.env)).size, specs.length);
  t.is(new Set(specs.map((s) => s.flag)).size, specs.length);
  for (const s of specs) t.regex(s.env, /^FUGUE_[A-Z_]+$/);
});

test('config/default.json holds every key at its schema default (except the environment-dependent socket.path)', (t) => {
  const file = JSON.parse(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')) as Record<string, Record<string, unknown>>;
  for (const [key, spec] of Object.entries(keySpecs('/x'))) {
    if (key === 'socket.path') continue;
    const [g, l] = key.split('.') as [string, string];
    t.deepEqual(file[g]?.[l], spec.default, key);
  }
});

test('~, $VAR and ${VAR} are expanded and relative paths resolved', (t) => {
  t.is(loadConfig({ env: { ...env, FUGUE_SOCKET_PATH: '~/s/f.sock' } }).config.socket.path, '/home/u/s/f.sock');
  t.is(loadConfig({ env: { ...env, FUGUE_SOCKET_PATH: '$XDG_RUNTIME_DIR/x.sock' } }).config.socket.path, '/run/user/1000/x.sock');
  t.is(loadConfig({ env: { ...env, FUGUE_SOCKET_PATH: '${HOME}/y.sock' } }).config.socket.path, '/home/u/y.sock');
  t.is(loadConfig({ env: { ...env, FUGUE_SOCKET_PATH: 'rel/f.sock' }, cwd: '/srv' }).config.socket.path, '/srv/rel/f.sock');
  t.throws(() => loadConfig({ env: { ...env, FUGUE_SOCKET_PATH: '$NOPE/f.sock' } }), { code: 'FUGUE_ERR_CONFIG_INVALID', message: /\$NOPE, which is not set/ });
});

const badValues: Array<[string, Record<string, string>, RegExp]> = [
  ['a non-numeric limit', { FUGUE_MAX_CLIENTS: 'abc' }, /limits\.maxClients: must be an integer from 1 to 1000000, got "abc" \(from env FUGUE_MAX_CLIENTS/],
  ['a negative timeout', { FUGUE_SHUTDOWN_TIMEOUT_MS: '-5' }, /shutdown\.timeoutMs: .*got -5/],
  ['a bad boolean', { FUGUE_HTTP_ENABLED: 'nope' }, /http\.enabled: must be true or false, got "nope"/],
  ['a bad log level', { FUGUE_LOG_LEVEL: 'loud' }, /log\.level: must be one of .*"info".*got "loud"/],
  ['a bad socket mode', { FUGUE_SOCKET_MODE: '999' }, /socket\.mode: must be an octal permission string/],
  ['a mode the owner cannot use', { FUGUE_SOCKET_MODE: '0400' }, /at least "0600"/],
  ['a tiny maxFrameBytes', { FUGUE_MAX_FRAME_BYTES: '10' }, /limits\.maxFrameBytes: must be an integer from 1024/],
];
for (const [name, e, re] of badValues) {
  test(`rejects ${name} with the key, value and source`, (t) => {
    t.throws(() => loadConfig({ env: { ...env, ...e } }), { code: 'FUGUE_ERR_CONFIG_INVALID', message: re });
  });
}

test('rejects an unknown key in a file, naming the key, the file and line, and the likely key meant', (t) => {
  const f = join(tmpDir(t), 'c.json');
  writeFileSync(f, '{\n  "limits": {\n    "maxClient": 3\n  }\n}\n');
  t.throws(() => loadConfig({ env, argv: ['--config', f] }), { code: 'FUGUE_ERR_CONFIG_INVALID', message: new RegExp(`limits\\.maxClient: unknown key \\(in config file ${f}, line 3; did you mean limits\\.maxClients\\? known keys here: limits\\.maxClients`) });
  writeFileSync(f, JSON.stringify({ limit: {} }));
  t.throws(() => loadConfig({ env, argv: ['--config', f] }), { message: /limit: unknown section .*did you mean "limits"\?/ });
});

test('rejects a wrong type in a file (no silent coercion of "100")', (t) => {
  const f = join(tmpDir(t), 'c.json');
  writeFileSync(f, JSON.stringify({ limits: { maxClients: '100' } }));
  t.throws(() => loadConfig({ env, argv: ['--config', f] }), { message: new RegExp(`limits\\.maxClients: must be an integer.*got "100" \\(from config file ${f}`) });
});

test('rejects unreadable and invalid JSON files with the path', (t) => {
  const f = join(tmpDir(t), 'c.json');
  t.throws(() => loadConfig({ env, argv: ['--config', f] }), { code: 'FUGUE_ERR_CONFIG_FILE', message: new RegExp(`config file ${f}: cannot open it \\(ENOENT\\): no such file`) });
  writeFileSync(f, '{ nope');
  t.throws(() => loadConfig({ env, argv: ['--config', f] }), { code: 'FUGUE_ERR_CONFIG_FILE', message: new RegExp(`config file ${f}: it is not valid JSON: .* \\(line 1, column 3\\)`) });
});

test('checks related options: maxBufferedBytes must hold two max-size frames', (t) => {
  t.throws(() => loadConfig({ env: { ...env, FUGUE_MAX_BUFFERED_BYTES: '4096', FUGUE_MAX_FRAME_BYTES: '4096' } }), { message: /limits\.maxBufferedBytes \(4096\) must be at least twice limits\.maxFrameBytes/ });
});

test('usage errors: unknown flag, missing value, stray argument', (t) => {
  t.throws(() => loadConfig({ env, argv: ['--nope'] }), { code: 'FUGUE_ERR_USAGE' });
  t.throws(() => loadConfig({ env, argv: ['--config'] }), { code: 'FUGUE_ERR_USAGE', message: /--config needs a value/ });
  t.throws(() => loadConfig({ env, argv: ['serve'] }), { code: 'FUGUE_ERR_USAGE' });
});

test('the result is deeply frozen', (t) => {
  const { config } = loadConfig({ env });
  t.true(Object.isFrozen(config) && Object.isFrozen(config.limits));
});

test('defaultSocketPath ignores an empty XDG_RUNTIME_DIR', (t) => {
  t.is(defaultSocketPath({ XDG_RUNTIME_DIR: '', HOME: '/h' }), '/h/.fugue/fugue.sock');
});

test('config/example.json is a valid configuration', (t) => {
  const example = DEFAULT_CONFIG_FILE.replace(/default\.json$/, 'example.json');
  const { config } = loadConfig({ env, argv: ['--config', example] });
  t.is(config.socket.path, '/run/fugue/fugue.sock');
  t.is(config.tracing.sampleRatio, 0.01);
});

test('an unknown FUGUE_* variable is a problem naming it and the closest known name, listed with the others; FUGUE_TEST_* is reserved', (t) => {
  const err = t.throws<FugueError>(() => loadConfig({ env: { ...env, FUGUE_MAXCLIENTS: '10', FUGUE_LOGLEVEL: 'debug', FUGUE_MAX_CLIENTS: 'lots', FUGUE_ZZZZZZZZZZZZZZ: '1', FUGUE_TEST_ANYTHING: 'x' } }), { code: 'FUGUE_ERR_CONFIG_INVALID' });
  const problems = (err!.details.problems as Array<{ source: string; message: string }>);
  t.deepEqual(problems.map((p) => p.source), ['env FUGUE_MAX_CLIENTS', 'env FUGUE_MAXCLIENTS', 'env FUGUE_LOGLEVEL', 'env FUGUE_ZZZZZZZZZZZZZZ']);
  t.regex(problems[1]!.message, /^FUGUE_MAXCLIENTS: unknown environment variable, set to "10" \(did you mean FUGUE_MAX_CLIENTS\? /);
  t.regex(problems[2]!.message, /did you mean FUGUE_LOG_LEVEL\?/);
  t.regex(problems[3]!.message, /^FUGUE_ZZZZZZZZZZZZZZ: unknown environment variable, set to "1" \(fugue reads FUGUE_CONFIG and one FUGUE_\* variable per config key, listed in docs\/configuration\.md; FUGUE_TEST_\* is reserved for fugue's tests\); unset it or correct its name$/);
  t.notThrows(() => loadConfig({ env: { ...env, FUGUE_TEST_FUZZ_SEED: '1', FUGUE_CONFIG: '' } }));
});

test('without a config file of its own, the configuration is built without loading convict, and is exactly what convict builds', async (t) => {
  const { defaultConfig, validated, withOverrides } = await import('../../src/config/load.js');
  const { keySpecs } = await import('../../src/config/schema.js');
  const specs = keySpecs('/run/user/1000/fugue/fugue.sock');
  t.deepEqual(defaultConfig(specs), validated(specs, [], {}, new Map()));
  const overrides = { 'log.level': 'debug', 'limits.maxClients': 7, 'socket.path': '/tmp/x.sock', 'http.port': 0, 'tracing.sampleRatio': 0.5 };
  t.deepEqual(withOverrides(defaultConfig(specs), overrides), validated(specs, [], overrides, new Map()));
  // In a fresh process: loading the default configuration leaves convict unloaded; a setting off its default loads it.
  const { execFileSync } = await import('node:child_process');
  const url = new URL('../../src/config/load.js', import.meta.url).href;
  const probe = (env: string) => execFileSync(process.execPath, ['--input-type=module', '-e', `
    import { createRequire } from 'node:module';
    const { loadConfig } = await import(${JSON.stringify(url)});
    loadConfig({ env: { HOME: '/tmp'${env} } });
    console.log(Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/convict/')));
  `], { encoding: 'utf8' }).trim();
  t.is(probe(''), 'false', 'convict not loaded for the defaults');
  t.is(probe(", FUGUE_LOG_LEVEL: 'debug', FUGUE_SOCKET_PATH: '/tmp/x.sock'"), 'false', 'nor for env values (each checked by its format)');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const file = `${mkdtempSync('/tmp/fg-')}/c.json`;
  writeFileSync(file, JSON.stringify({ log: { level: 'debug' } }));
  t.is(probe(`, FUGUE_CONFIG: ${JSON.stringify(file)}`), 'true', 'but for a config file of its own, layered and validated by convict');
});
