// How many clients the open-files limit really leaves room for.
//
// libuv hides EMFILE from Node: when accept() fails for lack of descriptors it
// accepts the pending connection on a reserve fd and closes it at once, and
// the net.Server sees nothing (uv__emfile_trick). Such connections would
// vanish uncounted. So the server keeps headroom: it derives an effective
// client limit from RLIMIT_NOFILE and the descriptors already open, answers
// clients beyond it with `server_busy` (which needs an fd for a moment), and
// caps all sockets with net.Server.maxConnections, whose 'drop' events are
// counted, so it never reaches EMFILE at all.

import { readdirSync, readFileSync } from 'node:fs';

export interface FdBudget {
  /** Soft RLIMIT_NOFILE, or undefined where it cannot be read. */
  openFilesLimit: number | undefined;
  /** Descriptors open when the budget was computed. */
  openNow: number | undefined;
  /** Clients served at once: limits.maxClients, lowered to fit. */
  maxClients: number;
  /** net.Server.maxConnections: clients plus room for server_busy replies. */
  maxConnections: number;
}

/** Soft limit on open files, from /proc (Linux); undefined elsewhere. */
export function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === undefined || soft === 'unlimited') return undefined;
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function openDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

export function computeFdBudget(maxClients: number, limit = openFilesLimit(), openNow = openDescriptors()): FdBudget {
  if (limit === undefined) return { openFilesLimit: undefined, openNow, maxClients, maxConnections: maxClients + 64 };
  // Keep some descriptors for everything else: HTTP scrapes, span export, logs, files.
  const reserve = Math.min(128, Math.max(8, Math.ceil(limit * 0.02)));
  const busySlack = Math.max(2, Math.floor(reserve / 2));
  const available = limit - (openNow ?? 32) - reserve - busySlack;
  const clients = Math.max(1, Math.min(maxClients, available));
  return { openFilesLimit: limit, openNow, maxClients: clients, maxConnections: clients + busySlack };
}
