// --node PATH: the node binary that runs the servers, fuguectl and the
// baselines (bare, `node -e 0`) instead of the harness's own, so one build can
// be measured on Node 20 and Node 24 by the same harness. Checked before
// anything starts: a path that is not a runnable Node of a version fugue
// supports would otherwise fail minutes into a run, or measure nothing useful.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';

/** The oldest Node fugue-server supports (package.json "engines"). */
export const MIN_NODE: readonly [number, number] = [20, 19];

export interface NodeBinary {
  /** Absolute path, as given (a symlink is kept: it is what a user would run). */
  path: string;
  /** Its process.version, e.g. v24.21.0. */
  version: string;
}

/** Why `raw` cannot be used as --node, or the binary and its version. */
export function checkNodeBinary(raw: string): NodeBinary | { problem: string } {
  const path = resolve(raw);
  const hint = raw.includes('/') ? '' : ` (a bare name is not looked up on PATH: give its path, e.g. --node "$(command -v ${raw})")`;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    return { problem: `${path} does not exist${hint}` };
  }
  if (!isFile) return { problem: `${path} is not a file; give the path of a node executable, e.g. /usr/local/bin/node` };
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return { problem: `${path} is not executable by this user; check its permissions (ls -l ${path}) or give another node` };
  }
  const r = spawnSync(path, ['-p', 'process.version'], { encoding: 'utf8', timeout: 10_000 });
  const version = (r.stdout ?? '').trim();
  const m = /^v(\d+)\.(\d+)\.\d+/.exec(version);
  if (r.status !== 0 || m === null) {
    const why = r.error?.message ?? `exit ${r.status ?? r.signal}${r.stderr ? `: ${r.stderr.trim().slice(0, 200)}` : ''}`;
    return { problem: `${path} -p process.version did not print a Node version (${why}); give the path of a node executable` };
  }
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    return { problem: `${path} is Node ${version}; fugue-server needs ${MIN_NODE.join('.')} or later (package.json engines), so give a newer node` };
  }
  return { path, version };
}
