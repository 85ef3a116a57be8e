// Load the configuration. Sources, lowest to highest precedence:
//   schema defaults < config/default.json < --config FILE... (or FUGUE_CONFIG)
//   < FUGUE_* env vars < command-line flags.
// Config files are JSON (*.json) or YAML (*.yaml, *.yml), read by
// read-file.ts and parsed by parse-file.ts with hostile input bounded.
// Strict: unknown keys, unknown flags, unknown FUGUE_* variables (env-names.ts)
// and bad values are errors naming the key, the value, where it came from and
// what is expected; every problem in every source is reported in one run
// (docs/configuration.md). The result is frozen. Files go through
// file-settings.ts, which fuguectl shares (socket-lookup.ts).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type convictModule from 'convict';
import { configInvalid, usage } from '../errors.js';
import { PACKAGE_DIR } from '../version.js';
import { checkEnvNames } from './env-names.js';
import { loadConfigFile } from './file-settings.js';
import { defaultSocketPath } from './paths.js';
import { problemAt, problemsError, ProblemList, textSetting, type ConfigProblem, type Source } from './problems.js';
import { convictSchema, keySpecs, type Config, type KeySpec } from './schema.js';
import { expandSetting, userConfigFiles } from './setting-sources.js';
import { preview, showName } from './text.js';

/** The bundled config/default.json (next to package.json). */
export const DEFAULT_CONFIG_FILE = join(PACKAGE_DIR, 'config', 'default.json');

/** What {@link loadConfig} reads. Everything is optional; the same options give the same result. */
export interface LoadOptions {
  /** Command-line arguments after the program name. Default: none. */
  argv?: readonly string[];
  /** Environment. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Base for relative paths given in env vars, flags and `--config` (paths inside a config file are relative to that file's directory). Default: process.cwd(). */
  cwd?: string;
  /** Load config/default.json. Default: true. */
  bundledDefaults?: boolean;
}

/** What `loadConfig` returns: the frozen config and what the command line asked for. */
export interface CliRequest {
  config: Config;
  /** Config files loaded, in order (absolute paths; config/default.json first unless bundledDefaults is false). */
  files: string[];
  /** --print-config was given. */
  printConfig: boolean;
  /** --check-config was given. */
  checkConfig: boolean;
  /** --help was given. */
  help: boolean;
  /** --version was given. */
  version: boolean;
  /** --takeover was given: replace the fugue-server serving the socket path without a gap (docs/operations.md, "Upgrades"). */
  takeover: boolean;
}

export { MAX_PROBLEMS_KEPT, MAX_PROBLEMS_SHOWN, type ConfigProblem } from './problems.js';

/** The default socket path (re-exported from paths.ts, where fuguectl takes it without loading convict). */
export { defaultSocketPath };

interface ParsedArgs {
  files: string[];
  flags: Map<string, string>; // config key -> raw value
  printConfig: boolean;
  checkConfig: boolean;
  help: boolean;
  version: boolean;
  takeover: boolean;
}

function parseArgs(argv: readonly string[], specs: Record<string, KeySpec>): ParsedArgs {
  const byFlag = new Map(Object.entries(specs).map(([key, spec]) => [spec.flag, key]));
  const out: ParsedArgs = { files: [], flags: new Map(), printConfig: false, checkConfig: false, help: false, version: false, takeover: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw usage(`unexpected argument ${preview(arg)}`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw usage(`flag --${showName(name, 64)} needs a value`);
      return next;
    };
    switch (name) {
      case 'config': out.files.push(takeValue()); break;
      case 'print-config': out.printConfig = true; break;
      case 'check-config': out.checkConfig = true; break;
      case 'help': out.help = true; break;
      case 'version': out.version = true; break;
      case 'takeover': out.takeover = true; break;
      default: {
        const key = byFlag.get(name);
        if (key === undefined) throw usage(`unknown flag --${showName(name, 64)}`);
        out.flags.set(key, takeValue());
      }
    }
  }
  return out;
}

/**
 * Parse argv, read every source, validate strictly, and freeze. The single
 * entry point for the daemon, `--check-config` and a reload: apart from
 * reading the config files it has no side effects and keeps no state, so the
 * same argv and env give the same result (or the same problems).
 *
 * Throws FugueError: FUGUE_ERR_USAGE (exit 64) for a bad command line;
 * otherwise one FUGUE_ERR_CONFIG_FILE or FUGUE_ERR_CONFIG_INVALID (exit 78)
 * listing every problem found in every file, env var and flag, each with its
 * key, value, source and what is expected (`details.problems`). No other
 * exception escapes for any file content or env value.
 */
export function loadConfig(options: LoadOptions = {}): CliRequest {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const specs = keySpecs(defaultSocketPath(env));
  const args = parseArgs(options.argv ?? [], specs);
  const problems = new ProblemList();
  const sources = new Map<string, Source>(); // key -> where its value came from
  // Every value is checked against its key's format as it is read (files, env,
  // flags); the settings are then applied over the defaults in order.
  const layers: Array<Record<string, unknown>> = [];

  const files: string[] = [];
  if (options.bundledDefaults !== false && existsSync(DEFAULT_CONFIG_FILE)) files.push(DEFAULT_CONFIG_FILE);
  files.push(...userConfigFiles(args.files, env, cwd, problems));
  for (const file of files) {
    const settings = loadConfigFile(file, specs, problems, sources);
    if (settings !== undefined) layers.push(settings);
  }

  const overrides: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const fromFlag = args.flags.get(key);
    const raw = fromFlag ?? env[spec.env];
    if (raw === undefined) continue;
    const src: Source = { label: fromFlag !== undefined ? `flag --${spec.flag}` : `env ${spec.env}` };
    const r = textSetting(key, spec, raw, src);
    if (r.problem !== undefined) {
      problems.push(r.problem);
      continue;
    }
    sources.set(key, src);
    overrides[key] = r.value;
  }
  checkEnvNames(env, specs, problems);
  if (problems.length > 0) throw problemsError(problems);

  // Config files are layered and validated by convict (the schema's strict
  // validation, on top of the checks above). Without a file that sets
  // anything but the defaults, there is nothing to layer: the defaults and
  // the env and flag values (each checked against its key's format, the
  // function convict would run) make the configuration, and convict is not
  // loaded, a sizeable share of a start (docs/configuration.md).
  const config = filesAtDefaults(specs, layers) ? withOverrides(defaultConfig(specs), overrides) : validated(specs, layers, overrides, sources);
  // Paths: ~ and $VAR expanded; relative to the file that set them, else to cwd.
  for (const [key, spec] of Object.entries(specs)) {
    if (spec.path !== true) continue;
    const [group, leaf] = key.split('.') as [string, string];
    const holder = config[group as keyof Config];
    const path = expandSetting(key, spec, String(Reflect.get(holder, leaf)), sources.get(key) ?? { label: 'default' }, env, cwd, problems);
    if (path !== undefined) Reflect.set(holder, leaf, path);
  }
  for (const p of checkRelations(config, sources)) problems.push(p);
  if (problems.length > 0) throw problemsError(problems);
  return { config: deepFreeze(config), files, printConfig: args.printConfig, checkConfig: args.checkConfig, help: args.help, version: args.version, takeover: args.takeover };
}

// Options that only make sense together; each problem names both values and where they came from.
function checkRelations(c: Config, sources: Map<string, Source>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (c.limits.maxBufferedBytes < 2 * c.limits.maxFrameBytes) {
    const buffered = sources.get('limits.maxBufferedBytes') ?? { label: 'default' };
    const frame = sources.get('limits.maxFrameBytes') ?? { label: 'default' };
    problems.push(problemAt(buffered, 'limits.maxBufferedBytes',
      `limits.maxBufferedBytes (${c.limits.maxBufferedBytes}) must be at least twice limits.maxFrameBytes (${c.limits.maxFrameBytes}), or the reply to one large frame would disconnect its client (from ${buffered.label} and ${frame.label}); raise limits.maxBufferedBytes or lower limits.maxFrameBytes`));
  }
  return problems;
}

function deepFreeze<T>(obj: T): T {
  for (const v of Object.values(obj as object)) if (v !== null && typeof v === 'object') deepFreeze(v);
  return Object.freeze(obj);
}

/** True when every setting the files in `layers` make is its key's default (the bundled config/default.json is such a file). */
function filesAtDefaults(specs: Record<string, KeySpec>, layers: ReadonlyArray<Record<string, unknown>>): boolean {
  const same = (key: string, value: unknown) => specs[key] !== undefined && JSON.stringify(value) === JSON.stringify(specs[key]?.default);
  return layers.every((layer) => Object.entries(layer).every(([group, leaves]) => Object.entries(leaves as object).every(([leaf, value]) => same(`${group}.${leaf}`, value))));
}

/** `config` with the dotted `overrides` set (values already checked against their keys' formats). */
export function withOverrides(config: Config, overrides: Record<string, unknown>): Config {
  for (const [key, value] of Object.entries(overrides)) {
    const [group, leaf] = key.split('.') as [keyof Config, string];
    Reflect.set(config[group], leaf, value);
  }
  return config;
}

/** The configuration of the schema's defaults (what convict gives with no setting: test/config/load.test.ts). */
export function defaultConfig(specs: Record<string, KeySpec>): Config {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const [group, leaf] = key.split('.') as [string, string];
    (out[group] ??= {})[leaf] = spec.default;
  }
  return out as Config;
}

/** The layers and overrides applied by convict over the schema's defaults, and validated strictly. */
export function validated(specs: Record<string, KeySpec>, layers: ReadonlyArray<Record<string, unknown>>, overrides: Record<string, unknown>, sources: Map<string, Source>): Config {
  const convict = createRequire(import.meta.url)('convict') as typeof convictModule;
  const conf = convict(convictSchema(specs), { env: {}, args: [] });
  for (const layer of layers) conf.load(layer);
  for (const [key, value] of Object.entries(overrides)) conf.set(key, value);
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    // Every value was checked above; this is a backstop. convict lists one
    // "key: problem: value was X" per line; add where each came from.
    const lines = (err as Error).message.split('\n').map((line) => {
      const key = line.slice(0, line.indexOf(':'));
      const spec = specs[key];
      const from = sources.get(key)?.label ?? 'default';
      return spec ? `${line.slice(0, 300)} (from ${from}; expected ${spec.unit ?? 'see docs'})` : line.slice(0, 300);
    });
    throw configInvalid(`invalid configuration:\n  ${lines.join('\n  ')}\nFix the value (see docs/configuration.md) and try again.`);
  }
  // Every key was validated against the schema (strict): the properties are a Config.
  return conf.getProperties() as Config;
}

/** Text for --help: every flag with its key, env var and default. */
export function helpText(env: NodeJS.ProcessEnv = process.env): string {
  const specs = keySpecs(defaultSocketPath(env));
  const rows = Object.entries(specs).map(([key, s]) => `  --${s.flag} <${s.unit ?? 'value'}>\n      ${s.doc}\n      key ${key}, env ${s.env}, default ${JSON.stringify(s.default)}`);
  return [
    'Usage: fugue-server [--config FILE]... [--takeover] [--print-config] [--check-config] [flags]',
    '',
    '  --config FILE      load a config file, JSON (*.json) or YAML (*.yaml, *.yml); repeatable, later files win.',
    '                     Default: $FUGUE_CONFIG (comma-separated)',
    '  --print-config     print the effective configuration as JSON and exit',
    '  --check-config     validate the configuration and exit (0 = valid, 78 = invalid)',
    '  --takeover         replace the fugue-server serving the socket path without a gap: bind beside it,',
    '                     take the path over, then tell it to drain (an upgrade; docs/operations.md)',
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
