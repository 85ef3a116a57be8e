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

/**
 * The path a Unix socket was bound at, from its descriptor (Linux: the
 * socket's inode, looked up in /proc/net/unix). The kernel keeps the name
 * given to bind(2), even if the file was since renamed or removed. Undefined
 * when the descriptor is not a bound Unix socket or /proc is unavailable.
 */
export function boundUnixPath(fd: number): string | undefined {
  let ino: number;
  let table: string;
  try {
    ino = fstatSync(fd).ino;
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return undefined;
  }
  // Num RefCount Protocol Flags Type St Inode [Path]; the path may hold spaces.
  const inode = ` ${ino} `;
  for (const line of table.split('\n')) {
    const at = line.indexOf(inode, 40);
    if (at === -1) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[6] === String(ino)) return fields.length > 7 ? line.slice(line.indexOf(fields[7] as string, at)) : undefined;
  }
  return undefined;
}
