// Sending AF_UNIX SOCK_DGRAM datagrams from the main process, which Node cannot
// do by itself (node:dgram is UDP only). Why this way (docs/deployment.md,
// "The notify mechanism"): koffi is an N-API FFI whose prebuilt binaries ship
// inside registry packages, so one `npm ci` serves Node 20 and 24 alike and no
// install script has to run; calling libc's socket()/sendto() directly lets us
// give the exact address length an abstract name needs (a wrapper that always
// passes sizeof(struct sockaddr_un) reaches a different abstract name), and
// the datagram leaves from the main pid, which is what systemd's default
// NotifyAccess=main checks (a systemd-notify child would be ignored).
//
// The native module is loaded only when a sender is opened, i.e. only when
// NOTIFY_SOCKET is set: a missing or broken binary never breaks an import.

import { createRequire } from 'node:module';
import { constants as osConstants, endianness } from 'node:os';
import type { NotifyAddress } from './notify-env.js';

/** One open datagram socket that sends to a fixed address. */
export interface DatagramSender {
  /** What sends, for logs (e.g. "koffi 3.3.4: libc sendto()"). */
  readonly mechanism: string;
  /** Send one datagram now, without blocking. Throws an Error with an errno `code` when the kernel refuses it. */
  send(payload: Buffer): void;
  /** Close the socket; idempotent. */
  close(): void;
}

/** `code` of the error a factory throws when its native package is not installed. */
export const NATIVE_MISSING = 'FUGUE_NOTIFY_NATIVE_MISSING';
/** `code` of the error a factory throws when its native package is installed but does not load. */
export const NATIVE_UNLOADABLE = 'FUGUE_NOTIFY_NATIVE_UNLOADABLE';

/** Opens a sender for an address; throws when the mechanism is unavailable. */
export type SenderFactory = (address: NotifyAddress) => DatagramSender;

// Linux values (x86-64, arm, arm64, riscv64, ppc64; not mips, where SOCK_DGRAM is 1).
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;

/** The few koffi calls used here (typed locally so a koffi upgrade cannot change our types). */
interface KoffiLike {
  version?: string;
  load(path: string | null): { func(declaration: string): (...args: unknown[]) => unknown };
  errno(): number;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** An Error shaped like Node's system errors: `code` is the errno name. */
export function errnoError(errno: number, syscall: string, address: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES.get(errno) ?? `E${errno}`;
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${address} failed: ${code}`);
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  return err;
}

/**
 * struct sockaddr_un with the length libsystemd uses: for a path, the family,
 * the path and its NUL; for an abstract name, the family, a NUL and the name
 * with no padding (the kernel compares abstract names over the given length).
 */
export function encodeSockaddrUn(address: NotifyAddress): Buffer {
  const name = address.kind === 'path' ? Buffer.from(`${address.path}\0`) : Buffer.concat([Buffer.from([0]), Buffer.from(address.name)]);
  const buf = Buffer.alloc(2 + name.length);
  if (endianness() === 'LE') buf.writeUInt16LE(AF_UNIX, 0);
  else buf.writeUInt16BE(AF_UNIX, 0);
  name.copy(buf, 2);
  return buf;
}

/**
 * The default factory: libc's socket() and sendto() through koffi.
 * `specifier` is the package to load (tests pass a missing one to exercise
 * the "not installed" path).
 */
export function koffiSenderFactory(specifier = 'koffi'): SenderFactory {
  return (address) => {
    if (process.platform !== 'linux') throw new Error(`AF_UNIX datagram notification is implemented for Linux only (this is ${process.platform})`);
    let koffi: KoffiLike;
    try {
      koffi = createRequire(import.meta.url)(specifier) as KoffiLike;
    } catch (err) {
      // Tell "not installed" (npm --omit=optional) from "installed but its binary does not load here".
      const e = err as NodeJS.ErrnoException;
      const missing = e.code === 'MODULE_NOT_FOUND' && e.message.startsWith(`Cannot find module '${specifier}'`);
      throw Object.assign(new Error(`cannot load ${specifier}: ${e.message.split('\n')[0]}`, { cause: err }), { code: missing ? NATIVE_MISSING : NATIVE_UNLOADABLE });
    }
    // dlopen(NULL): the symbols Node itself links against, so glibc and musl alike.
    const libc = koffi.load(null);
    const socket = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
    const sendto = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)') as (
      fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
    const close = libc.func('int close(int fd)') as (fd: number) => number;

    const sockaddr = encodeSockaddrUn(address);
    // CLOEXEC: the sessions' shells and programs must not inherit the fd.
    let fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw errnoError(koffi.errno(), 'socket', address.text);
    return {
      mechanism: `koffi ${koffi.version ?? '(unknown version)'}: libc sendto()`,
      send(payload) {
        if (fd < 0) throw errnoError(osConstants.errno.EBADF, 'sendto', address.text);
        // MSG_DONTWAIT: a manager that stopped reading must not stall the event loop.
        const n = sendto(fd, payload, payload.length, MSG_DONTWAIT | MSG_NOSIGNAL, sockaddr, sockaddr.length);
        if (n < 0) throw errnoError(koffi.errno(), 'sendto', address.text);
        if (n !== payload.length) throw errnoError(osConstants.errno.EIO, 'sendto', address.text);
      },
      close() {
        if (fd >= 0) close(fd);
        fd = -1;
      },
    };
  };
}
