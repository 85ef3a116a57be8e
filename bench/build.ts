// Build steps before the first run: compile the C load generator and log reader, and copy the
// compiled servers to a private snapshot (bench/build/snapshot/) so that a
// concurrent `npm run build`, which deletes dist/, cannot break or change a
// benchmark in progress.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD, LOADGEN, LOADGEN_SRC, LOGREADER, LOGREADER_SRC, ROOT, SNAPSHOT } from './paths.js';

/**
 * Compile a C helper of the benchmark when its binary is missing or older than
 * its source. The compiler writes beside it and the result is renamed into
 * place, so another process compiling the same helper at the same time (two
 * test files) never runs a half-written binary.
 */
function compileC(src: string, out: string): void {
  mkdirSync(BUILD, { recursive: true });
  if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs) return;
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', tmp, src], { stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`compiling ${src.replace(ROOT, '')} failed (is a C compiler installed? apt-get install gcc)`);
  }
  renameSync(tmp, out);
}

/** The load generator and the log reader. */
export function ensureHelpers(): void {
  compileC(LOADGEN_SRC, LOADGEN);
  compileC(LOGREADER_SRC, LOGREADER);
}

export function snapshotServers(): void {
  const entry = join(ROOT, 'dist/src/cli/fugue-server.js');
  const benchServers = ['bare-server.js', 'fanout-server.js', 'fanout-feature.js'];
  if (!existsSync(entry) || benchServers.some((f) => !existsSync(join(ROOT, 'dist/bench', f)))) {
    // Someone's `npm run build` deleted dist/ after our tsc: compile again.
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('tsc failed; cannot benchmark');
  }
  rmSync(SNAPSHOT, { recursive: true, force: true });
  cpSync(join(ROOT, 'dist/src'), join(SNAPSHOT, 'dist/src'), { recursive: true });
  // The programs as installed (package.json "bin"): the bundle, when the build made one.
  if (existsSync(join(ROOT, 'dist/bin'))) cpSync(join(ROOT, 'dist/bin'), join(SNAPSHOT, 'dist/bin'), { recursive: true });
  // The bare server, and the fan-out rows' fugue entry and feature (they import dist/src/index.js).
  for (const f of benchServers) cpSync(join(ROOT, 'dist/bench', f), join(SNAPSHOT, 'dist/bench', f));
  cpSync(join(ROOT, 'config'), join(SNAPSHOT, 'config'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(SNAPSHOT, 'package.json'));
  // node_modules resolve upwards from the snapshot to the repository's.
}
