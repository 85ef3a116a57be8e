// fuguectl: commands, options and exit codes (docs/operations.md, "fuguectl").
// A command is one entry in COMMANDS: its usage line, its own flags, its
// default timeout and its run(); parsing, --help text and validation all
// come from the table, so adding a command touches nothing else.

import { setTimeout as sleep } from 'node:timers/promises';
import { FugueClient } from '../client/client.js';
import { httpGet } from '../client/http-probe.js';
import { serverText } from '../client/replies.js';
// paths.js, not load.js: fuguectl starts faster without convict and yaml.
import { defaultSocketPath, tryExpandPath } from '../config/paths.js';
import { FugueError, isFugueError } from '../errors.js';
import type { ServerMessage } from '../protocol/index.js';
import { VERSION } from '../version.js';

/**
 * fuguectl's exit codes. Stable: scripts may rely on them. docs/operations.md
 * lists the same table (test/docs.test.ts keeps the two in step).
 */
export const CTL_EXIT = {
  /** Success; for `health`, healthy. */
  OK: 0,
  /** `health` only: not healthy (Docker HEALTHCHECK's "unhealthy"), whatever the reason. */
  UNHEALTHY: 1,
  /** Bad command line. */
  USAGE: 64,
  /** No server answers at the socket (ENOENT, ECONNREFUSED, EACCES), or it closed the connection before replying. */
  UNAVAILABLE: 69,
  /** A bug in fuguectl (an unexpected exception). */
  SOFTWARE: 70,
  /** No reply within --timeout; for `wait-ready`, no server answered before the deadline. */
  TIMEOUT: 75,
  /** The server replied with an error, refused the handshake, or sent a malformed or oversized reply. */
  PROTOCOL: 76,
} as const;

/** What each exit code means, in the words of docs/operations.md. */
export const CTL_EXIT_MEANING: Record<number, string> = {
  [CTL_EXIT.OK]: 'success; for `health`: healthy',
  [CTL_EXIT.UNHEALTHY]: '`health`: not healthy (not ready, draining, or no answer)',
  [CTL_EXIT.USAGE]: 'bad command line',
  [CTL_EXIT.UNAVAILABLE]: 'no server answers at the socket, or it closed the connection before replying',
  [CTL_EXIT.SOFTWARE]: 'internal error in fuguectl',
  [CTL_EXIT.TIMEOUT]: 'no reply within `--timeout`; `wait-ready`: the deadline passed',
  [CTL_EXIT.PROTOCOL]: 'the server replied with an error, refused the handshake, or sent a malformed or oversized reply',
};

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
  /** --timeout, or the command's default, in ms. */
  timeoutMs: number;
  args: string[];
  /** The command's own flags that were given: name -> value (`true` for a flag without a value). */
  flags: Map<string, string | true>;
  io: CtlIo;
}

interface FlagSpec {
  /** Name of the value in the usage text; absent for a flag without a value. */
  value?: string;
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

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_TIMEOUT_MS = 2_147_483_647; // setTimeout's limit

class UsageError extends Error {}

async function withClient<T>(ctx: CtlContext, use: (c: FugueClient) => Promise<T>): Promise<T> {
  const client = await FugueClient.connect(ctx.socketPath, { clientName: 'fuguectl', timeoutMs: ctx.timeoutMs });
  try {
    return await use(client);
  } finally {
    await client.detach().catch(() => client.destroy());
  }
}

/** An `error` reply to a request becomes exit 76 with the server's code and message. */
function serverError(ctx: CtlContext, reply: ServerMessage): FugueError | undefined {
  if (reply.type !== 'error') return undefined;
  return new FugueError('FUGUE_ERR_CLIENT_PROTOCOL', `the server at ${ctx.socketPath} replied ${serverText(reply.code, 64)}: ${serverText(reply.message, 500)}`);
}

// JSON.stringify throws on data nested thousands of levels deep, which no
// fugue-server sends (it cannot encode it either): a malformed reply, exit 76.
function printable(ctx: CtlContext, value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new FugueError('FUGUE_ERR_CLIENT_BAD_REPLY', `malformed reply from ${ctx.socketPath}: it cannot be printed as JSON (${(err as Error).message}); check that ${ctx.socketPath} is a fugue-server socket`);
  }
}

function statusFields(reply: ServerMessage): Record<string, unknown> {
  const { type: _type, id: _id, ...fields } = reply;
  return fields;
}

// Retried by wait-ready: the server is not (yet) there, or is busy or restarting.
function retryable(err: unknown): boolean {
  if (!isFugueError(err)) return false;
  if (err.code === 'FUGUE_ERR_CLIENT_CLOSED') return true;
  return err.code === 'FUGUE_ERR_CLIENT_CONNECT' && (err.details.errno === 'ENOENT' || err.details.errno === 'ECONNREFUSED');
}

/** Every fuguectl command. Add a command here and nowhere else. */
export const COMMANDS: Record<string, CommandSpec> = {
  ping: {
    summary: 'check that the server answers (prints the round-trip time)',
    maxArgs: 0,
    run: (ctx) => withClient(ctx, async (c) => {
      const t0 = performance.now();
      const reply = await c.ping();
      const err = serverError(ctx, reply);
      if (err) throw err;
      ctx.io.stdout(`pong from ${ctx.socketPath} in ${(performance.now() - t0).toFixed(2)} ms\n`);
      return CTL_EXIT.OK;
    }),
  },
  status: {
    summary: 'print the server\'s status (version, uptime, clients, draining)',
    maxArgs: 0,
    flags: { json: { doc: 'print one JSON object: the status reply\'s fields (server_version, uptime_ms, clients, draining, and any a newer server adds)' } },
    run: (ctx) => withClient(ctx, async (c) => {
      const reply = await c.status();
      const err = serverError(ctx, reply);
      if (err) throw err;
      const fields = statusFields(reply);
      if (ctx.flags.has('json')) {
        ctx.io.stdout(`${printable(ctx, fields)}\n`);
      } else {
        ctx.io.stdout([
          `fugue-server at ${ctx.socketPath}`,
          `  version   ${serverText(fields.server_version, 100)}`,
          `  uptime    ${((fields.uptime_ms as number) / 1000).toFixed(1)} s`,
          `  clients   ${String(fields.clients)}`,
          `  draining  ${fields.draining ? 'yes (shutting down)' : 'no'}`,
          '',
        ].join('\n'));
      }
      return CTL_EXIT.OK;
    }),
  },
  echo: {
    summary: 'send TEXT and print what comes back',
    args: 'TEXT...',
    minArgs: 1,
    run: (ctx) => withClient(ctx, async (c) => {
      const reply = await c.echo(ctx.args.join(' '));
      const err = serverError(ctx, reply);
      if (err) throw err;
      ctx.io.stdout(`${typeof reply.data === 'string' ? reply.data : printable(ctx, reply.data)}\n`);
      return CTL_EXIT.OK;
    }),
  },
  clients: {
    summary: 'list the connected clients, one per line (id, name, connected since, messages and bytes in/out), like tmux list-clients',
    maxArgs: 0,
    flags: { json: { doc: 'print one JSON array: the clients reply\'s entries (client_id, name, connected_at, handshaken, messages_in, messages_out, bytes_in, bytes_out)' } },
    run: (ctx) => withClient(ctx, async (c) => {
      const reply = await c.listClients();
      if (reply.type === 'error' && reply.code === 'unknown_type') {
        throw new FugueError('FUGUE_ERR_CLIENT_PROTOCOL', `the server at ${ctx.socketPath} does not support list_clients (it predates the clients feature); upgrade fugue-server`);
      }
      const err = serverError(ctx, reply);
      if (err) throw err;
      const clients = reply.clients as Array<Record<string, unknown>>;
      if (ctx.flags.has('json')) {
        ctx.io.stdout(`${printable(ctx, clients)}\n`);
      } else {
        for (const e of clients) {
          const name = e.name === null ? '-' : JSON.stringify(serverText(e.name, 64));
          const state = e.handshaken ? '' : ' (handshake pending)';
          ctx.io.stdout(`${String(e.client_id)}: ${name} since ${serverText(e.connected_at, 40)}${state}, messages ${String(e.messages_in)} in / ${String(e.messages_out)} out, bytes ${String(e.bytes_in)} in / ${String(e.bytes_out)} out\n`);
        }
      }
      return CTL_EXIT.OK;
    }),
  },
  'wait-ready': {
    summary: 'wait until the server answers (retrying while there is no socket or nothing listens), up to --timeout',
    maxArgs: 0,
    defaultTimeoutMs: 30_000,
    async run(ctx) {
      const t0 = performance.now();
      const deadline = t0 + ctx.timeoutMs;
      let waitingSaid = false;
      let last: FugueError | undefined;
      for (let pause = 25; ; pause = Math.min(pause * 2, 250)) {
        const left = Math.floor(deadline - performance.now());
        if (left <= 0) break;
        try {
          const reply = await withClient({ ...ctx, timeoutMs: left }, (c) => c.ping());
          const err = serverError(ctx, reply);
          if (err) throw err;
          ctx.io.stdout(`ready: ${ctx.socketPath} answered after ${Math.round(performance.now() - t0)} ms\n`);
          return CTL_EXIT.OK;
        } catch (err) {
          if (!retryable(err)) {
            // The deadline hit while connecting or waiting for the reply: report it as the deadline.
            if (isFugueError(err) && err.code === 'FUGUE_ERR_CLIENT_TIMEOUT') break;
            throw err;
          }
          last = err as FugueError;
          if (!waitingSaid) {
            ctx.io.stderr(`fuguectl: waiting for ${ctx.socketPath} (up to ${ctx.timeoutMs} ms): ${last.message}\n`);
            waitingSaid = true;
          }
        }
        await sleep(Math.max(0, Math.min(pause, deadline - performance.now())));
      }
      throw new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no server answered at ${ctx.socketPath} within ${ctx.timeoutMs} ms${last ? ` (last: ${last.message})` : ''}; check that fugue-server is starting (its logs, systemctl status) or raise --timeout`);
    },
  },
  health: {
    summary: 'exit 0 if the server is healthy and ready, 1 if not (for a container HEALTHCHECK; no curl needed)',
    maxArgs: 0,
    flags: { http: { value: 'URL', doc: 'ask the HTTP sidecar instead of the socket: GET URL/readyz (a URL with a path other than / is used as given, e.g. .../healthz for liveness only)' } },
    async run(ctx) {
      const http = ctx.flags.get('http');
      try {
        if (typeof http === 'string') {
          const url = probeUrl(http);
          const res = await httpGet(url, { timeoutMs: ctx.timeoutMs });
          if (res.status === 200) {
            ctx.io.stdout(`healthy: ${url.href} answered 200\n`);
            return CTL_EXIT.OK;
          }
          ctx.io.stderr(`fuguectl: unhealthy: ${url.href} answered ${res.status}: ${JSON.stringify(res.body.slice(0, 300))}\n`);
          return CTL_EXIT.UNHEALTHY;
        }
        const reply = await withClient(ctx, (c) => c.status());
        const err = serverError(ctx, reply);
        if (err) throw err;
        if (reply.draining === true) {
          ctx.io.stderr(`fuguectl: unhealthy: the server at ${ctx.socketPath} is draining (shutting down)\n`);
          return CTL_EXIT.UNHEALTHY;
        }
        ctx.io.stdout(`healthy: ${ctx.socketPath} answers (server ${serverText(reply.server_version, 100)}, ${String(reply.clients)} clients)\n`);
        return CTL_EXIT.OK;
      } catch (err) {
        if (err instanceof UsageError) throw err;
        if (!isFugueError(err)) throw err;
        ctx.io.stderr(`fuguectl: unhealthy: ${err.message}\n`);
        return CTL_EXIT.UNHEALTHY;
      }
    },
  },
};

function probeUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--http needs an http:// or https:// URL such as http://127.0.0.1:9464, got ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--http needs an http:// or https:// URL such as http://127.0.0.1:9464, got ${JSON.stringify(raw.slice(0, 200))}`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/readyz';
  return url;
}

const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  socket: { value: 'PATH', doc: 'socket to use. Default: $FUGUE_SOCKET_PATH, else the server\'s default path' },
  timeout: { value: 'MS', doc: 'give up after MS milliseconds (decimal digits). Default: 5000; wait-ready: 30000' },
  help: { doc: 'print this text' },
  version: { doc: 'print fuguectl\'s version' },
};

/** The usage text, made from COMMANDS and the global flags. */
export function usageText(): string {
  const cmds = Object.entries(COMMANDS).map(([name, c]) => {
    const flags = Object.entries(c.flags ?? {}).map(([f, s]) => ` [--${f}${s.value ? ` ${s.value}` : ''}]`).join('');
    const head = `  ${name}${c.args ? ` ${c.args}` : ''}${flags}`;
    const flagDocs = Object.entries(c.flags ?? {}).map(([f, s]) => `\n      --${f}${s.value ? ` ${s.value}` : ''}: ${s.doc}`).join('');
    return `${head}\n      ${c.summary}${flagDocs}`;
  });
  const opts = Object.entries(GLOBAL_FLAGS).map(([f, s]) => `  --${f}${s.value ? ` ${s.value}` : ''}`.padEnd(18) + s.doc);
  const exits = Object.entries(CTL_EXIT_MEANING).map(([code, meaning]) => `  ${code.padStart(2)}  ${meaning.replace(/`/g, '')}`);
  return [
    'Usage: fuguectl [--socket PATH] [--timeout MS] <command> [args]',
    '',
    'Commands:',
    ...cmds,
    '',
    'Options (before or after the command):',
    ...opts,
    '',
    'There is no reload command: reload the configuration with SIGHUP',
    '(systemctl reload fugue-server, or kill -HUP "$(cat SOCKET.pid)"); see docs/operations.md.',
    '',
    'Exit codes:',
    ...exits,
    '',
  ].join('\n');
}

interface Parsed {
  command: string | undefined;
  args: string[];
  flags: Map<string, string | true>;
}

function parse(argv: readonly string[]): Parsed {
  // Which flags take a value, across the global ones and every command's.
  const known = new Map<string, FlagSpec>(Object.entries(GLOBAL_FLAGS));
  for (const c of Object.values(COMMANDS)) for (const [f, s] of Object.entries(c.flags ?? {})) known.set(f, s);
  const out: Parsed = { command: undefined, args: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-h') {
      out.flags.set('help', true);
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      if (out.command === undefined) out.command = a;
      else out.args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq === -1 ? undefined : eq);
    const spec = known.get(name);
    if (spec === undefined) throw new UsageError(`unknown option --${JSON.stringify(name.slice(0, 64)).slice(1, -1)}`);
    if (spec.value === undefined) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      out.flags.set(name, true);
    } else {
      const value = eq !== -1 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value (${spec.value})`);
      out.flags.set(name, value);
    }
  }
  return out;
}

function timeoutOf(raw: string | true | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= MAX_TIMEOUT_MS)) throw new UsageError(`--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${JSON.stringify(String(raw).slice(0, 64))}`);
  return n;
}

/**
 * Run fuguectl with `argv` (after the program name); resolves with the exit
 * code. Messages go to `io`; it never throws and never prints a stack trace.
 */
export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  try {
    const p = parse(argv);
    if (p.flags.has('help')) {
      io.stdout(usageText());
      return CTL_EXIT.OK;
    }
    if (p.flags.has('version')) {
      io.stdout(`${VERSION}\n`);
      return CTL_EXIT.OK;
    }
    if (p.command === undefined) throw new UsageError('missing command');
    const cmd = Object.prototype.hasOwnProperty.call(COMMANDS, p.command) ? COMMANDS[p.command] : undefined;
    if (cmd === undefined) throw new UsageError(`unknown command ${JSON.stringify(p.command.slice(0, 64))}; commands: ${Object.keys(COMMANDS).join(', ')}`);
    for (const name of p.flags.keys()) {
      if (!(name in GLOBAL_FLAGS) && !Object.prototype.hasOwnProperty.call(cmd.flags ?? {}, name)) throw new UsageError(`--${name} is not an option of ${p.command}`);
    }
    if (p.args.length < (cmd.minArgs ?? 0)) throw new UsageError(`${p.command} needs ${cmd.args ?? 'arguments'}`);
    if (cmd.maxArgs !== undefined && p.args.length > cmd.maxArgs) throw new UsageError(`${p.command} takes no argument ${JSON.stringify(p.args[cmd.maxArgs]?.slice(0, 64))}`);
    const timeoutMs = timeoutOf(p.flags.get('timeout'), cmd.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS);
    const rawSocket = p.flags.get('socket');
    const raw = typeof rawSocket === 'string' ? rawSocket : io.env.FUGUE_SOCKET_PATH || defaultSocketPath(io.env);
    const expanded = tryExpandPath(raw, io.env, io.cwd);
    if (expanded.unset !== undefined) throw new UsageError(`the socket path ${JSON.stringify(raw.slice(0, 200))} uses $${expanded.unset}, which is not set; set it or give --socket in full`);
    const flags = new Map([...p.flags].filter(([name]) => !(name in GLOBAL_FLAGS)));
    return await cmd.run({ socketPath: expanded.path, timeoutMs, args: p.args, flags, io });
  } catch (err) {
    if (err instanceof UsageError) {
      // With no command at all, the whole usage text helps more than a pointer to it.
      io.stderr(argv.length === 0 ? `fuguectl: ${err.message}\n${usageText()}` : `fuguectl: ${err.message}; run fuguectl --help for usage\n`);
      return CTL_EXIT.USAGE;
    }
    if (isFugueError(err)) {
      io.stderr(`fuguectl: ${err.message.replace(/\n/g, ' ')}\n`);
      return err.exitCode;
    }
    io.stderr(`fuguectl: internal error: ${String(err).replace(/\n/g, ' ').slice(0, 500)}; please report it\n`);
    return CTL_EXIT.SOFTWARE;
  }
}
