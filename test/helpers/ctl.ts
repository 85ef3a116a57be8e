// Run the real fuguectl binary in a child process, with its output collected.

import { spawn } from 'node:child_process';
import { childEnv } from './child-env.js';
import { CTL_BIN } from './spawn-server.js';

/** How a fuguectl run ended. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A fuguectl run in progress. */
export interface Ctl {
  /** Output so far, while it runs. */
  readonly live: { stdout: string; stderr: string };
  readonly pid: number | undefined;
  done: Promise<Run>;
}

/** Options of {@link startCtl}. */
export interface CtlOptions {
  /** Working directory. Default: this process's. */
  cwd?: string;
}

/** Start fuguectl with `args`, with only PATH, HOME=/tmp and `env` in its environment. */
export function startCtl(args: string[], env: NodeJS.ProcessEnv = {}, options: CtlOptions = {}): Ctl {
  const c = spawn(process.execPath, [CTL_BIN, ...args], { env: childEnv({ PATH: process.env.PATH, HOME: '/tmp', ...env }), timeout: 60_000, ...(options.cwd ? { cwd: options.cwd } : {}) });
  const live = { stdout: '', stderr: '' };
  c.stdout.on('data', (d: Buffer) => (live.stdout += d.toString()));
  c.stderr.on('data', (d: Buffer) => (live.stderr += d.toString()));
  const done = new Promise<Run>((resolve) => c.on('close', (code) => resolve({ code, ...live })));
  return { live, pid: c.pid, done };
}

/** Run fuguectl with `args` to the end. */
export function ctl(args: string[], env: NodeJS.ProcessEnv = {}, options: CtlOptions = {}): Promise<Run> {
  return startCtl(args, env, options).done;
}

/** A stack trace line: fuguectl never prints one. */
export const NO_STACK = /^\s+at /m;
