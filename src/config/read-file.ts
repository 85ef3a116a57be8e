// Read one config file as text, safely (issue 13, point 5: config files are input too).
//
// - The file is opened with O_NONBLOCK, so opening a FIFO without a writer
//   returns at once instead of blocking, and then fstat()ed: only a regular
//   file is read. A FIFO, socket, directory or device (/dev/zero, /dev/stdin)
//   is refused before a single byte is read.
// - Symbolic links are followed (no O_NOFOLLOW): /etc/fugue/server.yaml ->
//   /opt/... and Kubernetes ConfigMap mounts (..data/ links) are how operators
//   ship config. The checks apply to what the link points at, because fstat()
//   looks at the descriptor that is read, not at the name (no check-then-open race).
// - At most MAX_CONFIG_FILE_BYTES are read, even from a file that grows while
//   it is read or that reports size 0 (/proc files).
// - The bytes must be valid UTF-8; a leading UTF-8 byte-order mark is dropped.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';

/** Largest config file read, in bytes (1 MiB). Real config files are a few KiB. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** What is wrong with a config file as a whole. */
export type FileProblemKind = 'open' | 'not_regular' | 'too_large' | 'not_utf8' | 'extension' | 'syntax' | 'too_deep' | 'duplicate_key' | 'top_level' | 'alias';

/** Why a file cannot be used; `message` says what and what to do (the caller adds the path). */
export class FileProblem extends Error {
  readonly problem: FileProblemKind;
  readonly errno: string | undefined;
  constructor(problem: FileProblem['problem'], message: string, errno?: string) {
    super(message);
    this.problem = problem;
    this.errno = errno;
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

const OPEN_HINTS: Record<string, string> = {
  ENOENT: 'no such file; check the path given with --config or FUGUE_CONFIG',
  EACCES: 'permission denied; make the file readable by the user running fugue-server',
  EPERM: 'permission denied; make the file readable by the user running fugue-server',
  ENOTDIR: 'a component of the path is not a directory; check the path',
  ELOOP: 'too many levels of symbolic links (a link loop?); point the path at the real file',
  ENAMETOOLONG: 'the path is too long; check the path given with --config or FUGUE_CONFIG',
  EISDIR: 'it is a directory; name a .json or .yaml file',
  ENXIO: 'it is a socket (or a device with nothing behind it), not a regular file; name a .json or .yaml file',
};

/** Read `path` as UTF-8 text under the rules above. Throws FileProblem. */
export function readConfigText(path: string): string {
  let fd: number;
  try {
    // O_NOCTTY: a terminal device named by mistake never becomes our controlling tty.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new FileProblem('open', `cannot open it (${code}): ${OPEN_HINTS[code] ?? (err as Error).message}`, code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new FileProblem('not_regular', `it is ${kindOf(st)}, not a regular file; fugue-server reads config only from regular files (a symbolic link to one is fine)`);
    }
    if (st.size > MAX_CONFIG_FILE_BYTES) {
      throw new FileProblem('too_large', `it is ${st.size} bytes, more than the ${MAX_CONFIG_FILE_BYTES} bytes a config file may have; is it the right file?`);
    }
    // Read until EOF, never more than the limit + 1 byte (to notice a file that
    // grew after fstat, or one like /proc's that reports size 0).
    const limit = MAX_CONFIG_FILE_BYTES + 1;
    let buf = Buffer.allocUnsafe(Math.min(limit, Math.max(st.size + 1, 4096)));
    let filled = 0;
    for (;;) {
      if (filled === buf.length) {
        if (buf.length === limit) throw new FileProblem('too_large', `it holds more than the ${MAX_CONFIG_FILE_BYTES} bytes a config file may have; is it the right file?`);
        const bigger = Buffer.allocUnsafe(Math.min(limit, buf.length * 2));
        buf.copy(bigger, 0, 0, filled);
        buf = bigger;
      }
      let n: number;
      try {
        n = readSync(fd, buf, filled, buf.length - filled, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw new FileProblem('open', `cannot read it (${code}): ${OPEN_HINTS[code] ?? (err as Error).message}`, code);
      }
      if (n === 0) return decode(buf.subarray(0, filled));
      filled += n;
    }
  } finally {
    closeSync(fd);
  }
}

function decode(bytes: Buffer): string {
  if (!isUtf8(bytes)) {
    const at = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, at);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = at - (before.lastIndexOf(0x0a) + 1) + 1;
    throw new FileProblem('not_utf8', `it is not valid UTF-8 (byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} at line ${line}, byte ${column} of the line, offset ${at}); save it as UTF-8`);
  }
  const text = bytes.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Offset of the first byte that is not part of a valid UTF-8 sequence (RFC 3629). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    let n: number;
    let min: number;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; } else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; } else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; } else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}
