// Run the real fugue-server CLI in a child process, with its logs parsed.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { childEnv } from './child-env.js';
import { waitFor } from './wait-for.js';
import type { LogLine } from './log-sink.js';

export const SERVER_BIN = fileURLToPath(new URL('../../src/cli/fugue-server.js', import.meta.url));
export const CTL_BIN = fileURLToPath(new URL('../../src/cli/fuguectl.js', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  logs: LogLine[];
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitLog(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Wait for 'server listening'; returns the sidecar port when logged. */
  ready(timeoutMs?: number): Promise<void>;
}

export interface SpawnServerOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  cwd?: string;
  /** Run through this command first, e.g. ['prlimit', '--nofile=64:64', '--']. */
  wrapper?: string[];
  /** A descriptor to use as the server's stdout instead of a pipe read here (then `logs` stays empty). */
  stdoutFd?: number;
}

/** Spawn fugue-server; killed (SIGKILL) at teardown if still running. */
export function spawnServer(t: ExecutionContext, options: SpawnServerOptions = {}): Spawned {
  const spawnOpts: SpawnOptions = {
    env: childEnv({ PATH: process.env.PATH, HOME: process.env.HOME, FUGUE_HTTP_PORT: '0', ...options.env }),
    stdio: ['ignore', options.stdoutFd ?? 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  };
  const argv = [process.execPath, SERVER_BIN, ...(options.args ?? [])];
  const [cmd, ...rest] = [...(options.wrapper ?? []), ...argv] as [string, ...string[]];
  const child = spawn(cmd, rest, spawnOpts);
  const socketPath = options.env?.FUGUE_SOCKET_PATH;
  const level = options.env?.FUGUE_LOG_LEVEL ?? 'info';
  const logsReadable = options.stdoutFd === undefined && ['info', 'debug', 'trace'].includes(level);
  const s: Spawned = {
    child,
    logs: [],
    stdout: '',
    stderr: '',
    // 'close', not 'exit': it comes after stdout and stderr are fully read.
    exited: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
    // Generous deadlines: a server starts in about 0.5 s, but CI runs two test
    // files at once on two cores, each starting several servers.
    waitLog: (pred, what, timeoutMs = 20_000) =>
      waitFor(() => s.logs.find(pred), { what: `${what} (stderr: ${s.stderr.slice(0, 500)})`, timeoutMs }),
    ready: async (timeoutMs = 30_000) => {
      await Promise.race([
        // The log line; where there is none to read (a log level above info, stdout
        // elsewhere), the pid file the server writes once it serves. Not both: the
        // pid file comes before the lines logged at start reach stdout (they are
        // written in batches), and a test reading those lines needs them there.
        waitFor(
          () => (logsReadable ? s.logs.some((l) => l.msg === 'server listening') : socketPath !== undefined && pidFileNames(socketPath, child.pid)),
          { what: `server listening (stderr: ${s.stderr.slice(0, 500)})`, timeoutMs },
        ),
        s.exited.then((e) => { throw new Error(`server exited early (${e.code ?? e.signal}): ${s.stderr}`); }),
      ]);
    },
  };
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    s.stdout += d.toString();
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      if (p.trim() === '') continue;
      try {
        s.logs.push(JSON.parse(p) as LogLine);
      } catch {
        // --print-config and friends print non-log text
      }
    }
  });
  child.stderr?.on('data', (d: Buffer) => (s.stderr += d.toString()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return s;
}

function pidFileNames(socketPath: string, pid: number | undefined): boolean {
  try {
    return readFileSync(`${socketPath}.pid`, 'utf8').trim() === String(pid);
  } catch {
    return false;
  }
}

export function httpPortOf(s: Spawned): number | undefined {
  return s.logs.find((l) => l.msg === 'http sidecar listening')?.port as number | undefined;
}
