// Load the configuration. Sources, lowest to highest precedence:
//   schema defaults < config/default.json < --config FILE... (or FUGUE_CONFIG)
//   < FUGUE_* env vars < command-line flags.
// Strict: unknown keys, unknown flags and bad values are errors naming the key,
// the value, where it came from and what is expected. The result is frozen.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import convict from 'convict';
import { configFile, configInvalid, usage } from '../errors.js';
import { expandPath } from './paths.js';
import { convictSchema, keySpecs, type Config, type KeySpec } from './schema.js';

/** The bundled config/default.json (next to package.json). */
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL('../../../config/default.json', import.meta.url));

export interface LoadOptions {
  /** Command-line arguments after the program name. Default: none. */
  argv?: readonly string[];
  /** Environment. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Base for relative paths. Default: process.cwd(). */
  cwd?: string;
  /** Load config/default.json. Default: true. */
  bundledDefaults?: boolean;
}

export interface CliRequest {
  config: Config;
  /** Config files loaded, in order. */
  files: string[];
  printConfig: boolean;
  checkConfig: boolean;
  help: boolean;
  version: boolean;
}

/** The default socket path: $XDG_RUNTIME_DIR/fugue/fugue.sock, else ~/.fugue/fugue.sock. */
export function defaultSocketPath(env: NodeJS.ProcessEnv, home = env.HOME ?? homedir()): string {
  const runtime = env.XDG_RUNTIME_DIR;
  return runtime !== undefined && runtime !== '' ? `${runtime}/fugue/fugue.sock` : `${home}/.fugue/fugue.sock`;
}

interface ParsedArgs {
  files: string[];
  flags: Map<string, string>; // config key -> raw value
  printConfig: boolean;
  checkConfig: boolean;
  help: boolean;
  version: boolean;
}

function parseArgs(argv: readonly string[], specs: Record<string, KeySpec>): ParsedArgs {
  const byFlag = new Map(Object.entries(specs).map(([key, spec]) => [spec.flag, key]));
  const out: ParsedArgs = { files: [], flags: new Map(), printConfig: false, checkConfig: false, help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw usage(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw usage(`flag --${name} needs a value`);
      return next;
    };
    switch (name) {
      case 'config': out.files.push(takeValue()); break;
      case 'print-config': out.printConfig = true; break;
      case 'check-config': out.checkConfig = true; break;
      case 'help': out.help = true; break;
      case 'version': out.version = true; break;
      default: {
        const key = byFlag.get(name);
        if (key === undefined) throw usage(`unknown flag --${name}`);
        out.flags.set(key, takeValue());
      }
    }
  }
  return out;
}

function readJsonFile(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw configFile(path, err);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configFile(path, new Error('the top level must be a JSON object such as {"socket": {"path": "..."}}'));
  }
  return value as Record<string, unknown>;
}

// Report unknown keys with the file they came from (convict's strict mode would
// only name the key).
function checkKnownKeys(obj: Record<string, unknown>, specs: Record<string, KeySpec>, file: string): void {
  const groups = new Set(Object.keys(specs).map((k) => k.split('.')[0]));
  for (const [group, value] of Object.entries(obj)) {
    if (!groups.has(group)) {
      throw configInvalid(`unknown config key "${group}" in ${file}; known sections: ${[...groups].join(', ')} (see docs/configuration.md)`, { key: group, file });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw configInvalid(`config key "${group}" in ${file} must be an object, got ${JSON.stringify(value)}`, { key: group, file });
    }
    for (const [leaf, leafValue] of Object.entries(value)) {
      const key = `${group}.${leaf}`;
      const spec = specs[key];
      if (spec === undefined) {
        const known = Object.keys(specs).filter((k) => k.startsWith(`${group}.`));
        throw configInvalid(`unknown config key "${key}" in ${file}; known keys here: ${known.join(', ')} (see docs/configuration.md)`, { key, file });
      }
      // Files are typed JSON: check before convict would coerce "100" to 100.
      try {
        spec.format(leafValue);
      } catch (err) {
        throw configInvalid(`invalid configuration:\n  ${key}: ${(err as Error).message} (from config file ${file}; expected ${spec.unit ?? 'see docs'})\nFix the value (see docs/configuration.md) and try again.`, { key, file });
      }
    }
  }
}

/** Parse argv, load every source, validate strictly, and freeze. Throws FugueError. */
export function loadConfig(options: LoadOptions = {}): CliRequest {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const specs = keySpecs(defaultSocketPath(env));
  const args = parseArgs(options.argv ?? [], specs);
  const conf = convict(convictSchema(specs), { env: {}, args: [] });

  const files: string[] = [];
  if (options.bundledDefaults !== false && existsSync(DEFAULT_CONFIG_FILE)) files.push(DEFAULT_CONFIG_FILE);
  const userFiles = args.files.length > 0 ? args.files : (env.FUGUE_CONFIG ?? '').split(',').filter((f) => f.trim() !== '');
  for (const f of userFiles) files.push(expandPath(f.trim(), env, cwd, 'config file'));

  const sources = new Map<string, string>(); // key -> where its value came from
  for (const file of files) {
    const obj = readJsonFile(file);
    checkKnownKeys(obj, specs, file);
    conf.load(obj);
    for (const [group, leaves] of Object.entries(obj)) for (const leaf of Object.keys(leaves as object)) sources.set(`${group}.${leaf}`, `config file ${file}`);
  }
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const fromFlag = args.flags.get(key);
    const fromEnv = env[spec.env];
    const raw = fromFlag ?? fromEnv;
    if (raw === undefined) continue;
    const source = fromFlag !== undefined ? `flag --${spec.flag}` : `env ${spec.env}`;
    sources.set(key, source);
    const value = spec.coerce ? spec.coerce(raw) : raw;
    // Check here: convict would coerce a bad string itself ("lots" -> NaN, "nope" -> true).
    try {
      spec.format(value);
    } catch (err) {
      problems.push(`${key}: ${(err as Error).message} (from ${source}; expected ${spec.unit ?? 'see docs'})`);
      continue;
    }
    conf.set(key, value);
  }
  if (problems.length > 0) {
    throw configInvalid(`invalid configuration:\n  ${problems.join('\n  ')}\nFix the value (see docs/configuration.md) and try again.`);
  }

  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    // convict lists one "key: problem: value was X" per line; add where each came from.
    const lines = (err as Error).message.split('\n').map((line) => {
      const key = line.slice(0, line.indexOf(':'));
      const spec = specs[key];
      const from = sources.get(key) ?? 'default';
      return spec ? `${line} (from ${from}; expected ${spec.unit ?? 'see docs'})` : line;
    });
    throw configInvalid(`invalid configuration:\n  ${lines.join('\n  ')}\nFix the value (see docs/configuration.md) and try again.`);
  }

  const config = conf.getProperties() as unknown as Config;
  config.socket.path = expandPath(config.socket.path, env, cwd, 'socket.path');
  checkRelations(config);
  return { config: deepFreeze(config), files, printConfig: args.printConfig, checkConfig: args.checkConfig, help: args.help, version: args.version };
}

// Options that only make sense together.
function checkRelations(c: Config): void {
  if (c.limits.maxBufferedBytes < 2 * c.limits.maxFrameBytes) {
    throw configInvalid(
      `limits.maxBufferedBytes (${c.limits.maxBufferedBytes}) must be at least twice limits.maxFrameBytes (${c.limits.maxFrameBytes}), or the reply to one large frame would disconnect its client; raise limits.maxBufferedBytes or lower limits.maxFrameBytes`,
      { key: 'limits.maxBufferedBytes' },
    );
  }
}

function deepFreeze<T>(obj: T): T {
  for (const v of Object.values(obj as object)) if (v !== null && typeof v === 'object') deepFreeze(v);
  return Object.freeze(obj);
}

/** Text for --help: every flag with its key, env var and default. */
export function helpText(env: NodeJS.ProcessEnv = process.env): string {
  const specs = keySpecs(defaultSocketPath(env));
  const rows = Object.entries(specs).map(([key, s]) => `  --${s.flag} <${s.unit ?? 'value'}>\n      ${s.doc}\n      key ${key}, env ${s.env}, default ${JSON.stringify(s.default)}`);
  return [
    'Usage: fugue-server [--config FILE]... [--print-config] [--check-config] [flags]',
    '',
    '  --config FILE      load a JSON config file (repeatable; later files win). Default: $FUGUE_CONFIG (comma-separated)',
    '  --print-config     print the effective configuration as JSON and exit',
    '  --check-config     validate the configuration and exit (0 = valid, 78 = invalid)',
    '  --version          print the version and exit',
    '  --help             this text',
    '',
    'Config flags (highest precedence, above env vars, files and defaults):',
    ...rows,
    '',
    'Exit codes: 0 ok, 64 usage, 69 already running, 70 internal, 73 cannot create socket,',
    '75 HTTP port unavailable, 77 permission, 78 config invalid, 130/143 forced by a second signal.',
  ].join('\n');
}
