import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { configInvalid } from '../errors.js';
import { preview } from './text.js';

/** The default socket path: $XDG_RUNTIME_DIR/fugue/fugue.sock, else ~/.fugue/fugue.sock. */
export function defaultSocketPath(env: NodeJS.ProcessEnv, home = env.HOME ?? homedir()): string {
  const runtime = env.XDG_RUNTIME_DIR;
  return runtime !== undefined && runtime !== '' ? `${runtime}/fugue/fugue.sock` : `${home}/.fugue/fugue.sock`;
}

/** The expanded absolute path, or the name of the unset variable it uses. */
export type Expanded = { path: string; unset?: undefined } | { path?: undefined; unset: string };

/**
 * Expand a leading `~` and `$VAR` / `${VAR}` references, then resolve a
 * relative path against `base` (a directory). An unset or empty variable is
 * reported by name instead (an empty path segment would silently point
 * somewhere else).
 */
export function tryExpandPath(raw: string, env: NodeJS.ProcessEnv, base: string): Expanded {
  let path = raw;
  if (path === '~' || path.startsWith('~/')) path = (env.HOME ?? homedir()) + path.slice(1);
  let unset: string | undefined;
  path = path.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    const value = env[name];
    if (value === undefined || value === '') {
      unset ??= name;
      return '';
    }
    return value;
  });
  if (unset !== undefined) return { unset };
  return { path: isAbsolute(path) ? resolve(path) : resolve(base, path) };
}

/**
 * {@link tryExpandPath} that throws FUGUE_ERR_CONFIG_INVALID, naming `key`,
 * when a variable is not set. Relative paths resolve against `cwd`.
 */
export function expandPath(raw: string, env: NodeJS.ProcessEnv, cwd: string, key: string): string {
  const r = tryExpandPath(raw, env, cwd);
  if (r.unset !== undefined) {
    throw configInvalid(`${key} ${preview(raw)} uses $${r.unset}, which is not set; set it or write the path out in full`, { key, value: raw });
  }
  return r.path;
}

