// The package's own directory (where package.json and config/ are), found
// from this module's location: the compiled modules live in dist/src/, the
// bundled programs in dist/bin/ (package.json "bin"), so a fixed relative path
// would hold for one of them only. Imports nothing local.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function find(from: string): { dir: string; version: string } {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'fugue-server' && typeof pkg.version === 'string') return { dir, version: pkg.version };
    } catch {
      // no package.json here: look further up
    }
    if (dirname(dir) === dir) throw new Error(`fugue-server's package.json was not found above ${from}; reinstall the package`);
  }
}

const found = find(dirname(fileURLToPath(import.meta.url)));

/** The package's directory. */
export const PACKAGE_DIR: string = found.dir;
/** This package's version (package.json). */
export const VERSION: string = found.version;
