// Facts about this process that only the host knows (Linux /proc). A leaf:
// imports nothing local, so the server (its fd budget) and observability
// (process_open_fds) count the same way.

import { fstatSync, readdirSync, readFileSync, statSync } from 'node:fs';

/**
 * Open fds of this process (Linux). Linux 6.2+ reports the count as the size
 * of /proc/self/fd (one stat, ~20 µs); older kernels report 0 there, and the
 * directory is listed instead (~9 ms at 10,000 connections). Undefined where
 * /proc is not available.
 */
export function openFdCount(): number | undefined {
  try {
    const size = statSync('/proc/self/fd').size;
    // Minus 1: the listing's own fd is open while it runs.
    return size > 0 ? size : readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

/** One line of /proc/net/unix: a Unix socket of this network namespace. */
export interface UnixSocketEntry {
  /** The sockfs inode (what /proc/PID/fd/N reads as socket:[inode]). */
  inode: number;
  /** Its flags, type (1 = stream) and state (1 = unconnected), as the kernel gives them. */
  flags: number;
  type: number;
  state: number;
  /** The name given to bind(2) (the file may since have been renamed or removed), or undefined when unbound. */
  path: string | undefined;
}

/** Linux's __SO_ACCEPTCON in /proc/net/unix's Flags: the socket listens. */
export const SO_ACCEPTCON = 0x10000;

// Num RefCount Protocol Flags Type St Inode [Path]; the path may hold spaces.
const UNIX_LINE = /^\s*[0-9a-fA-F]+: [0-9a-fA-F]+ [0-9a-fA-F]+ ([0-9a-fA-F]+) ([0-9a-fA-F]+) ([0-9a-fA-F]+) +(\d+)(?: (.+))?$/;

/** The Unix sockets of this network namespace (Linux). Throws when /proc/net/unix cannot be read. */
export function unixSockets(): UnixSocketEntry[] {
  const out: UnixSocketEntry[] = [];
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n')) {
    const m = UNIX_LINE.exec(line);
    if (m === null) continue;
    out.push({ flags: Number.parseInt(m[1] ?? '', 16), type: Number.parseInt(m[2] ?? '', 16), state: Number.parseInt(m[3] ?? '', 16), inode: Number(m[4]), path: m[5] });
  }
  return out;
}

/**
 * The path a Unix socket was bound at, from its descriptor (Linux: the
 * socket's inode, looked up in /proc/net/unix). The kernel keeps the name
 * given to bind(2), even if the file was since renamed or removed. Undefined
 * when the descriptor is not a bound Unix socket or /proc is unavailable.
 */
export function boundUnixPath(fd: number): string | undefined {
  try {
    const ino = fstatSync(fd).ino;
    return unixSockets().find((s) => s.inode === ino)?.path;
  } catch {
    return undefined;
  }
}
