// `fuguectl stop` (issue 18 point 4): the server behind the socket drains and
// exits, and fuguectl waits for it. The server's `status` reply gives its pid;
// socket-owner.ts checks with the kernel that this pid holds the socket
// listening at the path before anything is signalled, so a lying peer can never
// make fuguectl signal another process. Then one SIGTERM (a second one would
// force the stop), and a wait for that process (not a later one with its pid)
// to exit, bounded by --timeout. Loaded only by `stop`: fuguectl's other
// commands do not pay for it.

import { setTimeout as sleep } from 'node:timers/promises';
import { FugueError } from '../errors.js';
import { readPidFile, tempSocketPath } from '../server/socket-path.js';
import { CTL_EXIT } from './ctl-exit.js';
import { monotonicMs, throwIfError, withClient, type CtlContext } from './ctl-command.js';
import { checkSocketOwner, processStartTime } from './socket-owner.js';

function refused(ctx: CtlContext, why: string): FugueError {
  return new FugueError('FUGUE_ERR_CLIENT_STOP_REFUSED', `not stopping the server at ${ctx.socketPath}: ${why}. No signal was sent`, { details: { socketPath: ctx.socketPath } });
}

/** Run `fuguectl stop`; resolves with the exit code, or throws a FugueError. */
export async function stopServer(ctx: CtlContext): Promise<number> {
  const t0 = monotonicMs();
  const reply = await withClient(ctx, (c) => c.status());
  throwIfError(ctx, reply);
  const pid = reply.pid;
  if (pid === undefined) {
    throw refused(ctx, `it does not say its pid (a fugue-server older than fuguectl stop); stop it with kill -TERM "$(cat ${ctx.socketPath}.pid)"`);
  }
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 1) throw refused(ctx, `it gave ${JSON.stringify(pid).slice(0, 40)} as its pid, which is not a process id`);
  if (pid === 1) throw refused(ctx, 'it says it is pid 1 (init, or a container\'s main process), which fuguectl never signals; stop it through what started it (systemctl stop, docker stop...)');
  if (pid === process.pid) throw refused(ctx, 'it gave fuguectl\'s own pid');
  const owner = checkSocketOwner({ socketPath: ctx.socketPath, pid, bindName: tempSocketPath(ctx.socketPath, pid), pidFilePid: readPidFile(ctx.socketPath) });
  if (!owner.ok) throw refused(ctx, owner.why);
  // A second SIGTERM would cut a drain short: a server already draining is only waited for.
  if (reply.draining === true) {
    ctx.io.stderr(`fuguectl: the server at ${ctx.socketPath} (pid ${pid}) is already draining; waiting up to ${ctx.timeoutMs} ms for it to exit\n`);
  } else {
    if (processStartTime(pid) !== owner.startTime) throw refused(ctx, `pid ${pid} exited while fuguectl was checking it`);
    try {
      process.kill(pid, 'SIGTERM');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ESRCH') throw refused(ctx, `pid ${pid} exited while fuguectl was checking it`);
      throw refused(ctx, `fuguectl may not signal pid ${pid} (${code}): it runs as another user; run fuguectl stop as that user, or as root`);
    }
    ctx.io.stderr(`fuguectl: sent SIGTERM to the server at ${ctx.socketPath} (pid ${pid}); waiting up to ${ctx.timeoutMs} ms for it to drain and exit\n`);
  }
  const deadline = t0 + ctx.timeoutMs;
  for (let pause = 20; processStartTime(pid) === owner.startTime; pause = Math.min(pause * 2, 200)) {
    const left = deadline - monotonicMs();
    if (left <= 0) {
      throw new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `the server at ${ctx.socketPath} (pid ${pid}) is still running ${ctx.timeoutMs} ms after fuguectl stop: it is draining (up to shutdown.timeoutMs, then up to 7 s to flush spans and logs). Wait for it (raise --timeout next time), or stop it at once with a second kill -TERM ${pid}, which cuts the clients still connected`, { details: { socketPath: ctx.socketPath, pid } });
    }
    await sleep(Math.min(pause, left));
  }
  ctx.io.stdout(`stopped: the server at ${ctx.socketPath} (pid ${pid}) exited after ${Math.round(monotonicMs() - t0)} ms\n`);
  return CTL_EXIT.OK;
}
