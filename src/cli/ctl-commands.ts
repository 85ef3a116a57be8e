// Every fuguectl command: its usage line, its own flags, its default timeout
// and its run(). Parsing, --help and validation all come from this table, so
// adding a command touches nothing else. A command with heavy imports loads
// them inside its run(), so that the others start as fast as `node` itself.

import { setTimeout as sleep } from 'node:timers/promises';
import { jsonText, quotedText, serverText } from '../client/replies.js';
import { FugueError, isFugueError } from '../errors.js';
import type { ServerMessage } from '../protocol/index.js';
import { CTL_EXIT } from './ctl-exit.js';
import { monotonicMs, printable, throwIfError, UsageError, withClient, type CommandSpec } from './ctl-command.js';

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

/** Every fuguectl command. Add a command here and nowhere else. */
export const COMMANDS: Record<string, CommandSpec> = {
  ping: {
    summary: 'check that the server answers (prints the round-trip time)',
    maxArgs: 0,
    run: (ctx) => withClient(ctx, async (c) => {
      const t0 = monotonicMs();
      const reply = await c.ping();
      throwIfError(ctx, reply);
      ctx.io.stdout(`pong from ${ctx.socketPath} in ${(monotonicMs() - t0).toFixed(2)} ms\n`);
      return CTL_EXIT.OK;
    }),
  },
  status: {
    summary: 'print the server\'s status (version, uptime, clients, draining)',
    maxArgs: 0,
    flags: { json: { doc: 'print one JSON object: the status reply\'s fields (server_version, uptime_ms, clients, draining, pid, and any a newer server adds)' } },
    run: (ctx) => withClient(ctx, async (c) => {
      const reply = await c.status();
      throwIfError(ctx, reply);
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
      throwIfError(ctx, reply);
      // The server chose what comes back: escaped like any text it sends.
      ctx.io.stdout(`${typeof reply.data === 'string' ? serverText(reply.data, Number.MAX_SAFE_INTEGER) : jsonText(printable(ctx, reply.data))}\n`);
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
      throwIfError(ctx, reply);
      const clients = reply.clients as Array<Record<string, unknown>>;
      if (ctx.flags.has('json')) {
        ctx.io.stdout(`${printable(ctx, clients)}\n`);
      } else {
        for (const e of clients) {
          const name = e.name === null ? '-' : quotedText(e.name, 64);
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
      const t0 = monotonicMs();
      const deadline = t0 + ctx.timeoutMs;
      let waitingSaid = false;
      let last: FugueError | undefined;
      for (let pause = 25; ; pause = Math.min(pause * 2, 250)) {
        const left = Math.floor(deadline - monotonicMs());
        if (left <= 0) break;
        try {
          const reply = await withClient({ ...ctx, timeoutMs: left }, (c) => c.ping());
          throwIfError(ctx, reply);
          ctx.io.stdout(`ready: ${ctx.socketPath} answered after ${Math.round(monotonicMs() - t0)} ms\n`);
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
        await sleep(Math.max(0, Math.min(pause, deadline - monotonicMs())));
      }
      throw new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no server answered at ${ctx.socketPath} within ${ctx.timeoutMs} ms${last ? ` (last: ${last.message})` : ''}; check that fugue-server is starting (its logs, systemctl status) or raise --timeout`);
    },
  },
  stop: {
    summary: 'tell the server behind the socket to drain and exit (one SIGTERM, once the kernel shows that the pid it gives holds the socket), and wait for it to exit, up to --timeout',
    maxArgs: 0,
    defaultTimeoutMs: 60_000,
    run: async (ctx) => (await import('./ctl-stop.js')).stopServer(ctx),
  },
  events: {
    summary: 'print the server\'s events as they happen (clients connecting and leaving, reloads, the drain, limits enforced), one line each, until Ctrl-C (exit 0) or until the server shuts down (exit 3)',
    maxArgs: 0,
    flags: {
      kind: { value: 'KIND[,KIND...]', doc: 'only these kinds: client.connected, client.left, drain.started, config.reloaded, config.refused, limit.enforced' },
      json: { doc: 'print each event as received, one JSON object per line (NDJSON)' },
    },
    run: async (ctx) => (await import('./ctl-events.js')).watchEvents(ctx),
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
          // node:http and node:https are loaded only for --http.
          const { httpGet } = await import('../client/http-probe.js');
          const res = await httpGet(url, { timeoutMs: ctx.timeoutMs });
          if (res.status === 200) {
            ctx.io.stdout(`healthy: ${url.href} answered 200\n`);
            return CTL_EXIT.OK;
          }
          ctx.io.stderr(`fuguectl: unhealthy: ${url.href} answered ${res.status}: ${quotedText(res.body, 300)}\n`);
          return CTL_EXIT.UNHEALTHY;
        }
        const reply = await withClient(ctx, (c) => c.status());
        throwIfError(ctx, reply);
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
