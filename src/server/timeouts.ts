// The handshake and frame timeouts of every connection, checked by one
// periodic sweep instead of a timer per connection (the idle timeout is the
// socket's own timer: connection.ts), and the server's other periodic work.

import { performance } from 'node:perf_hooks';
import type { Connection, ConnectionLimits } from './connection.js';

/** How often the sweep runs for these limits, in ms, or undefined when neither timeout is on. */
export function sweepIntervalMs(limits: ConnectionLimits): number | undefined {
  const shortest = Math.min(...[limits.frameTimeoutMs, limits.handshakeTimeoutMs].filter((ms) => ms > 0));
  return Number.isFinite(shortest) ? Math.min(1000, Math.max(20, Math.floor(shortest / 4))) : undefined;
}

/**
 * Time out each connection that has not sent `connect` within
 * handshakeTimeoutMs, or has dribbled a frame in for longer than
 * frameTimeoutMs (slowloris).
 */
export function sweep(connections: Iterable<Connection>, limits: ConnectionLimits): void {
  const now = performance.now();
  const { handshakeTimeoutMs, frameTimeoutMs } = limits;
  for (const conn of connections) {
    if (!conn.handshaken && handshakeTimeoutMs > 0 && now - conn.openedAt >= handshakeTimeoutMs) {
      conn.timeOut('limits.handshakeTimeoutMs', now - conn.openedAt, handshakeTimeoutMs);
    } else if (conn.partialSince !== 0 && frameTimeoutMs > 0 && now - conn.partialSince >= frameTimeoutMs) {
      conn.timeOut('limits.frameTimeoutMs', now - conn.partialSince, frameTimeoutMs);
    }
  }
}

/** A server's periodic work: the timeout sweep, and the check that the socket path still holds its socket. */
export class Timers {
  #timers: NodeJS.Timeout[] = [];

  /** (Re)start both with these intervals (a reload may change them); `check` runs every `checkMs` (0: never). */
  start(connections: { values(): Iterable<Connection> }, limits: ConnectionLimits, check: () => void, checkMs: number): void {
    this.stop();
    const every = sweepIntervalMs(limits);
    if (every !== undefined) this.#timers.push(setInterval(() => sweep(connections.values(), limits), every).unref());
    if (checkMs > 0) this.#timers.push(setInterval(check, checkMs).unref());
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }
}
