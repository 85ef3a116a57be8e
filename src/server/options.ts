// What a FugueServer is made with, what a reload may change, and how a drain
// ended: the server's option types, kept apart from its code.

import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/index.js';
import type { ConnectionLimits } from './connection.js';
import type { FdReserve } from './fd-budget.js';
import type { Feature } from './features.js';

/** Where a FugueServer is in its life: idle -> starting -> listening -> draining -> closed, one way only. */
export type ServerState = 'idle' | 'starting' | 'listening' | 'draining' | 'closed';

/** What a FugueServer serves and how; every limit has the default of its config key (docs/configuration.md). */
export interface FugueServerOptions {
  /** Absolute path of the Unix socket. */
  socketPath: string;
  /** Permission bits of the socket file. Default: 0o600. */
  socketMode?: number;
  /** Reported as `server_version`. */
  version: string;
  /** Features registered on top of the protocol's own types, in this order. Default: none. */
  features?: readonly Feature[];
  /** How long a graceful drain waits for clients to leave, in ms. Default: 10000. */
  shutdownTimeoutMs?: number;
  /** Connections served at once; more get `server_busy`. Default: 1024. */
  maxClients?: number;
  /** Largest frame payload accepted, in bytes. Default: 16777216. */
  maxFrameBytes?: number;
  /** Unsent reply bytes a client may let pile up before it is disconnected. Default: 33554432. */
  maxBufferedBytes?: number;
  /** Time allowed from accept to `connect`, in ms; 0 = none. Default: 10000. */
  handshakeTimeoutMs?: number;
  /** Close a connection with no traffic for this long, in ms; 0 = never. Default: 0. */
  idleTimeoutMs?: number;
  /** A frame must be complete this long after its first byte, in ms; 0 = no limit. Default: 30000. */
  frameTimeoutMs?: number;
  /** How often to check that the socket file is still ours, in ms; 0 = never. Default: 1000. */
  socketCheckIntervalMs?: number;
  /** Descriptors other consumers in this process may hold (see fd-budget.ts). Default: none. */
  fdReserve?: FdReserve;
  /**
   * A listening AF_UNIX stream socket passed by the service manager (systemd
   * socket activation, supervisor/listen-fds.ts): served instead of binding
   * `socketPath`. The manager owns the socket file: no directory checks, no
   * probe, no instance lock, never an unlink, and a drain leaves queued
   * connections to the next instance. Default: none (bind `socketPath`).
   */
  inheritedFd?: number;
}

/** What a configuration reload may change while the server runs (FugueServerOptions documents each). */
export type LiveSettings = Pick<
  FugueServerOptions,
  'shutdownTimeoutMs' | 'maxClients' | 'maxFrameBytes' | 'maxBufferedBytes' | 'handshakeTimeoutMs' | 'idleTimeoutMs' | 'frameTimeoutMs' | 'socketCheckIntervalMs'
>;

/** How a graceful drain ended. */
export interface DrainResult {
  /** From the start of the drain to its end, in ms. */
  durationMs: number;
  /** Clients that left by themselves during the drain. */
  left: number;
  /** Clients still connected at the deadline (or at a forced stop), closed by the server. */
  forced: number;
}

/** The per-connection limits of `options`, defaults filled in. */
export function connectionLimits(options: FugueServerOptions): ConnectionLimits {
  return {
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxBufferedBytes: options.maxBufferedBytes ?? 32 * 1024 * 1024,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 0,
    frameTimeoutMs: options.frameTimeoutMs ?? 30_000,
  };
}
