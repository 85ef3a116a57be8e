import { mkdtempSync, rmSync } from 'node:fs';
import type { ExecutionContext } from 'ava';

/** A fresh private temp dir (short: sun_path is 108 bytes), removed after the test. */
export function tmpDir(t: ExecutionContext): string {
  const dir = mkdtempSync('/tmp/fg-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
