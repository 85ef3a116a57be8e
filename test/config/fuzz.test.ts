// Seeded fuzz of config files and env values (issue 13, point 5): the real
// loader gets valid configurations (which must load to exactly the values the
// model expects) and hostile ones (mutated bytes, deep nesting, YAML
// specials, huge and oddly formatted values), and must then throw only a
// FugueError with exit 78 whose message names the source, is bounded and
// holds no stack trace. A sample goes through the real `fugue-server
// --check-config` in a child process, which must agree with the loader.
//
// Reproduce a failure with the seed it logged:
//   FUGUE_TEST_FUZZ_SEED=<seed> FUGUE_TEST_FUZZ_MS=<ms> npx ava dist/test/config/fuzz.test.js

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig, type CliRequest, type ConfigProblem } from '../../src/config/load.js';
import { keySpecs, LOG_LEVELS } from '../../src/config/schema.js';
import { FugueError } from '../../src/errors.js';
import { SERVER_BIN } from '../helpers/spawn-server.js';
import { envInt, fuzzSeed, Random } from '../helpers/rng.js';
import { tmpDir } from '../helpers/tmp.js';
import { childEnv } from '../helpers/child-env.js';

const SEED = fuzzSeed();
const FUZZ_MS = envInt('FUGUE_TEST_FUZZ_MS', 3000);
const MAX_CASES = envInt('FUGUE_TEST_FUZZ_CASES', 3000);
/** Cases run even past FUGUE_TEST_FUZZ_MS on a slow or busy machine, so every kind of outcome shows up. */
const MIN_CASES = 60;
const CLI_SAMPLES = 6;
const BASE_ENV = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' };
const SPECS = keySpecs('/x');

// The model, from docs/configuration.md: the kind of each key and valid values for it.
type Kind = 'int' | 'ratio' | 'bool' | 'string' | 'path';
const MODEL: Record<string, { kind: Kind; valid: (r: Random) => unknown }> = {
  'socket.path': { kind: 'path', valid: (r) => r.pick(['/tmp/fg-fuzz/a.sock', 'rel/dir/f.sock', '~/x.sock', '$XDG_RUNTIME_DIR/y.sock', '${HOME}/z.sock']) },
  'socket.mode': { kind: 'string', valid: (r) => r.pick(['0600', '0660', '0700', '600', '0777', '0644']) },
  'socket.checkIntervalMs': { kind: 'int', valid: (r) => r.int(0, 3_600_000) },
  'shutdown.timeoutMs': { kind: 'int', valid: (r) => r.int(0, 3_600_000) },
  'limits.maxClients': { kind: 'int', valid: (r) => r.int(1, 1_000_000) },
  'limits.maxFrameBytes': { kind: 'int', valid: (r) => r.int(1024, 1_000_000) },
  'limits.maxBufferedBytes': { kind: 'int', valid: (r) => r.int(33_554_432, 2 ** 40) },
  'limits.handshakeTimeoutMs': { kind: 'int', valid: (r) => r.int(0, 3_600_000) },
  'limits.frameTimeoutMs': { kind: 'int', valid: (r) => r.int(0, 3_600_000) },
  'limits.idleTimeoutMs': { kind: 'int', valid: (r) => r.int(0, 86_400_000) },
  'log.level': { kind: 'string', valid: (r) => r.pick(LOG_LEVELS) },
  'log.maxBufferedBytes': { kind: 'int', valid: (r) => r.int(16_384, 1_073_741_824) },
  'http.enabled': { kind: 'bool', valid: (r) => r.bool() },
  'http.host': { kind: 'string', valid: (r) => r.pick(['127.0.0.1', '0.0.0.0', '::1', 'localhost']) },
  'http.port': { kind: 'int', valid: (r) => r.int(0, 65535) },
  'http.maxConnections': { kind: 'int', valid: (r) => r.int(1, 1024) },
  'http.keepAliveTimeoutMs': { kind: 'int', valid: (r) => r.int(0, 600_000) },
  'http.headersTimeoutMs': { kind: 'int', valid: (r) => r.int(1000, 600_000) },
  'tracing.enabled': { kind: 'bool', valid: (r) => r.bool() },
  'tracing.exporter': { kind: 'string', valid: (r) => r.pick(['', 'none', 'otlp', 'console']) },
  'tracing.endpoint': { kind: 'string', valid: (r) => r.pick(['', 'http://127.0.0.1:4318', 'https://otel.example/base']) },
  'tracing.protocol': { kind: 'string', valid: (r) => r.pick(['', 'http/protobuf', 'http/json']) },
  'tracing.sampleRatio': { kind: 'ratio', valid: (r) => r.pick([-1, 0, 1, 0.5, 0.01, 0.25]) },
  'tracing.sampler': { kind: 'string', valid: (r) => r.pick(['outcome', 'ratio']) },
  'tracing.slowThresholdMs': { kind: 'int', valid: (r) => r.int(0, 3_600_000) },
  'tracing.serviceName': { kind: 'string', valid: (r) => r.pick(['', 'fugue', 'svc-ü', 'a b']) },
  'tracing.messageParent': { kind: 'string', valid: (r) => r.pick(['link', 'connection']) },
};

type Settings = Map<string, unknown>; // key -> value

interface Case {
  index: number;
  label: string;
  files: string[];
  env: Record<string, string>;
  cwd: string;
  /** Expected values when the case is valid by construction; undefined for hostile cases. */
  expected: Map<string, unknown> | undefined;
}

function nest(settings: Settings): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of settings) {
    const [g, l] = key.split('.') as [string, string];
    (out[g] ??= {})[l] = value;
  }
  return out;
}

function yamlScalar(r: Random, v: unknown): string {
  if (typeof v === 'string') {
    // Plain when YAML would read it back as the same string, else double-quoted (JSON escapes are YAML's).
    const plainSafe = /^[A-Za-z/~][A-Za-z0-9/._~${}-]*$/.test(v) && !/^(true|false|null|yes|no|on|off|~)$/i.test(v) && !v.includes(': ') && !v.includes(' #');
    return plainSafe && r.bool() ? v : r.bool() || !/^[\x20-\x7e]*$/.test(v) || v.includes("'") ? JSON.stringify(v) : `'${v}'`;
  }
  return JSON.stringify(v);
}

function toYaml(r: Random, obj: Record<string, Record<string, unknown>>): string {
  if (r.bool(0.2)) return JSON.stringify(obj); // JSON is YAML too
  const indent = ' '.repeat(r.int(1, 4));
  const lines: string[] = r.bool(0.3) ? ['# fuzz'] : [];
  for (const [g, leaves] of Object.entries(obj)) {
    if (r.bool(0.2)) {
      lines.push(`${g}: {${Object.entries(leaves).map(([l, v]) => `${l}: ${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`).join(', ')}}`);
      continue;
    }
    lines.push(`${g}:`);
    for (const [l, v] of Object.entries(leaves)) lines.push(`${indent}${l}: ${yamlScalar(r, v)}${r.bool(0.2) ? '  # note' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

function serialise(r: Random, format: 'json' | 'yaml', obj: Record<string, Record<string, unknown>>): string {
  return format === 'json' ? JSON.stringify(obj, null, r.pick([0, 2, '\t'] as const)) : toYaml(r, obj);
}

function envText(r: Random, v: unknown): string {
  if (typeof v === 'boolean') return v ? r.pick(['true', '1']) : r.pick(['false', '0']);
  return String(v);
}

// --- hostile material -----------------------------------------------------

function hostileValue(r: Random, depth = 0): unknown {
  switch (r.int(0, 11)) {
    case 0: return r.text(20);
    case 1: return 'x'.repeat(r.int(1000, 300_000));
    case 2: return r.pick([0, -0, -1, 1.5, 2 ** 53, 1e308, -1e308, 123456789012345678901234567890]);
    case 3: return r.pick([true, false, null]);
    case 4: return depth > 3 ? [] : Array.from({ length: r.int(0, 4) }, () => hostileValue(r, depth + 1));
    case 5: return depth > 3 ? {} : Object.fromEntries(Array.from({ length: r.int(0, 3) }, () => [r.text(6), hostileValue(r, depth + 1)]));
    case 6: return r.pick(['0x10', '1e3', ' 12', '+5', '0600', '١٢', 'NaN', 'Infinity', '']);
    case 7: return `/tmp/${r.text(8)}\u0000x`;
    case 8: {
      let v: unknown = 1;
      for (let i = r.int(28, 40); i > 0; i--) v = [v];
      return v;
    }
    case 9: return Array(r.int(1000, 50_000)).fill(7);
    case 10: return r.pick(['$NOPE/x', '~', '${', '$', 'http://', 'ftp://x', 'http://[::1']);
    default: return String.fromCharCode(0x1b) + '[31mred' + r.text(4);
  }
}

const SNIPPETS = [
  () => '['.repeat(50), () => '{"a":'.repeat(40), () => '- '.repeat(60), () => '&a ', () => '*a', () => '*b ', () => '!!binary ', () => '!foo ', () => '!!set ',
  () => '<<: ', () => '\n---\n', () => '%YAML 1.1\n---\n', () => '\t', () => '\u0000', () => '\ufeff', () => `"${'y'.repeat(200_000)}"`,
  () => '"\\ud800"', () => ': ', () => '{', () => '}', () => '"__proto__": {"x": 1}, ', () => '__proto__:\n  x: 1\n', () => 'constructor: 1\n',
  () => '? [a]\n: 1\n', () => '"limits": {"maxClients": 1}, ', () => 'limits:\n  maxClients: 1\n', () => '#', () => '"', () => "'", () => '\r\n', () => '\\',
] as const;

function mutateBytes(r: Random, bytes: Buffer): Buffer {
  let b: Buffer = bytes;
  for (let n = r.int(1, 4); n > 0; n--) {
    const at = r.int(0, b.length);
    switch (r.int(0, 5)) {
      case 0: if (b.length > 0) { b = Buffer.from(b); b[Math.min(at, b.length - 1)] = r.int(0, 255); } break;
      case 1: b = Buffer.concat([b.subarray(0, at), r.bytes(r.int(1, 8)), b.subarray(at)]); break;
      case 2: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + r.int(1, 20)))]); break;
      case 3: b = b.subarray(0, at); break;
      default: b = Buffer.concat([b.subarray(0, at), Buffer.from(r.pick(SNIPPETS)()), b.subarray(at)]);
    }
  }
  return b;
}

function hostileEnvValue(r: Random): string {
  const v = r.pick([() => r.text(16), () => r.pick(['0x10', '0o7', '0b1', '1e3', ' 12', '12 ', '+5', '-0', '00012', '１２', '1_000', '', '0.5', '.5', '5.', 'true', 'TRUE', 'yes', '1', '0', '-1', '9'.repeat(400)]), () => 'z'.repeat(r.int(1000, 100_000)), () => String(r.int(-10, 2_000_000))])();
  return v.replace(/\u0000/g, ''); // env values cannot hold NUL
}

// --- cases -----------------------------------------------------------------

function makeCase(r: Random, index: number, caseDir: string): Case {
  const nFiles = r.int(0, 2);
  const files: string[] = [];
  const fileSettings: Settings[] = [];
  const hostile = r.bool(0.6);
  const labels: string[] = [];
  for (let f = 0; f < nFiles; f++) {
    const format = r.bool() ? 'json' : 'yaml';
    const settings: Settings = new Map();
    for (const key of Object.keys(SPECS)) if (r.bool(0.25)) settings.set(key, (MODEL[key] as { valid: (r: Random) => unknown }).valid(r));
    const name = join(caseDir, r.bool(0.3) ? 'etc' : '', `f${f}.${format === 'json' ? 'json' : r.pick(['yaml', 'yml'])}`);
    let bytes: Buffer = Buffer.from(serialise(r, format, nest(settings)));
    if (hostile && r.bool(0.7)) {
      if (r.bool(0.5)) {
        const obj = nest(settings) as Record<string, unknown>;
        const key = r.pick([...Object.keys(SPECS), r.text(8), 'limits.maxClient', 'lgo.level']);
        const [g, l] = key.includes('.') ? (key.split('.') as [string, string]) : [key, r.text(5)];
        if (r.bool(0.15)) obj[g] = hostileValue(r);
        else ((obj[g] ??= {}) as Record<string, unknown>)[l] = hostileValue(r);
        let text: string | undefined;
        try {
          text = format === 'json' ? JSON.stringify(obj) : toYaml(r, obj as Record<string, Record<string, unknown>>);
        } catch {
          text = JSON.stringify(obj);
        }
        bytes = Buffer.from(text ?? '{}');
        labels.push(`${name}: value ${key}`);
      } else {
        bytes = mutateBytes(r, bytes);
        labels.push(`${name}: bytes`);
      }
    }
    writeFileSync(name, bytes);
    files.push(name);
    fileSettings.push(settings);
  }
  if (hostile && r.bool(0.05)) {
    files.push(r.pick(['/dev/zero', '/dev/null', caseDir, join(caseDir, 'missing.yaml'), join(caseDir, 'x.conf')]));
    labels.push(`special file ${files[files.length - 1]}`);
  }
  const env: Record<string, string> = {};
  const envSettings: Settings = new Map();
  for (const [key, spec] of Object.entries(SPECS)) {
    if (!r.bool(0.1)) continue;
    if (hostile && r.bool(0.5)) {
      env[spec.env] = hostileEnvValue(r);
      labels.push(`env ${spec.env}`);
    } else {
      const v = (MODEL[key] as { valid: (r: Random) => unknown }).valid(r);
      envSettings.set(key, v);
      env[spec.env] = envText(r, v);
    }
  }
  const useEnvConfig = files.length > 0 && r.bool(0.3);
  let expected: Map<string, unknown> | undefined;
  if (labels.length === 0) {
    expected = new Map();
    for (const [i, s] of fileSettings.entries()) for (const [k, v] of s) expected.set(k, MODEL[k]!.kind === 'path' ? expandModel(v as string, dirname(files[i] as string)) : v);
    for (const [k, v] of envSettings) expected.set(k, MODEL[k]!.kind === 'path' ? expandModel(v as string, caseDir) : v);
  }
  return { index, label: labels.join('; ') || 'valid', files, env: useEnvConfig ? { ...env, FUGUE_CONFIG: files.join(',') } : env, cwd: caseDir, expected };
}

function expandModel(raw: string, base: string): string {
  const p = raw.replace(/^~(?=\/)/, BASE_ENV.HOME).replace('$XDG_RUNTIME_DIR', BASE_ENV.XDG_RUNTIME_DIR).replace('${HOME}', BASE_ENV.HOME);
  return resolve(base, p);
}

function argvOf(c: Case): string[] {
  return c.env.FUGUE_CONFIG !== undefined ? [] : c.files.flatMap((f) => ['--config', f]);
}

type Outcome = { ok: CliRequest } | { err: FugueError };

function run(c: Case): Outcome {
  try {
    return { ok: loadConfig({ argv: argvOf(c), env: { ...BASE_ENV, ...c.env }, cwd: c.cwd }) };
  } catch (err) {
    if (err instanceof FugueError) return { err };
    throw new Error(`case #${c.index} (${c.label}) threw a ${(err as Error)?.constructor?.name}, not a FugueError: ${String(err)}`, { cause: err });
  }
}

// Raw control characters (other than the line breaks between problems) and lone surrogates.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkOutcome(t: ExecutionContext, c: Case, o: Outcome, where: () => string): void {
  if ('ok' in o) {
    const config = o.ok.config as unknown as Record<string, Record<string, unknown>>;
    t.true(Object.isFrozen(config), where());
    for (const [key, spec] of Object.entries(SPECS)) {
      const [g, l] = key.split('.') as [string, string];
      const value = config[g]?.[l];
      t.notThrows(() => spec.format(value), `${where()}: ${key} = ${String(value).slice(0, 50)} passed validation`);
      // Env numbers are read exactly as documented: decimal only.
      const raw = c.env[spec.env];
      if (raw !== undefined && MODEL[key]!.kind === 'int') t.true(/^-?[0-9]+$/.test(raw) && Number(raw) === value, `${where()}: env ${spec.env}=${JSON.stringify(raw.slice(0, 40))} read as ${String(value)}`);
      if (raw !== undefined && MODEL[key]!.kind === 'ratio') t.true(/^-?[0-9]+(\.[0-9]+)?$/.test(raw) && Number(raw) === value, `${where()}: env ${spec.env}=${JSON.stringify(raw.slice(0, 40))}`);
      if (raw !== undefined && MODEL[key]!.kind === 'bool') t.true(['true', 'false', '1', '0'].includes(raw), `${where()}: env ${spec.env}=${JSON.stringify(raw.slice(0, 40))}`);
      if (c.expected?.has(key)) t.deepEqual(value, c.expected.get(key), `${where()}: ${key}`);
    }
    return;
  }
  const err = o.err;
  const problems = (err.details.problems ?? []) as ConfigProblem[];
  // A valid case fails only on the documented relation between two limits.
  if (c.expected !== undefined) t.regex(err.message, /limits\.maxBufferedBytes \(\d+\) must be at least twice limits\.maxFrameBytes/, where());
  t.true(err.code === 'FUGUE_ERR_CONFIG_FILE' || err.code === 'FUGUE_ERR_CONFIG_INVALID', `${where()}: code ${err.code}`);
  t.is(err.exitCode, 78, where());
  t.true(err.message.length < 40_000, `${where()}: message of ${err.message.length} characters`);
  for (const line of err.message.split('\n')) t.true(line.length < 3000, `${where()}: a line of ${line.length} characters`);
  t.false(CONTROL.test(err.message), `${where()}: raw control characters in the message`);
  t.notRegex(err.message, /^\s+at /m, `${where()}: stack trace in the message`);
  if (c.expected === undefined) {
    t.true(problems.length > 0, `${where()}: details.problems`);
    for (const p of problems.slice(0, 20)) {
      t.true(err.message.includes(p.message), `${where()}: problem listed`);
      t.truthy(p.source, where());
      t.notRegex(p.message, /this is a bug/, where());
      t.true(p.message.includes(p.source) || (p.file !== undefined && p.message.includes('config file ')), `${where()}: "${p.message.slice(0, 200)}" names its source ${p.source}`);
    }
  }
}

test('fuzz: valid configs load exactly, hostile files and env values give exit 78 with the source named (seeded)', async (t) => {
  t.timeout(120_000);
  t.log(`fuzz seed ${SEED} (reproduce: FUGUE_TEST_FUZZ_SEED=${SEED} FUGUE_TEST_FUZZ_MS=${FUZZ_MS})`);
  const dir = tmpDir(t);
  const r = new Random(SEED);
  // Cases reuse a few directories (mkdir is the slowest part of a case); a case
  // sampled for the CLI keeps its directory and a fresh one takes its place.
  let dirs = 0;
  const freshDir = () => {
    const d = join(dir, `d${dirs++}`);
    mkdirSync(join(d, 'etc'), { recursive: true });
    return d;
  };
  const pool = [freshDir(), freshDir(), freshDir(), freshDir()];
  const cases: Array<{ c: Case; o: Outcome }> = [];
  const cli: Array<{ c: Case; o: Outcome }> = [];
  const wanted = { ok: 1, file: Math.ceil((CLI_SAMPLES - 1) / 2), invalid: Math.floor((CLI_SAMPLES - 1) / 2) };
  const t0 = performance.now();
  const stats = { valid: 0, ok: 0, file: 0, invalid: 0 };
  for (let i = 0; i < MAX_CASES && (i < MIN_CASES || performance.now() - t0 < FUZZ_MS); i++) {
    const slot = i % pool.length;
    const c = makeCase(r, i, pool[slot] as string);
    const where = () => `seed ${SEED} case #${c.index} (${c.label}; files ${c.files.join(', ') || 'none'}; env ${Object.keys(c.env).join(',') || 'none'})`;
    const o = run(c);
    checkOutcome(t, c, o, where);
    if (c.expected !== undefined) stats.valid++;
    const kind = 'ok' in o ? 'ok' : o.err.code === 'FUGUE_ERR_CONFIG_FILE' ? 'file' : 'invalid';
    stats[kind]++;
    cases.push({ c, o });
    // Sampled for the real CLI (below): --check-config must agree with loadConfig, exit 0 or 78, no stack trace.
    if (wanted[kind] > 0 && spawnable(c)) {
      wanted[kind]--;
      pool[slot] = freshDir();
      cli.push({ c, o });
    }
  }
  t.log(`CONFIG_FUZZ: seed=${SEED} cases=${cases.length} valid_by_construction=${stats.valid} loaded=${stats.ok} file_errors=${stats.file} value_errors=${stats.invalid} cli_samples=${cli.length} ms=${Math.round(performance.now() - t0)}`);
  t.true(cases.length >= MIN_CASES, `only ${cases.length} cases ran`);
  t.true(stats.ok > 0 && stats.file > 0 && stats.invalid > 0, JSON.stringify(stats));
  t.true(cli.length >= 3, `only ${cli.length} CLI samples`);
  // After the timed loop, so the children do not take its CPU; two at a time (two cores).
  for (let i = 0; i < cli.length; i += 2) await Promise.all(cli.slice(i, i + 2).map(({ c, o }) => checkViaCli(t, c, o)));
});

function spawnable(c: Case): boolean {
  return Object.values(c.env).every((v) => /^[\x20-\x7e]*$/.test(v) && v.length < 20_000);
}

async function checkViaCli(t: ExecutionContext, c: Case, o: Outcome): Promise<void> {
  const where = `seed ${SEED} case #${c.index} (${c.label}) via the CLI`;
  const res = await checkConfigCli(c);
  t.notRegex(res.stderr, /^\s+at /m, `${where}: stack trace\n${res.stderr.slice(0, 2000)}`);
  if ('ok' in o) {
    t.is(res.code, 0, `${where}: ${res.stderr.slice(0, 2000)}`);
    t.regex(res.stdout, /^configuration is valid/, where);
  } else {
    t.is(res.code, 78, `${where}: ${res.stderr.slice(0, 2000)}`);
    t.is(res.stderr, `fugue-server: ${o.err.message}\n`, where);
  }
}

function checkConfigCli(c: Case): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [SERVER_BIN, '--check-config', ...argvOf(c)], { cwd: c.cwd, env: childEnv({ PATH: process.env.PATH, ...BASE_ENV, ...c.env }), stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

test('the fuzz model covers every config key', (t) => {
  t.deepEqual(Object.keys(MODEL).sort(), Object.keys(SPECS).sort());
});
