// Tests that need something a machine may not have (root, a tool from a
// Debian package): when it is missing they are registered as real skips whose
// title says what is missing, never as a pass. A requirement .ci/run provides
// fails the test in CI instead, so CI cannot go green by skipping it.

import test, { type ExecutionContext } from 'ava';

/** CI is set (and not "0" or "false"), as .ci/run sets it. */
export const IN_CI = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase());

export interface Requirement {
  /** undefined when the requirement is met; else what is missing, and how to get it. */
  missing: string | undefined;
  /** .ci/run provides it: in CI a missing requirement fails the test instead of skipping it. Default false. */
  providedByCi?: boolean;
  /** Register with test.serial. Default false. */
  serial?: boolean;
}

/** Register `title` when `req` is met; otherwise "`title` (skipped: <what is missing>)" as a skipped test (or, see providedByCi, a failing one). */
export function testNeeding(req: Requirement, title: string, impl: (t: ExecutionContext) => void | Promise<void>): void {
  const register = req.serial === true ? test.serial : test;
  if (req.missing === undefined) register(title, impl);
  else if (req.providedByCi === true && IN_CI) register(title, (t) => t.fail(`${req.missing} (.ci/run provides it in CI)`));
  else (req.serial === true ? test.serial.skip : test.skip)(`${title} (skipped: ${req.missing})`, () => {});
}
