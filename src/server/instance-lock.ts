// One server per socket path, decided atomically. Probing a socket and then
// removing it when stale is a race between two servers starting at once: both
// see "stale", one binds, the other removes the fresh socket by name. tmux
// closes that race with flock(); Node has no flock, so the lock here is a Unix
// socket in Linux's abstract namespace: bind() on it is atomic, and the kernel
// releases it when the process dies, even on kill -9, so a lock is never stale.
//
// Its name comes from a random token kept in `<socket>.lock` inside the
// (0700, checked) socket directory, so other users cannot learn the name and
// squat it. The lock is held from before the probe until the drain starts.

import { closeSync, constants as fsConstants, linkSync, lstatSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { socketBind, socketInUse } from '../errors.js';
import { readPidFile } from './socket-path.js';

const TOKEN = /^[0-9a-f]{32}$/;

export function lockFilePath(socketPath: string): string {
  return `${socketPath}.lock`;
}

/** Create the token file if missing (atomically: write elsewhere, then link). */
export function ensureLockToken(socketPath: string, preferred?: string): string {
  const path = lockFilePath(socketPath);
  const tmp = `${path}.${process.pid}~`;
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${preferred ?? randomToken()}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw socketBind(path, err as NodeJS.ErrnoException);
  } finally {
    unlinkSync(tmp);
  }
  const st = lstatSync(path);
  if (!st.isFile() || st.uid !== process.getuid?.()) {
    throw socketBind(path, Object.assign(new Error(`${path} is not a regular file owned by this user; remove it`), { code: 'EPERM' }));
  }
  const token = readFileSync(path, 'utf8').trim();
  if (!TOKEN.test(token)) {
    throw socketBind(path, Object.assign(new Error(`lock file ${path} is corrupt; stop every fugue-server using this socket path and remove it`), { code: 'EINVAL' }));
  }
  return token;
}

// 16 bytes from the kernel's random source: what crypto.randomBytes gives,
// without loading node:crypto (about 4 ms of a start, in a fresh directory).
function randomToken(): string {
  const bytes = Buffer.alloc(16);
  const fd = openSync('/dev/urandom', fsConstants.O_RDONLY);
  try {
    if (readSync(fd, bytes, 0, 16, null) !== 16) throw new Error('short read from /dev/urandom');
  } finally {
    closeSync(fd);
  }
  return bytes.toString('hex');
}

export class InstanceLock {
  readonly token: string;
  #server: Server | undefined;

  private constructor(token: string, server: Server | undefined) {
    this.token = token;
    this.#server = server;
  }

  /** Take the lock for `socketPath`, or throw FUGUE_ERR_SOCKET_IN_USE. */
  static async acquire(socketPath: string): Promise<InstanceLock> {
    const token = ensureLockToken(socketPath);
    // Abstract sockets exist on Linux only; elsewhere the probe alone decides.
    if (process.platform !== 'linux') return new InstanceLock(token, undefined);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') reject(socketInUse(socketPath, readPidFile(socketPath)));
        else reject(socketBind(socketPath, err));
      });
      server.listen(`\0fugue-server-${token}`, () => resolve());
    });
    // Nobody connects to it: it must not keep the process alive by itself.
    server.unref();
    server.on('connection', (s) => s.destroy());
    return new InstanceLock(token, server);
  }

  /** Re-create the token file if something (a tmp cleaner) removed it. */
  restoreTokenFile(socketPath: string): void {
    ensureLockToken(socketPath, this.token);
  }

  /** Let another server take the path. Idempotent. */
  release(): void {
    this.#server?.close();
    this.#server = undefined;
  }

  get held(): boolean {
    return this.#server !== undefined;
  }
}
