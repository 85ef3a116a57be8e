// prometheus and promtool from the Debian package (`apt-get install prometheus`,
// >= 2.42), found on PATH. Tests that need them are skipped when they are missing,
// except in CI (CI set), where they fail: .ci/run installs the package.

import test, { type ExecutionContext } from 'ava';
import { findExecutable, IN_CI } from './executables.js';

export { findExecutable, IN_CI };

export const INSTALL_HINT = 'prometheus is not installed; .ci/run installs it with apt-get install prometheus';

export const PROMETHEUS = findExecutable('prometheus');
export const PROMTOOL = findExecutable('promtool');

export interface Tools {
  prometheus: string;
  promtool: string;
}

/**
 * Register a serial test that needs the named tools; decided at load time: run it
 * when they are there, fail it in CI when they are not, else skip it saying why.
 */
export function promTest(title: string, needs: ReadonlyArray<keyof Tools>, impl: (t: ExecutionContext, tools: Tools) => Promise<void>): void {
  const found: Partial<Tools> = { prometheus: PROMETHEUS, promtool: PROMTOOL };
  const missing = needs.filter((n) => found[n] === undefined);
  if (missing.length === 0) {
    const tools = { prometheus: PROMETHEUS ?? '', promtool: PROMTOOL ?? '' };
    test.serial(title, (t) => impl(t, tools));
  } else if (IN_CI) {
    test.serial(title, (t) => {
      t.fail(`${INSTALL_HINT} (not found on PATH: ${missing.join(', ')})`);
    });
  } else {
    test.skip(`${title} (skipped: ${INSTALL_HINT})`, async () => {});
  }
}
