// Where the benchmark's inputs and outputs live. Resolved from the compiled
// file (dist/bench/paths.js), so the harness works from any working directory.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (two levels above dist/bench/). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH = join(ROOT, 'bench');
/** Compiled C helpers, the server snapshot and CPU profiles; ignored by git. */
export const BUILD = join(BENCH, 'build');
export const LOADGEN_SRC = join(BENCH, 'loadgen.c');
export const LOADGEN = join(BUILD, 'loadgen');
export const LOGREADER_SRC = join(BENCH, 'logreader.c');
export const LOGREADER = join(BUILD, 'logreader');
/**
 * A private copy of the compiled servers: `npm run build` (run by others while
 * the benchmark runs) deletes dist/, and every run must use the same code anyway.
 */
export const SNAPSHOT = join(BUILD, 'snapshot');
export const PROFILES = join(BUILD, 'profiles');
export const RESULTS = join(BENCH, 'results');

/**
 * The program a checkout at `root` installs as `name` (package.json "bin"):
 * the bundle in dist/bin/ where the build makes one, else (an older build,
 * for --against) the compiled module in dist/src/cli/.
 */
export function programOf(root: string, name: 'fugue-server' | 'fuguectl'): string {
  const bundled = join(root, 'dist/bin', `${name}.js`);
  return existsSync(bundled) ? bundled : join(root, 'dist/src/cli', `${name}.js`);
}
