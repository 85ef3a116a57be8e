import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { configInvalid } from '../errors.js';

/**
 * Expand a leading `~` and `$VAR` / `${VAR}` references, then resolve relative
 * paths against `cwd`. An unset variable is an error naming it (an empty path
 * segment would silently point somewhere else).
 */
export function expandPath(raw: string, env: NodeJS.ProcessEnv, cwd: string, key: string): string {
  let path = raw;
  if (path === '~' || path.startsWith('~/')) path = (env.HOME ?? homedir()) + path.slice(1);
  path = path.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    const value = env[name];
    if (value === undefined || value === '') {
      throw configInvalid(`${key} ${JSON.stringify(raw)} uses $${name}, which is not set; set it or write the path out in full`, { key, value: raw });
    }
    return value;
  });
  return isAbsolute(path) ? resolve(path) : resolve(cwd, path);
}
