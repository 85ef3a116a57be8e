// Where settings come from, for the loader and for fuguectl alike: the config
// files named by `--config` or FUGUE_CONFIG, and a path setting expanded
// relative to the file that set it. (paths.ts stays free of these imports:
// fuguectl loads it on every run.)

import { dirname } from 'node:path';
import { CONFIG_ENV } from './env-names.js';
import { tryExpandPath } from './paths.js';
import { problemAt, type ProblemList, type Source } from './problems.js';
import type { KeySpec } from './schema.js';
import { preview, showName } from './text.js';

/**
 * The config files named by `--config` (`flagFiles`, when any) or else by
 * FUGUE_CONFIG (comma-separated), as absolute paths resolved against `cwd`. A
 * path that uses an unset variable is a problem, and left out.
 */
export function userConfigFiles(flagFiles: readonly string[], env: NodeJS.ProcessEnv, cwd: string, problems: ProblemList): string[] {
  const fromFlags = flagFiles.length > 0;
  const from = fromFlags ? 'flag --config' : `env ${CONFIG_ENV}`;
  const files: string[] = [];
  for (const f of fromFlags ? flagFiles : (env[CONFIG_ENV] ?? '').split(',').filter((n) => n.trim() !== '')) {
    const r = tryExpandPath(f.trim(), env, cwd);
    if (r.unset === undefined) files.push(r.path);
    else problems.push({ source: from, fileLevel: true, message: `config file ${showName(f.trim())}: its path uses $${showName(r.unset, 64)}, which is not set; set it or write the path out in full (from ${from})` });
  }
  return files;
}

/**
 * A path setting (`spec.path`) expanded: relative to the directory of the file
 * that set it, else to `cwd`. An unset variable is a problem naming the key,
 * the value and where it came from; then undefined.
 */
export function expandSetting(key: string, spec: KeySpec, raw: string, src: Source, env: NodeJS.ProcessEnv, cwd: string, problems: ProblemList): string | undefined {
  const r = tryExpandPath(raw, env, src.file === undefined ? cwd : dirname(src.file));
  if (r.unset === undefined) return r.path;
  problems.push(problemAt(src, key, `${key}: uses $${showName(r.unset, 64)}, which is not set, got ${preview(raw)} (from ${src.label}; expected ${spec.unit ?? 'a path'}); set the variable or write the path out in full`));
  return undefined;
}
