// fuguectl's exit codes (docs/operations.md, "Exit codes of fuguectl").

/**
 * fuguectl's exit codes. Stable: scripts may rely on them. docs/operations.md
 * lists the same table (test/docs.test.ts keeps the two in step).
 */
export const CTL_EXIT = {
  /** Success; for `health`, healthy. */
  OK: 0,
  /** `health` only: not healthy (Docker HEALTHCHECK's "unhealthy"), whatever the reason. */
  UNHEALTHY: 1,
  /** `events` only: the server shut down (it said so, then closed the connection). */
  ENDED: 3,
  /** Bad command line. */
  USAGE: 64,
  /** No server answers at the socket (ENOENT, ECONNREFUSED, EACCES), or it closed the connection before replying. */
  UNAVAILABLE: 69,
  /** A bug in fuguectl (an unexpected exception). */
  SOFTWARE: 70,
  /** No reply within --timeout; for `wait-ready`, no server answered before the deadline; for `stop`, the server had not exited by then. */
  TIMEOUT: 75,
  /** The server replied with an error, refused the handshake, or sent a malformed or oversized reply. */
  PROTOCOL: 76,
  /** `stop`: fuguectl cannot show that the pid the server gives holds the socket, or may not signal it; nothing was signalled. */
  REFUSED: 77,
  /** A config file (--config, FUGUE_CONFIG), FUGUE_SOCKET_PATH or a FUGUE_* variable fugue does not know: what the server would refuse. */
  CONFIG: 78,
} as const;

/** What each exit code means, in the words of docs/operations.md. */
export const CTL_EXIT_MEANING: Record<number, string> = {
  [CTL_EXIT.OK]: 'success; for `health`: healthy',
  [CTL_EXIT.UNHEALTHY]: '`health`: not healthy (not ready, draining, or no answer)',
  [CTL_EXIT.ENDED]: '`events`: the server shut down (it said so, then closed the connection)',
  [CTL_EXIT.USAGE]: 'bad command line',
  [CTL_EXIT.UNAVAILABLE]: 'no server answers at the socket, or it closed the connection before replying',
  [CTL_EXIT.SOFTWARE]: 'internal error in fuguectl',
  [CTL_EXIT.TIMEOUT]: 'no reply within `--timeout`; `wait-ready`: the deadline passed; `stop`: the server had not exited by then',
  [CTL_EXIT.PROTOCOL]: 'the server replied with an error, refused the handshake, or sent a malformed or oversized reply',
  [CTL_EXIT.REFUSED]: '`stop` refused: the pid the server gave cannot be shown to hold the socket, or may not be signalled; no signal was sent',
  [CTL_EXIT.CONFIG]: 'a config file (`--config`, `FUGUE_CONFIG`) cannot be used, or `FUGUE_SOCKET_PATH` is bad, or a `FUGUE_*` variable is unknown',
};
