// Where fuguectl finds the server's socket: where the server found it (issue
// 18 point 4). The same sources in the same order, lowest to highest: the
// default path < config files (`--config`, else FUGUE_CONFIG) <
// FUGUE_SOCKET_PATH < fuguectl's own `--socket` (applied by the caller). Files
// are read, parsed and checked by the server's own code (file-settings.ts),
// so a bad file gets the server's message (file, line, key, what is
// expected), and unknown FUGUE_* variables are refused by the same check.
//
// config/default.json is not read: it holds no socket.path (a test keeps it
// so). fuguectl's start-up time is most of what `fuguectl ping` costs, so the
// checks are loaded only when there is something to check (a FUGUE_* variable
// or a file), and the file parser (and yaml) only when a file is named.

import { defaultSocketPath, tryExpandPath } from './paths.js';
import type { Source } from './problems.js';

/** What {@link lookupSocketPath} reads. */
export interface SocketLookupOptions {
  /** Files given with `--config` (then FUGUE_CONFIG is not read). */
  files: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Base for relative paths in FUGUE_SOCKET_PATH and the file names. */
  cwd: string;
}

/** The socket path, and where it came from ("default", "config file PATH, line N", "env FUGUE_SOCKET_PATH"). */
export interface SocketLookup {
  path: string;
  from: string;
}

/**
 * The socket path the server would use with the same files and environment.
 * Throws FUGUE_ERR_CONFIG_FILE or FUGUE_ERR_CONFIG_INVALID (exit 78) listing
 * every problem: a file that cannot be used, a bad key or value in one, a bad
 * FUGUE_SOCKET_PATH, an unknown FUGUE_* variable.
 */
export async function lookupSocketPath(options: SocketLookupOptions): Promise<SocketLookup> {
  const { env, cwd } = options;
  // Nothing to check: the default path, as the server expands it.
  if (options.files.length === 0 && !Object.keys(env).some((name) => name.startsWith('FUGUE_'))) {
    const r = tryExpandPath(defaultSocketPath(env), env, cwd);
    if (r.unset === undefined) return { path: r.path, from: 'default' };
  }
  const [{ checkEnvNames }, { problemsError, ProblemList, textSetting }, { keySpecs }, { expandSetting, userConfigFiles }] = await Promise.all([
    import('./env-names.js'), import('./problems.js'), import('./schema.js'), import('./setting-sources.js'),
  ]);
  const specs = keySpecs(defaultSocketPath(env));
  const key = 'socket.path';
  const spec = specs[key]!;
  const problems = new ProblemList();
  let raw = spec.default as string;
  let src: Source = { label: 'default' };
  const files = userConfigFiles(options.files, env, cwd, problems);
  if (files.length > 0) {
    const { loadConfigFile } = await import('./file-settings.js');
    const sources = new Map<string, Source>();
    for (const file of files) {
      const value = loadConfigFile(file, specs, problems, sources)?.socket?.path;
      if (typeof value !== 'string') continue;
      raw = value;
      src = sources.get(key) ?? { label: `config file ${file}`, file };
    }
  }
  const fromEnv = env[spec.env];
  if (fromEnv !== undefined) {
    const envSrc = { label: `env ${spec.env}` };
    const r = textSetting(key, spec, fromEnv, envSrc);
    if (r.problem !== undefined) problems.push(r.problem);
    else [raw, src] = [r.value as string, envSrc];
  }
  checkEnvNames(env, specs, problems);
  const path = problems.length > 0 ? undefined : expandSetting(key, spec, raw, src, env, cwd, problems);
  if (path === undefined) throw problemsError(problems);
  return { path, from: src.label };
}
