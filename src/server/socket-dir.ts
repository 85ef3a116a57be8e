// The socket's directory and the names beside the socket: the directory must be
// ours and not writable by group or others (or someone else could swap the
// socket under us); missing directories are created 0700; the path must fit
// in sun_path, with the temporary name it is bound under (socket-path.ts).

import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { socketDirCreate, socketDirUnsafe, socketPathTooLong } from '../errors.js';
import type { NoticeEvent } from './events.js';

/** What binding reports along the way (published as `fugue:server:notice` by the caller). */
export type SocketNotice = Extract<NoticeEvent, { code: 'socket_dir_created' | 'stale_socket_removed' | 'pid_file_failed' | 'socket_bound' }>;
/** Receives SocketNotices; `server` is filled in by the caller. */
export type Notify = (notice: SocketNotice extends infer N ? (N extends unknown ? Omit<N, 'server'> : never) : never) => void;

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export function pidFilePath(socketPath: string): string {
  return `${socketPath}.pid`;
}

/** The name a server with `pid` binds before hard-linking it to `socketPath` (see above); /proc/net/unix lists it. */
export function tempSocketPath(socketPath: string, pid = process.pid): string {
  return join(dirname(socketPath), `.${pid.toString(36)}~`);
}

export function checkSocketPathLength(socketPath: string): void {
  const bytes = Buffer.byteLength(socketPath);
  // The temporary bind name must fit too (see the header comment).
  const tempBytes = Buffer.byteLength(tempSocketPath(socketPath));
  const worst = Math.max(bytes, tempBytes);
  if (worst > MAX_SOCKET_PATH_BYTES) {
    throw socketPathTooLong(socketPath, bytes, MAX_SOCKET_PATH_BYTES - (tempBytes - bytes > 0 ? tempBytes - bytes : 0));
  }
}

/** What is at `path`, in words, for messages (it is not a socket). */
export function kindOf(path: string): string {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular file';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'non-socket file';
}

/** Create the socket's directory (0700) if missing, and check it is safe. */
export function ensureSocketDir(dir: string, notify: Notify): void {
  let created = false;
  const uid = process.getuid?.();
  try {
    created = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
  } catch (err) {
    throw socketDirCreate(dir, err as NodeJS.ErrnoException, firstNonDirectory(dir), uid);
  }
  if (created) notify({ code: 'socket_dir_created', dir, mode: '0700' });
  const st = statSync(dir);
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw socketDirUnsafe(dir, { isDirectory: st.isDirectory(), mode: st.mode, ownerUid: st.uid, serverUid: uid });
  }
}

// The first component of `dir` that exists and is not a directory: what an
// ENOTDIR or EEXIST from mkdir is about, named in the message.
function firstNonDirectory(dir: string): string | undefined {
  const parts: string[] = [];
  for (let p = dir; p !== dirname(p); p = dirname(p)) parts.unshift(p);
  for (const p of parts) {
    try {
      if (!statSync(p).isDirectory()) return p;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

