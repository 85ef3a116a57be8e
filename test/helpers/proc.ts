// A process's state as the kernel shows it (Linux /proc), for tests that check
// that a process they did not start, or have not reaped yet, has exited.

import { readFileSync } from 'node:fs';

/** True while `pid` names a process that has not exited (a zombie, exited but not yet reaped, has). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
