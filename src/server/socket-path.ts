// Safe creation and removal of the server's Unix socket. See docs/operations.md.
//
// - The directory must be ours and not writable by group/others, or someone else
//   could swap the socket under us. Missing directories are created 0700.
// - An existing path is probed: a live socket means another server (refuse, touch
//   nothing); a refused connect means a stale socket (remove it); anything that is
//   not a socket is never deleted.
// - We bind a temporary name in the same directory with the umask set so the
//   socket is never wider than `mode`, then hard-link it onto the final path.
//   link() fails if the path exists, so we never clobber a socket another server
//   created meanwhile, and the listener's close() later unlinks only the temporary
//   name (libuv unlinks by name: nodejs/node#19729). We remove the final path
//   ourselves, only while its inode is still ours.

import { closeSync, constants as fsConstants, fstatSync, linkSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { FugueError, socketActivation, socketBind, socketInUse, socketPathNotSocket } from '../errors.js';
import { kindOf, pidFilePath, tempSocketPath, type Notify } from './socket-dir.js';

/** Who owns a bound socket file: compared before any removal. */
export interface SocketIdentity {
  dev: number;
  ino: number;
}

export { pidFilePath, tempSocketPath, type Notify, type SocketNotice } from './socket-dir.js';

export type ProbeResult = 'absent' | 'stale' | 'live';

/** What is at `path` now: nothing, a dead socket, or a live server. Throws for a non-socket. */
export async function probeSocketPath(path: string, timeoutMs = 2000): Promise<ProbeResult> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw socketBind(path, err as NodeJS.ErrnoException);
  }
  if (!isSocket) throw socketPathNotSocket(path, kindOf(path));
  return new Promise<ProbeResult>((resolve, reject) => {
    const sock = createConnection(path);
    const timer = setTimeout(() => {
      // A server too busy to accept is still a live server: never touch its socket.
      sock.destroy();
      resolve('live');
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve('live');
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      if (err.code === 'ECONNREFUSED') resolve('stale');
      else if (err.code === 'ENOENT') resolve('absent');
      else reject(socketBind(path, err));
    });
  });
}

/** The pid in the live server's pid file, if it has one. */
export function readPidFile(socketPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidFilePath(socketPath), 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function writePidFile(socketPath: string): void {
  const tmp = `${pidFilePath(socketPath)}.${process.pid}~`;
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, pidFilePath(socketPath));
}

function removeStale(path: string, notify: Notify): void {
  try {
    unlinkSync(path);
    notify({ code: 'stale_socket_removed', socketPath: path });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw socketBind(path, err as NodeJS.ErrnoException);
  }
  try {
    unlinkSync(pidFilePath(path));
  } catch {
    // no pid file: nothing to do
  }
}

function listen(server: Server, path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // bind(2) runs inside listen(): with this umask the socket is created with
    // exactly `mode` and is never, even for an instant, wider.
    const old = process.umask(~mode & 0o777);
    try {
      server.listen(path);
    } finally {
      process.umask(old);
    }
  });
}

/**
 * Bind `server` at `socketPath` safely (see the header comment). Resolves with
 * the identity of the socket file; rejects with a FugueError. The caller has
 * already run checkSocketPathLength() and ensureSocketDir() (it needs the
 * directory before this, for the instance lock).
 */
export async function bindUnixSocket(server: Server, socketPath: string, mode: number, notify: Notify): Promise<SocketIdentity> {
  const existing = await probeSocketPath(socketPath);
  if (existing === 'live') throw socketInUse(socketPath, readPidFile(socketPath));
  if (existing === 'stale') removeStale(socketPath, notify);

  const temp = tempSocketPath(socketPath);
  try {
    if (lstatSync(temp).isSocket()) unlinkSync(temp); // left by a dead process with our pid
  } catch {
    // absent: the usual case
  }
  try {
    await listen(server, temp, mode);
  } catch (err) {
    throw socketBind(socketPath, err as NodeJS.ErrnoException);
  }
  const st = lstatSync(temp);
  const identity: SocketIdentity = { dev: st.dev, ino: st.ino };
  try {
    try {
      linkSync(temp, socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw socketBind(socketPath, err as NodeJS.ErrnoException);
      // Someone created the path since the probe: check again, once.
      const again = await probeSocketPath(socketPath);
      if (again === 'live') throw socketInUse(socketPath, readPidFile(socketPath));
      if (again === 'stale') removeStale(socketPath, notify);
      linkSync(temp, socketPath);
    }
  } catch (err) {
    unlinkQuiet(temp);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err instanceof FugueError ? err : socketBind(socketPath, err as NodeJS.ErrnoException);
  }
  unlinkQuiet(temp);
  try {
    writePidFile(socketPath);
  } catch (err) {
    notify({ code: 'pid_file_failed', pidFile: pidFilePath(socketPath), error: err as Error });
  }
  notify({ code: 'socket_bound', socketPath, ...identity });
  return identity;
}

/**
 * Take the path over from the live server there (a takeover: docs/operations.md,
 * "Upgrades"): bind a temporary name beside it, then rename(2) it over the
 * path in one step, so the path never lacks a listening socket. Clients that
 * connect after the rename reach `server`; the predecessor keeps the socket
 * it listens on (unlinked now) and what is queued on it. Only a socket is
 * ever replaced. Rejects with a FugueError, the path unchanged.
 */
export async function replaceUnixSocket(server: Server, socketPath: string, mode: number, notify: Notify): Promise<SocketIdentity> {
  const existing = await probeSocketPath(socketPath); // throws for anything but a socket
  if (existing !== 'live') return bindUnixSocket(server, socketPath, mode, notify); // nobody to take over from
  const temp = tempSocketPath(socketPath);
  unlinkQuiet(temp); // left by a dead process with our pid
  try {
    await listen(server, temp, mode);
  } catch (err) {
    throw socketBind(socketPath, err as NodeJS.ErrnoException);
  }
  const st = lstatSync(temp);
  try {
    if (!lstatSync(socketPath).isSocket()) throw socketPathNotSocket(socketPath, kindOf(socketPath));
    renameSync(temp, socketPath);
  } catch (err) {
    unlinkQuiet(temp);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err instanceof FugueError ? err : socketBind(socketPath, err as NodeJS.ErrnoException);
  }
  const identity: SocketIdentity = { dev: st.dev, ino: st.ino };
  try {
    writePidFile(socketPath);
  } catch (err) {
    notify({ code: 'pid_file_failed', pidFile: pidFilePath(socketPath), error: err as Error });
  }
  notify({ code: 'socket_bound', socketPath, ...identity });
  return identity;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Remove the socket file (and our pid file) only if the path still holds the
 * socket we bound: a successor's socket at the same path is never touched.
 * Synchronous so it can run on every exit path, including 'exit' handlers.
 */
export function removeSocketIfOurs(socketPath: string, identity: SocketIdentity): boolean {
  let ours = false;
  try {
    const st = lstatSync(socketPath);
    ours = st.isSocket() && st.ino === identity.ino && st.dev === identity.dev;
  } catch {
    return false;
  }
  if (!ours) return false;
  unlinkQuiet(socketPath);
  try {
    if (readFileSync(pidFilePath(socketPath), 'utf8').trim() === String(process.pid)) unlinkQuiet(pidFilePath(socketPath));
  } catch {
    // no pid file
  }
  return true;
}

/** The identity of the socket file at `path` now, or undefined. */
export function socketIdentity(path: string): SocketIdentity | undefined {
  try {
    const st = lstatSync(path);
    return st.isSocket() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Listen on a socket the service manager passed (socket activation). Rejects
 * with FUGUE_ERR_SOCKET_ACTIVATION when `fd` is not an AF_UNIX stream socket.
 * (Node cannot tell a Unix listener's own path: the caller trusts socket.path.)
 */
export async function listenInherited(server: Server, fd: number): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = fstatSync(fd).isSocket();
  } catch (err) {
    throw socketActivation(fd, `it is not open (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!isSocket) throw socketActivation(fd, 'it is not a socket');
  // A TCP listener reports {address, port}; a Unix one made from a descriptor reports null.
  const address = await new Promise<string | object | null>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(socketActivation(fd, `listening on it failed (${err.code ?? err.message}): it must be a stream socket, not a datagram one`));
    server.once('error', onError);
    server.listen({ fd }, () => {
      server.off('error', onError);
      resolve(server.address());
    });
  });
  if (address !== null && typeof address === 'object') {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw socketActivation(fd, 'it is a TCP socket; fugue-server serves Unix sockets only');
  }
}
