// The FUGUE_* environment variables fugue knows, and what an unknown one is: a
// problem that stops the start like an unknown key in a file, naming the
// variable and the closest known name (issue 18 point 4). A misspelled
// variable (FUGUE_MAXCLIENTS) would otherwise be ignored without a word while
// the operator believes it applies. fugue-server and fuguectl run the same check
// against the same list, so a variable either one reads never stops the other.

import { preview, showName } from './text.js';
import { problemAt, suggest, type ProblemList } from './problems.js';
import type { KeySpec } from './schema.js';

/** The variable naming config files (comma-separated), read when no `--config` is given. */
export const CONFIG_ENV = 'FUGUE_CONFIG';

/** The variables fuguectl reads: the config files, and the socket path over them. */
export const CTL_ENV = [CONFIG_ENV, 'FUGUE_SOCKET_PATH'] as const;

/**
 * Variables under this prefix are reserved for fugue's own test suite and
 * benchmark (FUGUE_TEST_FUZZ_SEED...): fugue-server and fuguectl ignore them, so
 * a developer who sets one can still start a server from the same shell.
 */
export const RESERVED_ENV_PREFIX = 'FUGUE_TEST_';

/** Every FUGUE_* variable fugue-server or fuguectl reads: one per config key, FUGUE_CONFIG, and fuguectl's. */
export function knownEnvNames(specs: Record<string, KeySpec>): string[] {
  return [...new Set([CONFIG_ENV, ...Object.values(specs).map((s) => s.env), ...CTL_ENV])];
}

/** Add one problem per FUGUE_* variable in `env` that is neither known nor reserved. */
export function checkEnvNames(env: NodeJS.ProcessEnv, specs: Record<string, KeySpec>, problems: ProblemList): void {
  let known: string[] | undefined;
  for (const name of Object.keys(env)) {
    if (!name.startsWith('FUGUE_') || name.startsWith(RESERVED_ENV_PREFIX)) continue;
    known ??= knownEnvNames(specs);
    if (known.includes(name)) continue;
    const names = known;
    problems.push(() => {
      const guess = suggest(name, names);
      const shown = showName(name, 64);
      return problemAt({ label: `env ${shown}` }, undefined,
        `${shown}: unknown environment variable, set to ${preview(env[name])} (${guess ? `did you mean ${guess}? ` : ''}fugue reads ${CONFIG_ENV} and one FUGUE_* variable per config key, listed in docs/configuration.md; ${RESERVED_ENV_PREFIX}* is reserved for fugue's tests); unset it or correct its name`);
    });
  }
}
