// One file-descriptor budget for the whole process.
//
// libuv hides EMFILE from Node: when accept() fails for lack of descriptors it
// accepts the pending connection on a reserve fd and closes it at once, and
// the net.Server sees nothing (uv__emfile_trick). Such connections would
// vanish uncounted. So the process never reaches EMFILE: at start it reads
// RLIMIT_NOFILE and the descriptors already open, sets aside a fixed share for
// every other consumer, each of which is capped on its own (HTTP sidecar
// connections by http.maxConnections, the OTLP exporter by its agent's
// maxSockets, transient files and sockets by a small allowance), and gives the
// Unix socket what is left: clients up to the limit in force, and connections
// over that limit are answered `server_busy` as long as descriptors remain.
// net.Server.maxConnections is set to the socket's whole share (not to the
// client limit: a reload that lowers the limit below the number connected must
// still answer newcomers with `server_busy`), so Node closes a connection
// itself (a counted 'drop') only when descriptors truly run out. Nothing else
// can take the socket clients' share.

import { readFileSync } from 'node:fs';
import { openFdCount } from '../host.js';

/** Descriptors set aside for consumers other than socket clients, each capped on its own. */
export interface FdReserve {
  /** HTTP sidecar connections (http.maxConnections; 0 when the sidecar is off). */
  http: number;
  /** Span exporter sockets (the OTLP agent's maxSockets; 0 without an exporter). */
  exporter: number;
}

/**
 * Transient descriptors: a socket re-creation (listener, probe, temporary
 * name: 3), DNS lookups for the exporter (up to 4 at once in libuv's thread
 * pool), one file at a time (config reload, /proc, pid and lock files).
 */
export const MISC_FDS = 8;
/** Connections over the client limit still answered with `server_busy` (each holds an fd for a moment). */
export const BUSY_SLACK = 8;

export interface FdBudget {
  /** Soft RLIMIT_NOFILE, or undefined where it cannot be read. */
  openFilesLimit: number | undefined;
  /** Descriptors open when the budget was computed. */
  openNow: number | undefined;
  /** Clients served at once: limits.maxClients, lowered to fit. */
  maxClients: number;
  /** net.Server.maxConnections: the socket's whole share of descriptors (clients and server_busy replies); Infinity where the limit cannot be read. */
  maxConnections: number;
  /** Descriptors set aside for everything else. */
  reserved: number;
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


/**
 * The client limit that fits in the open-files limit once every other
 * consumer has its share. Where the limit cannot be read, limits.maxClients
 * stands as configured.
 */
export function computeFdBudget(maxClients: number, reserve: FdReserve, limit = openFilesLimit(), openNow = openFdCount()): FdBudget {
  const reserved = reserve.http + reserve.exporter + MISC_FDS;
  if (limit === undefined) return { openFilesLimit: undefined, openNow, maxClients, maxConnections: Infinity, reserved };
  const share = limit - (openNow ?? 32) - reserved;
  const clients = Math.max(1, Math.min(maxClients, share - BUSY_SLACK));
  return { openFilesLimit: limit, openNow, maxClients: clients, maxConnections: Math.max(clients + BUSY_SLACK, share), reserved };
}
