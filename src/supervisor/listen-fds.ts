// systemd socket activation (sd_listen_fds(3)): the service manager binds and
// listens, then starts the server with the listening socket as fd 3 and
// LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES describing it. This module only
// reads those variables; the server serves the descriptor (server/server.ts,
// `inheritedFd`). tmux does the same in compat/systemd.c.

/** The first passed descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** The variables sd_listen_fds(3) reads; they are removed once read (its `unset_environment`). */
export const LISTEN_ENV_KEYS = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/** The name a `.socket` unit gives fugue's socket (`FileDescriptorName=fugue`), used when several are passed. */
export const FD_NAME = 'fugue';

export type ListenFdsResult =
  | { kind: 'none' } // not socket-activated (or the variables are for another process)
  | { kind: 'fd'; fd: number; name: string | undefined; count: number }
  | { kind: 'error'; reason: string };

/**
 * Read LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from `env` for process `pid`,
 * and pick the descriptor to serve: the only one, or the one named "fugue".
 * With `unset`, the three variables are deleted from `env` (so nothing the
 * server spawns inherits them), whatever the outcome.
 */
export function listenFds(env: Record<string, string | undefined>, pid: number, unset = true): ListenFdsResult {
  const pidText = env.LISTEN_PID;
  const fdsText = env.LISTEN_FDS;
  const namesText = env.LISTEN_FDNAMES;
  if (unset) for (const key of LISTEN_ENV_KEYS) delete env[key];
  if (fdsText === undefined || fdsText === '') return { kind: 'none' };
  // Meant for another process (a wrapper that did not exec): not ours to use.
  if (pidText === undefined || !/^[1-9][0-9]*$/.test(pidText) || Number(pidText) !== pid) return { kind: 'none' };
  if (!/^[0-9]+$/.test(fdsText)) return { kind: 'error', reason: `LISTEN_FDS=${JSON.stringify(fdsText)} is not a count of descriptors` };
  const count = Number(fdsText);
  if (count === 0) return { kind: 'error', reason: 'LISTEN_FDS=0: the service manager passed no socket; check the .socket unit (ListenStream=)' };
  const names = namesText === undefined || namesText === '' ? [] : namesText.split(':');
  if (count === 1) return { kind: 'fd', fd: LISTEN_FDS_START, name: names[0], count };
  const at = names.indexOf(FD_NAME);
  if (at === -1 || at >= count) {
    return {
      kind: 'error',
      reason: `LISTEN_FDS=${count}: several sockets were passed and none is named "${FD_NAME}" (LISTEN_FDNAMES=${JSON.stringify(namesText ?? '')}); pass one, or set FileDescriptorName=${FD_NAME} on fugue's ListenStream=`,
    };
  }
  return { kind: 'fd', fd: LISTEN_FDS_START + at, name: FD_NAME, count };
}
