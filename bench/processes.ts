// Child processes of the harness: every one is tracked so that no server,
// load generator or log reader outlives the harness, whatever way it exits;
// and CPU pinning, so that the server has a core to itself.

import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';

const children = new Set<ChildProcess>();

/** Register a child so that killAll() (run on every exit path) reaches it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** SIGKILL every tracked child still running. */
export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Kill the children when the harness exits or is interrupted (exit 130 on a signal). */
export function killChildrenOnExit(): void {
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Keep the last few KB of a stream (for error messages) while draining it so the child never blocks. */
export function tail(stream: NodeJS.ReadableStream | null, max = 8192): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-max);
  });
  return () => text;
}

// CPU pinning: the server on core 0; the load generator, the harness (with its
// OTLP sink) and the log reader on core 1.
let pinned = false;

/** Whether taskset works here (2+ cores); if so, pin the harness itself to core 1. */
export function detectPinning(): boolean {
  if (cpus().length < 2) return false;
  const r = spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
  pinned = r.status === 0;
  if (pinned) {
    // The harness (incl. the OTLP sink) shares core 1 with the loadgen, not the server's core.
    spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  }
  return pinned;
}

export const isPinned = (): boolean => pinned;

/** `cmd args` run on `core` when pinning is available, else unchanged. */
export function pinnedCommand(core: number, cmd: string, args: string[]): [string, string[]] {
  return pinned ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
}
