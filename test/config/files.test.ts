// Config files as operators write them (issue 9, point 6: YAML and JSON, paths
// relative to the file, every problem in one run) and as an attacker might
// (issue 13, point 5: special files, size, encoding, nesting, duplicates,
// aliases, tags, enormous values, number formats).
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_CONFIG_FILE, loadConfig, type ConfigProblem } from '../../src/config/load.js';
import { MAX_CONFIG_DEPTH } from '../../src/config/parse-file.js';
import { MAX_CONFIG_FILE_BYTES } from '../../src/config/read-file.js';
import { FugueError } from '../../src/errors.js';
import { SERVER_BIN } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { childEnv } from '../helpers/child-env.js';

const env = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' };

function failure(t: ExecutionContext, run: () => unknown): FugueError {
  const err = t.throws(run);
  if (!(err instanceof FugueError)) throw new Error(`expected a FugueError, got ${String(err)}`);
  return err;
}

function problemsOf(err: FugueError): ConfigProblem[] {
  return err.details.problems as ConfigProblem[];
}

function load(file: string, extraEnv: Record<string, string> = {}) {
  return loadConfig({ env: { ...env, ...extraEnv }, argv: ['--config', file] });
}

test('config/example.yaml and config/example.json give the same configuration', (t) => {
  const yaml = load(DEFAULT_CONFIG_FILE.replace(/default\.json$/, 'example.yaml')).config;
  const json = load(DEFAULT_CONFIG_FILE.replace(/default\.json$/, 'example.json')).config;
  t.deepEqual(yaml, json);
  t.is(yaml.socket.mode, '0660');
  t.is(yaml.tracing.sampleRatio, 0.01);
});

test('.yaml and .yml are read as YAML and .json as JSON, by extension in any case', (t) => {
  const dir = tmpDir(t);
  for (const [name, text] of [['a.yml', 'limits:\n  maxClients: 7\n'], ['b.YAML', 'limits: {maxClients: 7}\n'], ['c.Json', '{"limits": {"maxClients": 7}}']] as const) {
    writeFileSync(join(dir, name), text);
    t.is(load(join(dir, name)).config.limits.maxClients, 7, name);
  }
});

test('a config file with another extension, or none, is refused naming the file and the extensions read', (t) => {
  const dir = tmpDir(t);
  for (const name of ['server.conf', 'server']) {
    writeFileSync(join(dir, name), '{}');
    const err = failure(t, () => load(join(dir, name)));
    t.is(err.code, 'FUGUE_ERR_CONFIG_FILE');
    t.regex(err.message, new RegExp(`config file ${join(dir, name)}: .*name it \\*\\.json for JSON or \\*\\.yaml / \\*\\.yml for YAML`));
    t.is(err.exitCode, 78);
  }
});

test('a relative socket.path in a config file resolves against the file\'s directory; from env or a flag, against the working directory', (t) => {
  const dir = tmpDir(t);
  mkdirSync(join(dir, 'etc'));
  const file = join(dir, 'etc', 'server.yaml');
  writeFileSync(file, 'socket:\n  path: run/f.sock\n');
  t.is(loadConfig({ env, argv: ['--config', file], cwd: '/srv' }).config.socket.path, join(dir, 'etc', 'run', 'f.sock'));
  t.is(loadConfig({ env: { ...env, FUGUE_SOCKET_PATH: 'run/f.sock' }, argv: ['--config', file], cwd: '/srv' }).config.socket.path, '/srv/run/f.sock');
  t.is(loadConfig({ env, argv: ['--config', file, '--socket-path', 'x.sock'], cwd: '/srv' }).config.socket.path, '/srv/x.sock');
  // ~ and $VAR still expand inside a file.
  writeFileSync(file, 'socket:\n  path: $XDG_RUNTIME_DIR/f.sock\n');
  t.is(loadConfig({ env, argv: ['--config', file], cwd: '/srv' }).config.socket.path, '/run/user/1000/f.sock');
  writeFileSync(file, 'socket:\n  path: $NOPE/f.sock\n');
  const err = failure(t, () => loadConfig({ env, argv: ['--config', file] }));
  t.regex(err.message, new RegExp(`socket\\.path: uses \\$NOPE, which is not set, got "\\$NOPE/f\\.sock" \\(from config file ${file}, line 2`));
});

test('a relative --config path resolves against the working directory', (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'c.yaml'), 'log:\n  level: warn\n');
  const r = loadConfig({ env, argv: ['--config', 'c.yaml'], cwd: dir });
  t.is(r.config.log.level, 'warn');
  t.true(r.files.includes(join(dir, 'c.yaml')));
});

test('every problem in every file, env var and flag is reported in one run, each with key, value, source and what is expected', (t) => {
  const dir = tmpDir(t);
  const a = join(dir, 'a.yaml');
  const b = join(dir, 'b.json');
  writeFileSync(a, 'limits:\n  maxClients: lots\n  maxClient: 3\nlog:\n  level: loud\nsocket: 5\n');
  writeFileSync(b, '{\n  "http": {"port": 70000, "enabled": "yes"}\n}\n');
  const err = failure(t, () => loadConfig({ env: { ...env, FUGUE_SHUTDOWN_TIMEOUT_MS: '-5' }, argv: ['--config', a, '--config', b, '--idle-timeout-ms', '1e3'] }));
  t.is(err.code, 'FUGUE_ERR_CONFIG_INVALID');
  t.regex(err.message, /^invalid configuration \(8 problems\):\n/);
  const lines = problemsOf(err).map((p) => p.message);
  t.deepEqual(problemsOf(err).map((p) => p.key), ['limits.maxClients', 'limits.maxClient', 'log.level', 'socket', 'http.port', 'http.enabled', 'shutdown.timeoutMs', 'limits.idleTimeoutMs']);
  t.regex(lines[0]!, new RegExp(`^limits\\.maxClients: must be an integer from 1 to 1000000, got "lots" \\(from config file ${a}, line 2; expected connections\\)$`));
  t.regex(lines[1]!, new RegExp(`^limits\\.maxClient: unknown key \\(in config file ${a}, line 3; did you mean limits\\.maxClients\\?`));
  t.regex(lines[2]!, new RegExp(`^log\\.level: must be one of .*, got "loud" \\(from config file ${a}, line 5; expected fatal\\|error`));
  t.regex(lines[3]!, new RegExp(`^socket: must be a section holding keys such as socket\\.path, got 5 \\(from config file ${a}, line 6`));
  t.regex(lines[4]!, new RegExp(`^http\\.port: must be an integer from 0 to 65535, got 70000 \\(from config file ${b}, line 2; expected port\\)$`));
  t.regex(lines[5]!, new RegExp(`^http\\.enabled: must be true or false, got "yes" \\(from config file ${b}, line 2; expected boolean\\)$`));
  t.regex(lines[6]!, /^shutdown\.timeoutMs: must be an integer from 0 to 3600000, got -5 \(from env FUGUE_SHUTDOWN_TIMEOUT_MS; expected ms\)$/);
  t.regex(lines[7]!, /^limits\.idleTimeoutMs: .*got "1e3" \(from flag --idle-timeout-ms; expected ms\); env vars and flags take decimal digits/);
  t.regex(err.message, /\nFix them \(see docs\/configuration\.md\) and try again\.$/);
});

test('a file problem and value problems in other files are reported together, as FUGUE_ERR_CONFIG_FILE', (t) => {
  const dir = tmpDir(t);
  const bad = join(dir, 'bad.json');
  const ok = join(dir, 'ok.yaml');
  writeFileSync(bad, '{"limits": ');
  writeFileSync(ok, 'limits:\n  maxClients: 0\n');
  const err = failure(t, () => loadConfig({ env, argv: ['--config', bad, '--config', ok] }));
  t.is(err.code, 'FUGUE_ERR_CONFIG_FILE');
  t.is(problemsOf(err).length, 2);
  t.like(problemsOf(err)[0], { file: bad, fileLevel: true, problem: 'syntax' });
  t.like(problemsOf(err)[1], { file: ok, line: 2, key: 'limits.maxClients', fileLevel: false });
});

test('a symbolic link to a regular config file is followed (as /etc/fugue/server.yaml -> ... and ConfigMap mounts are)', (t) => {
  const dir = tmpDir(t);
  mkdirSync(join(dir, '..data'));
  writeFileSync(join(dir, '..data', 'server.yaml'), 'socket:\n  path: f.sock\n');
  symlinkSync(join('..data', 'server.yaml'), join(dir, 'server.yaml'));
  // Relative paths resolve against the directory of the name given, not of the link's target.
  t.is(load(join(dir, 'server.yaml')).config.socket.path, join(dir, 'f.sock'));
  symlinkSync(join(dir, 'missing.yaml'), join(dir, 'dangling.yaml'));
  t.regex(failure(t, () => load(join(dir, 'dangling.yaml'))).message, /dangling\.yaml: cannot open it \(ENOENT\)/);
  symlinkSync(join(dir, 'loop.yaml'), join(dir, 'loop.yaml'));
  t.regex(failure(t, () => load(join(dir, 'loop.yaml'))).message, /loop\.yaml: cannot open it \(ELOOP\): too many levels of symbolic links/);
});

test('a FIFO, a character device, a directory and a socket are refused without reading them', async (t) => {
  const dir = tmpDir(t);
  const fifo = join(dir, 'fifo.yaml');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  const sock = join(dir, 'sock.json');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.teardown(() => server.close());
  mkdirSync(join(dir, 'd.json'));
  const cases: Array<[string, RegExp]> = [
    [fifo, /it is a FIFO \(named pipe\), not a regular file/],
    ['/dev/zero', /it is a character device, not a regular file/],
    ['/dev/null', /it is a character device, not a regular file/],
    [join(dir, 'd.json'), /it is a directory, not a regular file/],
    [sock, /cannot open it \(ENXIO\): it is a socket/],
  ];
  for (const [path, re] of cases) {
    const err = failure(t, () => load(path));
    t.is(err.code, 'FUGUE_ERR_CONFIG_FILE', path);
    t.regex(err.message, re, path);
    t.true(err.message.includes(`config file ${path}: `), path);
  }
});

test('a file over the size limit is refused by its size; one at the limit is read', (t) => {
  const dir = tmpDir(t);
  const big = join(dir, 'big.json');
  const body = JSON.stringify({ log: { level: 'info' } });
  writeFileSync(big, body + ' '.repeat(MAX_CONFIG_FILE_BYTES + 1 - body.length));
  t.regex(failure(t, () => load(big)).message, new RegExp(`big\\.json: it is ${MAX_CONFIG_FILE_BYTES + 1} bytes, more than the ${MAX_CONFIG_FILE_BYTES} bytes a config file may have`));
  writeFileSync(big, body + ' '.repeat(MAX_CONFIG_FILE_BYTES - body.length));
  t.is(load(big).config.log.level, 'info');
});

test('a file that is not valid UTF-8 is refused naming the byte, line and offset; a UTF-8 byte-order mark is accepted', (t) => {
  const dir = tmpDir(t);
  const f = join(dir, 'c.json');
  // Before: decoded with U+FFFD in place of the bad bytes, and a different socket directory created.
  writeFileSync(f, Buffer.concat([Buffer.from('{"socket": {\n"path": "/tmp/x'), Buffer.from([0xff, 0xfe]), Buffer.from('/f.sock"}}')]));
  const err = failure(t, () => load(f));
  t.is(err.code, 'FUGUE_ERR_CONFIG_FILE');
  t.regex(err.message, /it is not valid UTF-8 \(byte 0xff at line 2, byte 16 of the line, offset 28\); save it as UTF-8/);
  // Overlong encodings and UTF-16 surrogates are not valid UTF-8 either.
  for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
    writeFileSync(f, Buffer.concat([Buffer.from('{"log": {"level": "'), Buffer.from(bad), Buffer.from('"}}')]));
    t.regex(failure(t, () => load(f)).message, /not valid UTF-8 \(byte 0x[0-9a-f]{2} at line 1, byte 20 of the line, offset 19\)/, bad.join(','));
  }
  writeFileSync(f, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"log": {"level": "warn"}}')]));
  t.is(load(f).config.log.level, 'warn');
  writeFileSync(join(dir, 'c.yaml'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('log:\n  level: warn\n')]));
  t.is(load(join(dir, 'c.yaml')).config.log.level, 'warn');
});

function nestedJson(depth: number): string {
  // depth containers in all: the top-level object, "limits", then arrays.
  return `{"limits": {"maxClients": ${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}}}`;
}

test(`nesting deeper than ${MAX_CONFIG_DEPTH} levels is refused in JSON, and the limit itself is parsed`, (t) => {
  const f = join(tmpDir(t), 'c.json');
  writeFileSync(f, nestedJson(MAX_CONFIG_DEPTH));
  const atLimit = failure(t, () => load(f));
  t.is(atLimit.code, 'FUGUE_ERR_CONFIG_INVALID');
  t.regex(atLimit.message, /limits\.maxClients: must be an integer from 1 to 1000000, got \[\[\[/);
  writeFileSync(f, nestedJson(MAX_CONFIG_DEPTH + 1));
  const over = failure(t, () => load(f));
  t.is(over.code, 'FUGUE_ERR_CONFIG_FILE');
  t.regex(over.message, new RegExp(`it nests objects or arrays more than ${MAX_CONFIG_DEPTH} levels deep \\(line 1, column ${27 + MAX_CONFIG_DEPTH - 2}\\)`));
});

test('deeply nested JSON and YAML of the maximum file size are refused at once, without a stack overflow', (t) => {
  const dir = tmpDir(t);
  const n = MAX_CONFIG_FILE_BYTES / 2 - 16;
  const shapes: Array<[string, string]> = [
    // Before: JSON.stringify in the error message overflowed the stack: a stack trace and exit 1.
    ['deep-array.json', `{"limits": ${'['.repeat(n)}${']'.repeat(n)}}`],
    ['deep-object.json', `{"limits": ${'{"a":'.repeat(n / 5)}1${'}'.repeat(n / 5)}}`],
    ['deep-flow.yaml', `limits: ${'['.repeat(n)}`],
    ['deep-flow-map.yaml', `limits: ${'{a: '.repeat(n / 4)}`],
    ['deep-block-seq.yaml', `${'- '.repeat(n)}1`],
    ['deep-block-map.yaml', Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')],
  ];
  for (const [name, text] of shapes) {
    writeFileSync(join(dir, name), text);
    const t0 = performance.now();
    const err = failure(t, () => load(join(dir, name)));
    const ms = performance.now() - t0;
    t.is(err.code, 'FUGUE_ERR_CONFIG_FILE', name);
    t.regex(err.message, new RegExp(`${name}: it nests .* more than ${MAX_CONFIG_DEPTH} levels deep \\(line \\d+, column \\d+\\)`), name);
    t.true(ms < 2000, `${name} took ${ms.toFixed(0)} ms`);
  }
});

test('duplicate keys are refused in JSON and in YAML, with both lines', (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'd.json'), '{\n  "limits": {"maxClients": 1},\n  "limits": {"idleTimeoutMs": 2}\n}\n');
  t.regex(failure(t, () => load(join(dir, 'd.json'))).message, /key "limits" appears twice at the top level \(lines 2 and 3\); JSON would keep only the last one: merge them/);
  writeFileSync(join(dir, 'e.json'), '{"limits": {"maxClients": 1,\n "maxClients": 2}}');
  t.regex(failure(t, () => load(join(dir, 'e.json'))).message, /key "maxClients" appears twice in "limits" \(lines 1 and 2\)/);
  writeFileSync(join(dir, 'd.yaml'), 'limits:\n  maxClients: 1\n  maxClients: 2\n');
  const err = failure(t, () => load(join(dir, 'd.yaml')));
  t.is(err.code, 'FUGUE_ERR_CONFIG_FILE');
  t.regex(err.message, /key "maxClients" appears twice in one mapping \(lines 2 and 3\); each key may appear once: merge them/);
});

test('YAML aliases that expand too far (billion laughs) are refused; a few aliases are fine', (t) => {
  const dir = tmpDir(t);
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x]', ...['b', 'c', 'd', 'e', 'f', 'g'].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`)].join('\n');
  writeFileSync(join(dir, 'lol.yaml'), laughs);
  const t0 = performance.now();
  const err = failure(t, () => load(join(dir, 'lol.yaml')));
  t.regex(err.message, /its aliases expand to more than 100 copies of anchored values/);
  t.true(performance.now() - t0 < 2000);
  writeFileSync(join(dir, 'ok.yaml'), 'limits:\n  handshakeTimeoutMs: &t 5000\n  frameTimeoutMs: *t\nshutdown:\n  timeoutMs: *t\n');
  const c = load(join(dir, 'ok.yaml')).config;
  t.deepEqual([c.limits.handshakeTimeoutMs, c.limits.frameTimeoutMs, c.shutdown.timeoutMs], [5000, 5000, 5000]);
  writeFileSync(join(dir, 'undef.yaml'), 'shutdown:\n  timeoutMs: *nope\n');
  t.is(failure(t, () => load(join(dir, 'undef.yaml'))).code, 'FUGUE_ERR_CONFIG_FILE');
});

test('YAML tags, merge keys, collection keys and several documents are refused; a %YAML 1.1 directive does not make yes a boolean', (t) => {
  const dir = tmpDir(t);
  const cases: Array<[string, RegExp]> = [
    ['log:\n  level: !shell "rm -rf /"\n', /Unresolved tag: !shell .*remove the tag/],
    ['log:\n  level: !!binary aW5mbw==\n', /Unresolved tag: tag:yaml\.org,2002:binary/],
    ['limits: !!set {maxClients}\n', /Unresolved tag: tag:yaml\.org,2002:set/],
    ['? [a, b]\n: 1\n', /not valid YAML/],
    ['log:\n  level: info\n---\nlog:\n  level: warn\n', /more than one YAML document \(a second "---" at line 3/],
    ['- 1\n- 2\n', /its top level is an array; it must be a mapping/],
    ['just text\n', /its top level is a string/],
  ];
  for (const [text, re] of cases) {
    writeFileSync(join(dir, 'c.yaml'), text);
    const err = failure(t, () => load(join(dir, 'c.yaml')));
    t.is(err.code, 'FUGUE_ERR_CONFIG_FILE', text);
    t.regex(err.message, re, text);
  }
  writeFileSync(join(dir, 'm.yaml'), 'base: &b {maxClients: 3}\nlimits:\n  <<: *b\n');
  t.regex(failure(t, () => load(join(dir, 'm.yaml'))).message, /base: unknown section[\s\S]*limits\.<<: unknown key/);
  writeFileSync(join(dir, 'v.yaml'), '%YAML 1.1\n---\nhttp:\n  enabled: yes\n');
  t.regex(failure(t, () => load(join(dir, 'v.yaml'))).message, /http\.enabled: must be true or false, got "yes"/);
});

test('an empty YAML file, or one of comments only, sets nothing; an empty JSON file is a syntax error', (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'a.yaml'), '');
  writeFileSync(join(dir, 'b.yaml'), '# everything commented out\n# log:\n#   level: debug\n');
  t.is(load(join(dir, 'a.yaml')).config.log.level, 'info');
  t.is(load(join(dir, 'b.yaml')).config.log.level, 'info');
  writeFileSync(join(dir, 'c.json'), '');
  t.regex(failure(t, () => load(join(dir, 'c.json'))).message, /it is not valid JSON: Unexpected end of JSON input/);
});

test('an enormous bad value is shown truncated with a note, never whole', (t) => {
  const dir = tmpDir(t);
  const huge = 'x'.repeat(500_000);
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ log: { level: huge }, limits: { maxClients: Array(100_000).fill(7) } }));
  const err = failure(t, () => loadConfig({ env: { ...env, FUGUE_HTTP_HOST: huge, FUGUE_MAX_FRAME_BYTES: `1${'0'.repeat(100_000)}` }, argv: ['--config', join(dir, 'c.json'), `--${'z'.repeat(100_000)}`] }));
  t.is(err.code, 'FUGUE_ERR_USAGE', 'usage errors come first');
  t.true(err.message.length < 400, `${err.message.length} characters`);
  t.regex(err.message, /unknown flag --"z{64}"\.\.\. \(truncated; 100000 characters in all\)/);
  const err2 = failure(t, () => loadConfig({ env: { ...env, FUGUE_HTTP_HOST: huge, FUGUE_MAX_FRAME_BYTES: `1${'0'.repeat(100_000)}` }, argv: ['--config', join(dir, 'c.json')] }));
  t.true(err2.message.length < 2000, `${err2.message.length} characters`);
  t.regex(err2.message, /log\.level: must be one of .*, got "x{79}\.\.\. \(truncated; 500000 characters in all\)/);
  t.regex(err2.message, /limits\.maxClients: .*got \[7,7,7,.*\.\.\. \(truncated; longer\)/);
  t.regex(err2.message, /http\.host: must be at most 4096 characters long, got "x+\.\.\. \(truncated; 500000 characters in all\) \(from env FUGUE_HTTP_HOST/);
  t.regex(err2.message, /limits\.maxFrameBytes: .*got Infinity \(from env FUGUE_MAX_FRAME_BYTES/);
});

test('numbers in env vars and flags are read only as documented: decimal digits (and a decimal fraction for sampleRatio)', (t) => {
  // Before: Number() read all of these.
  for (const raw of ['0x10', '0o20', '0b11', '1e3', ' 12 ', '12 ', '+5', '1_000', '', '16.0', 'Infinity', '١٢']) {
    const err = failure(t, () => loadConfig({ env: { ...env, FUGUE_MAX_CLIENTS: raw } }));
    t.is(err.code, 'FUGUE_ERR_CONFIG_INVALID', JSON.stringify(raw));
    t.regex(err.message, new RegExp(`got ${JSON.stringify(JSON.stringify(raw)).slice(1, -1).replace(/[.+*]/g, '\\$&')} \\(from env FUGUE_MAX_CLIENTS; expected connections\\); env vars and flags take decimal digits`), JSON.stringify(raw));
  }
  t.is(loadConfig({ env: { ...env, FUGUE_MAX_CLIENTS: '0016' } }).config.limits.maxClients, 16);
  t.is(loadConfig({ env, argv: ['--tracing-sample-ratio', '0.25'] }).config.tracing.sampleRatio, 0.25);
  t.is(loadConfig({ env, argv: ['--tracing-sample-ratio=-1'] }).config.tracing.sampleRatio, -1);
  for (const raw of ['.5', '1e-2', '0x1', ' 0.5']) {
    t.regex(failure(t, () => loadConfig({ env, argv: ['--tracing-sample-ratio', raw] })).message, /tracing\.sampleRatio: must be a number from 0 to 1, .*env vars and flags take a decimal number/, raw);
  }
  for (const raw of ['TRUE', 'yes', 'on', ' true']) {
    t.regex(failure(t, () => loadConfig({ env: { ...env, FUGUE_HTTP_ENABLED: raw } })).message, /http\.enabled: must be true or false, .*env vars and flags take true, false, 1 or 0/, raw);
  }
});

test('a NUL in socket.path, a string over 4096 characters and a tracing.endpoint that is not an http(s) URL are refused', (t) => {
  const f = join(tmpDir(t), 'c.json');
  writeFileSync(f, JSON.stringify({ socket: { path: '/tmp/a\u0000b' }, tracing: { endpoint: 'localhost:4318', serviceName: 's'.repeat(4097) } }));
  const err = failure(t, () => load(f));
  t.regex(err.message, /socket\.path: must not contain a NUL character, got "\/tmp\/a\\u0000b"/);
  t.regex(err.message, /tracing\.endpoint: must be empty or an http:\/\/ or https:\/\/ URL such as "http:\/\/127\.0\.0\.1:4318", got "localhost:4318"/);
  t.regex(err.message, /tracing\.serviceName: must be at most 4096 characters long/);
  t.is(loadConfig({ env: { ...env, FUGUE_TRACING_ENDPOINT: 'https://otel.example:4318/base' } }).config.tracing.endpoint, 'https://otel.example:4318/base');
});

test('control characters in keys and paths are escaped in messages', (t) => {
  const dir = tmpDir(t);
  const f = join(dir, 'c.json');
  writeFileSync(f, JSON.stringify({ limits: { '\u001b[31mred\u001b[0m': 1 } }));
  const err = failure(t, () => load(f));
  t.false(err.message.includes('\u001b'));
  t.regex(err.message, /"limits\.\\u001b\[31mred\\u001b\[0m": unknown key/);
  const odd = join(dir, 'a\nb.json');
  const err2 = failure(t, () => load(odd));
  t.regex(err2.message, /config file ".*a\\nb\.json": cannot open it \(ENOENT\)/);
});

// The real CLI: exit 78 and a message, never a stack trace, and never a hang on a FIFO or /dev/zero.
function checkConfig(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [SERVER_BIN, '--check-config', ...args], { env: childEnv({ PATH: process.env.PATH, HOME: '/tmp', FUGUE_SOCKET_PATH: '/tmp/fg-never/f.sock' }), stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stderr }));
  });
}

test('fugue-server --check-config exits 78 with a message and no stack trace for a FIFO, /dev/zero, deep JSON and invalid UTF-8', async (t) => {
  const dir = tmpDir(t);
  const fifo = join(dir, 'f.json');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  writeFileSync(join(dir, 'deep.json'), `{"limits": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
  writeFileSync(join(dir, 'bad.json'), Buffer.from([0x7b, 0xff, 0x7d]));
  const files = [fifo, '/dev/zero', join(dir, 'deep.json'), join(dir, 'bad.json')];
  const results = await Promise.all(files.map((f) => checkConfig(['--config', f])));
  results.forEach((r, i) => {
    t.is(r.code, 78, `${files[i]}: ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`^fugue-server: invalid configuration:\\n  config file ${files[i]}: `));
    t.notRegex(r.stderr, /^\s+at /m, 'no stack trace');
  });
});

test('docs/configuration.md shows config/example.yaml and config/example.json, as they are', (t) => {
  const root = DEFAULT_CONFIG_FILE.replace(/config\/default\.json$/, '');
  const doc = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8');
  const example = doc.slice(doc.indexOf('## Example'));
  const block = (lang: string) => new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(example)?.[1];
  t.is(block('yaml'), readFileSync(join(root, 'config', 'example.yaml'), 'utf8'));
  t.is(block('json'), readFileSync(join(root, 'config', 'example.json'), 'utf8'));
});
