// What a fuguectl command is (its spec in the command table) and what its
// run() gets, with the helpers commands share: a connection that is always
// detached, an `error` reply turned into exit 76, JSON printing that cannot
// throw past the runner.

import { FugueClient } from '../client/client.js';
import { serverText } from '../client/replies.js';
import { FugueError } from '../errors.js';
import type { ServerMessage } from '../protocol/index.js';

/**
 * Milliseconds on a monotonic clock. Not `performance.now()`: the first use of
 * the global `performance` loads node:perf_hooks, about 4 ms of a ping on Node 24.
 */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Where fuguectl writes, and the environment it reads (injected for tests). */
export interface CtlIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** What a command's run() gets. */
export interface CtlContext {
  socketPath: string;
  /** Where socketPath came from, for messages: "--socket", "env FUGUE_SOCKET_PATH", "config file PATH, line N" or "default". */
  socketFrom: string;
  /** --timeout, or the command's default, in ms. */
  timeoutMs: number;
  args: string[];
  /** The command's own flags that were given: name -> value (`true` for a flag without a value). */
  flags: Map<string, string | true>;
  io: CtlIo;
}

/** One option: global, or a command's own. */
export interface FlagSpec {
  /** Name of the value in the usage text; absent for a flag without a value. */
  value?: string;
  /** The option may be given more than once (its values are kept in order). */
  repeatable?: boolean;
  doc: string;
}

/** One fuguectl command. */
export interface CommandSpec {
  /** One line for the usage text. */
  summary: string;
  /** Positional arguments in the usage text, e.g. "TEXT...". */
  args?: string;
  minArgs?: number;
  maxArgs?: number;
  flags?: Record<string, FlagSpec>;
  /** Default of --timeout for this command, in ms. Default: 5000. */
  defaultTimeoutMs?: number;
  run(ctx: CtlContext): Promise<number>;
}

/** Default of --timeout, in ms. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** A bad command line: exit 64, with a pointer to --help. */
export class UsageError extends Error {}

/** Run `use` on a connection to the server, detaching (or destroying it) afterwards whatever happens. */
export async function withClient<T>(ctx: CtlContext, use: (c: FugueClient) => Promise<T>): Promise<T> {
  const client = await FugueClient.connect(ctx.socketPath, { clientName: 'fuguectl', timeoutMs: ctx.timeoutMs });
  try {
    return await use(client);
  } finally {
    await client.detach().catch(() => client.destroy());
  }
}

/** An `error` reply to a request becomes exit 76 with the server's code and message. */
export function serverError(ctx: CtlContext, reply: ServerMessage): FugueError | undefined {
  if (reply.type !== 'error') return undefined;
  return new FugueError('FUGUE_ERR_CLIENT_PROTOCOL', `the server at ${ctx.socketPath} replied ${serverText(reply.code, 64)}: ${serverText(reply.message, 500)}`);
}

/** Throw serverError's FugueError when `reply` is an error reply. */
export function throwIfError(ctx: CtlContext, reply: ServerMessage): void {
  const err = serverError(ctx, reply);
  if (err) throw err;
}

// JSON.stringify throws on data nested thousands of levels deep, which no
// fugue-server sends (it cannot encode it either): a malformed reply, exit 76.
/** `value` as one line of JSON, or FUGUE_ERR_CLIENT_BAD_REPLY. */
export function printable(ctx: CtlContext, value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new FugueError('FUGUE_ERR_CLIENT_BAD_REPLY', `malformed reply from ${ctx.socketPath}: it cannot be printed as JSON (${(err as Error).message}); check that ${ctx.socketPath} is a fugue-server socket`);
  }
}
