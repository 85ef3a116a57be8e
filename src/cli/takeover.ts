// `fugue-server --takeover` (docs/operations.md, "Upgrades"): who is there to
// take over from. Whatever answers at the socket path must be a fugue-server
// that says its pid in `status`, and the kernel must show that pid holding the
// socket (socket-owner.ts, as for `fuguectl stop`): the successor signals it,
// and must never signal another process. Nothing answering is no error: the
// successor then simply starts.

import { FugueClient } from '../client/client.js';
import { isFugueError, takeoverRefused } from '../errors.js';
import { readPidFile, tempSocketPath } from '../server/socket-path.js';
import { checkSocketOwner, processStartTime } from './socket-owner.js';

/** The server to take over from: its pid, and its start time (a later process with the same pid is not it). */
export interface Predecessor {
  pid: number;
  startTime: string;
}

/** The fugue-server serving `socketPath`, or undefined when nothing answers there. Throws FUGUE_ERR_TAKEOVER_REFUSED. */
export async function findPredecessor(socketPath: string, timeoutMs = 5000): Promise<Predecessor | undefined> {
  let client: FugueClient;
  try {
    client = await FugueClient.connect(socketPath, { clientName: 'fugue-server --takeover', timeoutMs });
  } catch (err) {
    const errno = isFugueError(err) ? err.details.errno : undefined;
    if (errno === 'ENOENT' || errno === 'ECONNREFUSED') return undefined; // nobody to take over from
    throw takeoverRefused(socketPath, `what is there does not answer as a fugue-server (${(err as Error).message})`);
  }
  let status;
  try {
    status = await client.status();
  } catch (err) {
    throw takeoverRefused(socketPath, `what is there does not answer status as a fugue-server (${(err as Error).message})`);
  } finally {
    await client.detach().catch(() => client.destroy());
  }
  const pid = status.pid;
  if (status.type !== 'status' || typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) {
    throw takeoverRefused(socketPath, 'the server there does not give a pid it could be told to drain by (a fugue-server older than --takeover?)');
  }
  if (status.draining === true) throw takeoverRefused(socketPath, `the server there (pid ${pid}) is already draining; start this one without --takeover once it has gone`);
  const owner = checkSocketOwner({ socketPath, pid, bindName: tempSocketPath(socketPath, pid), pidFilePid: readPidFile(socketPath) });
  if (!owner.ok) throw takeoverRefused(socketPath, owner.why);
  return { pid, startTime: owner.startTime };
}

/** Tell the predecessor to drain (one SIGTERM), if it is still the same process. Returns false when it was already gone. */
export function releasePredecessor(p: Predecessor): boolean {
  if (processStartTime(p.pid) !== p.startTime) return false;
  try {
    process.kill(p.pid, 'SIGTERM');
    return true;
  } catch {
    return false;
  }
}
