// Facts about this process that only the host knows (Linux /proc). A leaf:
// imports nothing local, so the server (its fd budget) and observability
// (process_open_fds) count the same way.

import { readdirSync, statSync } from 'node:fs';

/**
 * Open fds of this process (Linux). Linux 6.2+ reports the count as the size
 * of /proc/self/fd (one stat, ~20 µs); older kernels report 0 there, and the
 * directory is listed instead (~9 ms at 10,000 connections). Undefined where
 * /proc is not available.
 */
export function openFdCount(): number | undefined {
  try {
    const size = statSync('/proc/self/fd').size;
    // Minus 1: the listing's own fd is open while it runs.
    return size > 0 ? size : readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}
