// Every error fugue-server raises on purpose has a stable code. Callers match on
// `code`, never on the message. docs/errors.md lists every code (a test keeps the
// two in step); retired codes are never reused.

/** The stable error codes, with the process exit code each one maps to. */
export const ERROR_CODES = {
  FUGUE_ERR_CONFIG_INVALID: 78,
  FUGUE_ERR_CONFIG_FILE: 78,
  FUGUE_ERR_USAGE: 64,
  FUGUE_ERR_SOCKET_PATH_TOO_LONG: 78,
  FUGUE_ERR_SOCKET_PATH_NOT_SOCKET: 73,
  FUGUE_ERR_SOCKET_DIR_UNSAFE: 77,
  FUGUE_ERR_SOCKET_DIR_CREATE: 73,
  FUGUE_ERR_SOCKET_IN_USE: 69,
  FUGUE_ERR_SOCKET_ACCESS: 77,
  FUGUE_ERR_SOCKET_READ_ONLY: 73,
  FUGUE_ERR_SOCKET_BIND: 73,
  FUGUE_ERR_SOCKET_ACTIVATION: 78,
  FUGUE_ERR_HTTP_LISTEN: 75,
  FUGUE_ERR_SERVER_CLOSED: 70,
  FUGUE_ERR_FRAME_TOO_LARGE: 65,
  FUGUE_ERR_CLIENT_CONNECT: 69,
  FUGUE_ERR_CLIENT_PROTOCOL: 76,
  FUGUE_ERR_CLIENT_TIMEOUT: 75,
  FUGUE_ERR_CLIENT_CLOSED: 69,
  FUGUE_ERR_CLIENT_BAD_REPLY: 76,
  FUGUE_ERR_CLIENT_REPLY_TOO_LARGE: 76,
  FUGUE_ERR_CLIENT_STOP_REFUSED: 77,
  FUGUE_ERR_TAKEOVER_REFUSED: 69,
} as const;

/** Every stable error code (`FUGUE_ERR_<AREA>_<WHAT>`); docs/errors.md lists them. */
export type FugueErrorCode = keyof typeof ERROR_CODES;

/** Exit codes of the `fugue-server` process (sysexits.h where one fits). */
export const EXIT = {
  OK: 0,
  USAGE: 64,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CANTCREAT: 73,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;

/** An error fugue-server raises on purpose: match on `code`, never on the message. */
export class FugueError extends Error {
  readonly code: FugueErrorCode;
  /** Extra structured facts (path, key, value...) for logs. */
  readonly details: Record<string, unknown>;

  constructor(code: FugueErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FugueError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** The process exit code for this error. */
  get exitCode(): number {
    return ERROR_CODES[this.code];
  }
}

/** True when `err` is a FugueError. */
export function isFugueError(err: unknown): err is FugueError {
  return err instanceof FugueError;
}

// --- constructors: one per situation, each message says what, where, and what to do ---

export function configInvalid(message: string, details: Record<string, unknown> = {}): FugueError {
  return new FugueError('FUGUE_ERR_CONFIG_INVALID', message, { details });
}

export function configFile(path: string, cause: unknown): FugueError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new FugueError(
    'FUGUE_ERR_CONFIG_FILE',
    `cannot read config file ${path}: ${why}; check the path given with --config or FUGUE_CONFIG, and that the file is valid JSON or YAML`,
    { cause, details: { path } },
  );
}

/** A config file itself is unusable (unreadable, not a regular file, too large, not UTF-8, not JSON/YAML, too deep...); `message` lists every problem. */
export function configFileInvalid(message: string, details: Record<string, unknown> = {}): FugueError {
  return new FugueError('FUGUE_ERR_CONFIG_FILE', message, { details });
}

export function usage(message: string): FugueError {
  return new FugueError('FUGUE_ERR_USAGE', `${message}; run with --help for usage`);
}

export function socketPathTooLong(path: string, bytes: number, max: number): FugueError {
  return new FugueError(
    'FUGUE_ERR_SOCKET_PATH_TOO_LONG',
    `socket path ${path} is ${bytes} bytes long, but a Unix socket path may be at most ${max} bytes; set socket.path (FUGUE_SOCKET_PATH) to a shorter path`,
    { details: { path, bytes, max } },
  );
}

export function socketPathNotSocket(path: string, kind: string): FugueError {
  return new FugueError(
    'FUGUE_ERR_SOCKET_PATH_NOT_SOCKET',
    `socket path ${path} exists and is a ${kind}, not a socket; fugue-server never deletes it: move it away yourself or set socket.path to another path`,
    { details: { path, kind } },
  );
}

/** What the server found at its socket's directory (ensureSocketDir), for {@link socketDirUnsafe}. */
export interface SocketDirFacts {
  isDirectory: boolean;
  /** Its st_mode (type and permission bits, the sticky bit included). */
  mode: number;
  ownerUid: number;
  /** The server's uid; undefined where the platform has none. */
  serverUid: number | undefined;
}

// The advice must be safe wherever it is followed, and fit the case (issue 18
// point 4): never "chmod" a shared sticky directory such as /tmp (a root user
// who did would break the machine), ownership fixed with chown and only for a
// directory meant for this server, and otherwise a directory of its own.
export function socketDirUnsafe(dir: string, facts: SocketDirFacts): FugueError {
  const mode = (facts.mode & 0o7777).toString(8).padStart(4, '0');
  const writers = (facts.mode & 0o002) !== 0 ? 'every user' : (facts.mode & 0o020) !== 0 ? 'its group' : undefined;
  const uid = facts.serverUid;
  const foreign = uid !== undefined && facts.ownerUid !== uid;
  const orDefault = 'or leave socket.path unset for the default ($XDG_RUNTIME_DIR/fugue/fugue.sock, else ~/.fugue/fugue.sock)';
  let message: string;
  if (!facts.isDirectory) {
    message = `socket directory ${dir} is not a directory; fugue-server never moves or deletes it: set socket.path to a path in a directory, ${orDefault}`;
  } else if (writers !== undefined && (facts.mode & 0o1000) !== 0) {
    const own = `${dir === '/' ? '' : dir}/fugue-${uid ?? 'USER'}/fugue.sock`;
    message = `socket directory ${dir} is shared: ${writers} may create files in it (mode ${mode}, sticky, like /tmp), so another user could take the socket's name first. Do not change the mode of a shared directory: set socket.path to a path in a directory of its own, such as ${own} (fugue-server creates the directory with mode 0700, and the sticky bit keeps other users from renaming it), ${orDefault}`;
  } else if (foreign) {
    const fix = `chown ${uid} ${dir}${writers === undefined ? '' : ` && chmod go-w ${dir}`}`;
    message = `socket directory ${dir} is owned by uid ${facts.ownerUid}, not by this server's uid ${uid}${writers === undefined ? '' : `, and ${writers} may write to it (mode ${mode})`}, so another user could replace the socket. If ${dir} is meant for this server alone (as systemd's RuntimeDirectory=fugue makes /run/fugue), give it to the server's user, as root: ${fix}; otherwise set socket.path to a path in a directory this user owns, ${orDefault}`;
  } else {
    message = `socket directory ${dir} is writable by ${writers ?? 'others'} (mode ${mode}), so another user could replace the socket. If ${dir} is this server's alone, take that permission away: chmod go-w ${dir}; otherwise set socket.path to a path in a directory only this user can write, ${orDefault}`;
  }
  return new FugueError('FUGUE_ERR_SOCKET_DIR_UNSAFE', message, { details: { dir, mode, ownerUid: facts.ownerUid, serverUid: uid } });
}

// Node's message is "CODE: description, syscall 'path'": the description alone.
function describeErrno(err: NodeJS.ErrnoException): string {
  const text = err.message.replace(/^[A-Z0-9_]+: /, '');
  const comma = text.lastIndexOf(', ');
  return comma === -1 ? text : text.slice(0, comma);
}

/**
 * The socket's directory could not be created. `blocker` is the first
 * component of the path that exists and is not a directory, when that is why
 * (ENOTDIR, EEXIST); `serverUid` the server's uid.
 */
export function socketDirCreate(dir: string, cause: NodeJS.ErrnoException, blocker?: string, serverUid?: number): FugueError {
  const errno = cause.code ?? 'UNKNOWN';
  const elsewhere = 'set socket.path to a path in another directory';
  let code: FugueErrorCode = 'FUGUE_ERR_SOCKET_DIR_CREATE';
  let what: string;
  switch (errno) {
    case 'EACCES':
    case 'EPERM':
      code = 'FUGUE_ERR_SOCKET_ACCESS';
      what = `permission denied (${errno}): this server's user${serverUid === undefined ? '' : ` (uid ${serverUid})`} may not create it; create it for that user, as root: install -d -m 0700${serverUid === undefined ? '' : ` -o ${serverUid}`} ${dir}; or ${elsewhere} it owns`;
      break;
    case 'ENOTDIR':
    case 'EEXIST':
      what = blocker === undefined
        ? `a component of the path is not a directory (${errno}); check the path, or ${elsewhere}`
        : `${blocker} is not a directory (${errno}), so nothing can be created ${blocker === dir ? 'there' : 'under it'}; fugue-server never moves or deletes it: ${elsewhere}, or move ${blocker} away yourself`;
      break;
    case 'EROFS':
      what = `the file system is read-only (EROFS); ${elsewhere} on a writable file system, such as $XDG_RUNTIME_DIR`;
      break;
    case 'ENOSPC':
    case 'EDQUOT':
      what = `no space left for it (${errno}); free some space, or ${elsewhere}`;
      break;
    default:
      what = `${errno}: ${describeErrno(cause)}; check the path, or ${elsewhere}`;
  }
  return new FugueError(code, `cannot create socket directory ${dir}: ${what}`, { cause, details: { dir, errno, ...(blocker === undefined ? {} : { blocker }) } });
}

export function socketInUse(path: string, pid: number | undefined): FugueError {
  const who = pid === undefined ? 'another fugue-server' : `another fugue-server (pid ${pid})`;
  return new FugueError(
    'FUGUE_ERR_SOCKET_IN_USE',
    `already running at ${path}: ${who} is serving this socket; stop it first (fuguectl --socket ${path} stop, which checks that pid and waits for the drain${pid === undefined ? '' : `, or kill -TERM ${pid}`}) or set socket.path to another path`,
    { details: { path, pid } },
  );
}

export function socketBind(path: string, cause: NodeJS.ErrnoException): FugueError {
  const errno = cause.code ?? 'UNKNOWN';
  switch (errno) {
    case 'EACCES':
    case 'EPERM':
      return new FugueError('FUGUE_ERR_SOCKET_ACCESS', `permission denied creating socket ${path} (${errno}); run as a user who may write to its directory, or set socket.path to a directory you own`, { cause, details: { path, errno } });
    case 'EROFS':
      return new FugueError('FUGUE_ERR_SOCKET_READ_ONLY', `cannot create socket ${path}: the file system is read-only (EROFS); set socket.path to a writable directory such as $XDG_RUNTIME_DIR`, { cause, details: { path, errno } });
    case 'ENOENT':
      return new FugueError('FUGUE_ERR_SOCKET_BIND', `cannot create socket ${path}: its directory no longer exists (ENOENT; removed while the server was starting?); start the server again, which creates it, or set socket.path elsewhere`, { cause, details: { path, errno } });
    case 'ENOTDIR':
      return new FugueError('FUGUE_ERR_SOCKET_BIND', `cannot create socket ${path}: a component of the path is not a directory (ENOTDIR); set socket.path to a path in another directory`, { cause, details: { path, errno } });
    case 'ENAMETOOLONG':
      return new FugueError('FUGUE_ERR_SOCKET_PATH_TOO_LONG', `socket path ${path} is too long for the system (ENAMETOOLONG); set socket.path to a shorter path`, { cause, details: { path, errno } });
    case 'EADDRINUSE':
      return new FugueError('FUGUE_ERR_SOCKET_IN_USE', `socket path ${path} was taken by another process while this server was starting (EADDRINUSE); stop the other server or set socket.path to another path`, { cause, details: { path, errno } });
    default:
      return new FugueError('FUGUE_ERR_SOCKET_BIND', `cannot create socket ${path} (${errno}: ${describeErrno(cause)}); check the path and its directory, or set socket.path elsewhere`, { cause, details: { path, errno } });
  }
}

export function socketActivation(fd: number | undefined, why: string): FugueError {
  const which = fd === undefined ? 'the sockets passed by the service manager' : `descriptor ${fd}, passed by the service manager (LISTEN_FDS)`;
  return new FugueError(
    'FUGUE_ERR_SOCKET_ACTIVATION',
    `socket activation: cannot serve ${which}: ${why}; the .socket unit must pass one AF_UNIX stream socket (ListenStream=/path/to/fugue.sock, or several with FileDescriptorName=fugue on fugue's)`,
    { details: { fd } },
  );
}

export function httpListen(host: string, port: number, cause: NodeJS.ErrnoException): FugueError {
  const errno = cause.code ?? 'UNKNOWN';
  const hint = errno === 'EADDRINUSE'
    ? 'another process is using that port; stop it, or set http.port (FUGUE_HTTP_PORT) to a free port, or http.enabled=false'
    : errno === 'EACCES'
      ? 'ports below 1024 need privileges; set http.port (FUGUE_HTTP_PORT) to 1024 or above'
      : 'check http.host and http.port';
  return new FugueError('FUGUE_ERR_HTTP_LISTEN', `cannot listen for HTTP on ${host}:${port} (${errno}); ${hint}`, { cause, details: { host, port, errno } });
}

export function serverClosed(): FugueError {
  return new FugueError('FUGUE_ERR_SERVER_CLOSED', 'this server was closed and cannot be started again; create a new instance');
}

export function frameTooLarge(length: number, max: number): FugueError {
  return new FugueError('FUGUE_ERR_FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${max} bytes (limits.maxFrameBytes)`, { details: { length, max } });
}

/** `fugue-server --takeover` cannot show what serves the path is a fugue-server it may replace: nothing was changed. */
export function takeoverRefused(socketPath: string, why: string): FugueError {
  return new FugueError('FUGUE_ERR_TAKEOVER_REFUSED', `cannot take over ${socketPath}: ${why}. Nothing was changed: the server there keeps serving`, { details: { socketPath } });
}
