// Rate-limited log lines for events an attacker or an overload can repeat
// thousands of times a second (refused connections). Metrics count every
// event; the log says it happened, at most once per interval per key, with
// how many were not logged since the last line.

import { performance } from 'node:perf_hooks';
import type { Logger } from './logger.js';

/** Default interval between two lines of one key, in ms. */
export const THROTTLE_INTERVAL_MS = 10_000;

export class LogThrottle {
  #log: Logger;
  #intervalMs: number;
  #last = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger, intervalMs = THROTTLE_INTERVAL_MS) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Log at warn unless a line with this key was logged less than an interval ago. */
  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    const e = this.#last.get(key);
    if (e !== undefined && now - e.at < this.#intervalMs) {
      e.suppressed++;
      return;
    }
    this.#log.warn({ ...fields, suppressedSinceLast: e?.suppressed ?? 0 }, msg);
    this.#last.set(key, { at: now, suppressed: 0 });
  }
}
