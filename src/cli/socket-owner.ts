// Which process serves a Unix socket path, as far as the kernel can tell, for
// `fuguectl stop` (issue 18 point 4). Whatever answers at the path says its own
// pid in the `status` reply, but it may lie (or be something else than
// fugue-server): fuguectl must never signal a process that does not serve the
// path. Linux only: it reads /proc.
//
// Process P serves PATH when both hold:
// - /proc/net/unix (this network namespace) lists a listening stream socket
//   (flag __SO_ACCEPTCON, state SS_UNCONNECTED) bound at PATH (spelled the same
//   once symbolic links in its directory are resolved), or at the name
//   fugue-server binds before it hard-links the socket to PATH (".<P in base
//   36>~" in PATH's directory: src/server/socket-path.ts); in that second case
//   PATH.pid, written by the server next to its socket, must name P too;
// - one of P's descriptors is that socket: the link /proc/P/fd/N reads
//   "socket:[I]", where I is the inode /proc/net/unix gave.
// A process that got the same pid later is told apart by its start time
// (/proc/P/stat, field 22, in clock ticks since boot).
//
// What this cannot tell: which of two fugue-servers whose sockets share one
// directory answered (the fake would have to be in that directory, which
// fugue-server requires to be its user's alone: only that user or root can put
// a server there, and either could signal the other anyway).

import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { SO_ACCEPTCON, unixSockets } from '../host.js';


/** The result of {@link checkSocketOwner}. */
export type OwnerCheck = { ok: true; startTime: string } | { ok: false; why: string };

/** What the caller knows of the path, to name the listener: the path itself, fugue-server's bind name for `pid`, and the pid in PATH.pid. */
export interface OwnerClaim {
  socketPath: string;
  pid: number;
  bindName: string;
  pidFilePid: number | undefined;
}

/** P's start time (clock ticks since boot), or undefined when there is no such process or it has exited (a zombie). */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

// The same file name, in the same directory once symbolic links are resolved
// (the server may have been given /var/run/fugue/... and fuguectl /run/fugue/...).
function sameName(bound: string, wanted: string): boolean {
  if (bound === wanted) return true;
  if (basename(bound) !== basename(wanted)) return false;
  try {
    return realpathSync(dirname(bound)) === realpathSync(dirname(wanted));
  } catch {
    return false;
  }
}

/** Inodes of the listening stream sockets /proc/net/unix shows bound at one of `names`, with the name each matched. Throws when /proc/net/unix cannot be read. */
function listeners(names: readonly string[]): Map<string, string> {
  const byInode = new Map<string, string>();
  for (const s of unixSockets()) {
    // A listening stream socket, not yet connected (SS_UNCONNECTED), with a name.
    if ((s.flags & SO_ACCEPTCON) === 0 || s.type !== 1 || s.state !== 1 || s.path === undefined) continue;
    const bound = s.path;
    const name = names.find((n) => sameName(bound, n));
    if (name !== undefined) byInode.set(String(s.inode), name);
  }
  return byInode;
}

/**
 * Whether process `claim.pid` holds the listening socket served at
 * `claim.socketPath` (see above). Never throws: every reason it cannot be
 * shown is a refusal, with what to do.
 */
export function checkSocketOwner(claim: OwnerClaim): OwnerCheck {
  const { socketPath, pid } = claim;
  const startTime = processStartTime(pid);
  if (startTime === undefined) return { ok: false, why: `there is no process ${pid} here (or it has just exited): the server may run in another PID namespace, such as another container; stop it from there` };
  let bound: Map<string, string>;
  try {
    bound = listeners([socketPath, claim.bindName]);
  } catch (err) {
    return { ok: false, why: `fuguectl cannot read /proc/net/unix (${(err as NodeJS.ErrnoException).code ?? 'error'}) to check which process listens there; fuguectl stop needs Linux's /proc` };
  }
  if (bound.size === 0) return { ok: false, why: `no process in this network namespace listens at ${socketPath} (/proc/net/unix lists none): the server may run in another container or network namespace; stop it from there` };
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, why: code === 'EACCES' || code === 'EPERM'
      ? `fuguectl may not read the open files of pid ${pid} (${code}): it runs as another user; run fuguectl stop as that user, or as root`
      : `fuguectl cannot read the open files of pid ${pid} (${code})` };
  }
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    const name = inode === undefined ? undefined : bound.get(inode);
    if (name === undefined) continue;
    if (name === claim.bindName && claim.pidFilePid !== pid) {
      return { ok: false, why: `pid ${pid} listens in ${socketPath}'s directory, but ${socketPath}.pid ${claim.pidFilePid === undefined ? 'is missing' : `names pid ${claim.pidFilePid}`}, so fuguectl cannot tell that pid ${pid} serves ${socketPath}` };
    }
    // The process we looked at is the one that started then (its pid was not reused meanwhile).
    if (processStartTime(pid) !== startTime) break;
    return { ok: true, startTime };
  }
  return { ok: false, why: `pid ${pid} does not hold the socket listening at ${socketPath}: whatever answered there gave a pid that is not its own, or runs in another PID namespace. See who listens: ss -xlp` };
}
