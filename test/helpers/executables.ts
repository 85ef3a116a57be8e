// Finding the host tools some tests drive (prometheus, systemd-analyze,
// systemd-notify, ...), and whether this is CI, where a missing tool fails the
// test instead of skipping it (.ci/run installs them).

import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Absolute path of an executable on PATH (or in /usr/local/bin, /usr/bin, /bin), or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin', '/bin'].filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True under CI (CI set and not "", "0" or "false"). */
export const IN_CI = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase());
