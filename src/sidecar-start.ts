// Starting the HTTP sidecar, and the port hand-over between two fugue-servers:
// in a rolling restart or a takeover (docs/operations.md, "Upgrades",
// "Rolling restart") the predecessor keeps its port until it exits, so that
// its drain stays observable; the successor recognises it by its /readyz
// answer and takes the port when it is released, instead of failing.

import { setTimeout as delay } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { FugueError, isFugueError, takeoverRefused } from './errors.js';
import type { HttpSidecar, SidecarOptions } from './http/sidecar.js';
import type { EarlyLogger } from './observability/early.js';

/** Extra time a successor waits for a predecessor's HTTP port beyond its drain deadline, in ms (the span flush bound and slack). */
export const HANDOVER_SLACK_MS = 7000;

/** What startSidecar did: the sidecar, and (when the port was held by a predecessor) the hand-over in progress. */
export interface StartedSidecar {
  sidecar: HttpSidecar;
  /** Settles once the port is ours; rejects with FUGUE_ERR_HTTP_LISTEN if the predecessor never released it. */
  handover: Promise<void> | undefined;
}

/**
 * Listen on the configured port; when a predecessor fugue-server holds it
 * (draining, or, in a takeover, still listening), take it over once it is
 * released. `stopped()` ends the wait (the successor itself is stopping).
 */
export async function startSidecar(config: Config, callbacks: Omit<SidecarOptions, 'host' | 'port' | 'maxConnections' | 'keepAliveTimeoutMs' | 'headersTimeoutMs'>, takeover: boolean, log: EarlyLogger, stopped: () => boolean): Promise<StartedSidecar> {
  const { http } = config;
  const { HttpSidecar } = await import('./http/sidecar.js');
  const sidecar = new HttpSidecar({ host: http.host, port: http.port, maxConnections: http.maxConnections, keepAliveTimeoutMs: http.keepAliveTimeoutMs, headersTimeoutMs: http.headersTimeoutMs, ...callbacks });
  const listening = (addr: AddressInfo) => log.info({ host: addr.address, port: addr.port }, 'http sidecar listening');
  try {
    listening(await sidecar.listen());
    return { sidecar, handover: undefined };
  } catch (err) {
    const { probePeer } = await import('./client/http-probe.js');
    const peer = isPortInUse(err) ? await probePeer(http.host, http.port) : undefined;
    // A draining predecessor (a rolling restart), or the one this takeover replaces.
    if (peer === undefined || (peer.state !== 'draining' && !(takeover && peer.state === 'listening'))) throw err;
    const waitMs = (peer.state === 'draining' ? peer.drainRemainingMs : config.shutdown.timeoutMs) + HANDOVER_SLACK_MS;
    log.warn(
      { port: http.port, predecessorPid: peer.pid, waitMs },
      `http port held by a ${peer.state} fugue-server (${peer.state === 'draining' ? 'rolling restart' : 'takeover'}): serving the socket now, taking the port when it exits`,
    );
    const handover = takePort(sidecar, err as FugueError, performance.now() + waitMs, listening, stopped);
    handover.catch(() => {}); // observed by whoever awaits it
    return { sidecar, handover };
  }
}

// Retry the port until the predecessor lets go of it, or its deadline passes.
async function takePort(sidecar: HttpSidecar, firstError: FugueError, deadline: number, listening: (addr: AddressInfo) => void, stopped: () => boolean): Promise<void> {
  let last = firstError;
  while (performance.now() < deadline && !stopped()) {
    await delay(100);
    try {
      listening(await sidecar.listen());
      return;
    } catch (err) {
      if (!isPortInUse(err)) throw err;
      last = err as FugueError;
    }
  }
  if (stopped()) return;
  throw last;
}

/**
 * Before a takeover changes the socket path: the HTTP port must be free or
 * held by the fugue-server being replaced (it hands the port over when it
 * exits), or the path would go to a server that cannot start.
 */
export async function checkPortForTakeover(config: Config): Promise<void> {
  const { http, socket } = config;
  if (!http.enabled) return;
  const { portHolder } = await import('./client/http-probe.js');
  const held = await portHolder(http.host, http.port);
  if (held === 'other' || (typeof held === 'object' && held.state !== 'listening')) {
    throw takeoverRefused(socket.path, `the HTTP port ${http.host}:${http.port} (http.port) is held by ${held === 'other' ? 'something that is not a fugue-server' : `a fugue-server that is ${held.state}`}; free it, or set http.port`);
  }
}

function isPortInUse(err: unknown): boolean {
  return isFugueError(err) && err.code === 'FUGUE_ERR_HTTP_LISTEN' && err.details.errno === 'EADDRINUSE';
}
