// Node's module compile cache (Node 22.1+: module.enableCompileCache): the
// compiled code of fugue's modules and its dependencies is kept on disk and
// reused at the next start, so a start (and each fuguectl call) compiles less.
// Where: $NODE_COMPILE_CACHE (Node's own variable; Node then enables it
// itself), else $XDG_CACHE_HOME/fugue-server/compile, else
// ~/.cache/fugue-server/compile. Only a directory of this user's that no one
// else can write is used (a cache others could write would be code they
// could run as this user). Nothing here can stop a start: a Node without
// the cache, a directory that cannot be made or written, anything else, and
// the program simply compiles as usual.

import * as nodeModule from 'node:module';
import { mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

type Enable = (directory?: string) => { status: number; message?: string; directory?: string };

/** The directory the cache goes to for this environment. */
export function compileCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.NODE_COMPILE_CACHE) return env.NODE_COMPILE_CACHE;
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'fugue-server', 'compile');
}

/** Turn the compile cache on where the running Node has it; returns the directory used, or undefined. Never throws. */
export function enableCompileCache(env: NodeJS.ProcessEnv): string | undefined {
  // Public in Node 22.1+, absent from Node 20 (and from the types of the lowest Node supported).
  const enable: unknown = Reflect.get(nodeModule, 'enableCompileCache');
  if (typeof enable !== 'function' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  try {
    const dir = compileCacheDir(env);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return undefined;
    return (enable as Enable)(dir).directory;
  } catch {
    return undefined;
  }
}
