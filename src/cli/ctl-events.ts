// `fuguectl events`: the server's events (the `events` feature,
// docs/protocol.md), one line each as they happen, until interrupted (Ctrl-C,
// SIGTERM, or the reader of its output going away: exit 0) or until the
// server shuts down (it says so, then closes: exit 3). A connection lost
// without a `shutdown` is exit 69. Human lines escape everything a client
// chose; --json prints each message as received, one JSON object per line.
// Loaded only by `events`.

import { FugueClient } from '../client/client.js';
import { quotedText, serverText } from '../client/replies.js';
import { FugueError } from '../errors.js';
import type { ServerMessage } from '../protocol/index.js';
import { CTL_EXIT } from './ctl-exit.js';
import { serverError, UsageError, type CtlContext } from './ctl-command.js';

/** The kinds `--kind` accepts (the events feature's, as docs/protocol.md lists them). */
export const EVENT_KIND_NAMES = ['client.connected', 'client.left', 'drain.started', 'config.reloaded', 'config.refused', 'limit.enforced'];

/** `--kind` values, comma-separated or repeated; undefined for all kinds. */
function kindsOf(ctx: CtlContext): string[] | undefined {
  const raw = ctx.flags.get('kind');
  if (raw === undefined) return undefined;
  const kinds = String(raw).split(',').map((k) => k.trim()).filter((k) => k !== '');
  const unknown = kinds.find((k) => !EVENT_KIND_NAMES.includes(k));
  if (unknown !== undefined || kinds.length === 0) throw new UsageError(`--kind takes event kinds (${EVENT_KIND_NAMES.join(', ')}), comma-separated, got ${quotedText(unknown ?? raw, 64)}`);
  return kinds;
}

/** One event as a line: time, sequence number, kind, then its fields (every text escaped). */
export function eventLine(msg: ServerMessage): string {
  if (msg.type === 'events.missed') return `missed ${serverText(msg.missed, 20)} events: this watcher fell behind and did not read them in time`;
  const { type: _type, seq, kind, time, ...fields } = msg;
  const parts = Object.entries(fields).map(([k, v]) => `${serverText(k, 40)}=${typeof v === 'string' ? quotedText(v, 200) : serverText(JSON.stringify(v) ?? 'null', 400)}`);
  return [serverText(time, 40), `#${serverText(seq, 20)}`, serverText(kind, 40), ...parts].join(' ');
}

/** Run `fuguectl events`; resolves with the exit code, or throws a FugueError. */
export async function watchEvents(ctx: CtlContext): Promise<number> {
  const kinds = kindsOf(ctx);
  const json = ctx.flags.has('json');
  const client = await FugueClient.connect(ctx.socketPath, { clientName: 'fuguectl events', timeoutMs: ctx.timeoutMs });
  let shutdown: ServerMessage | undefined;
  let stopped = false;
  const ended = new Promise<number>((resolve) => {
    const stop = () => {
      stopped = true;
      client.destroy();
      resolve(CTL_EXIT.OK);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Output read by nobody any more (`fuguectl events | head -3`): done.
    process.stdout.once('error', stop);
    client.on('message', (msg: ServerMessage) => {
      if (msg.type === 'event' || msg.type === 'events.missed') ctx.io.stdout(`${json ? JSON.stringify(msg) : eventLine(msg)}\n`);
      else if (msg.type === 'shutdown') {
        shutdown = msg;
        ctx.io.stderr(`fuguectl: the server at ${ctx.socketPath} is shutting down (${serverText(msg.reason, 200)}); no more events\n`);
        void client.close();
      }
    });
    void client.closed().then(() => {
      if (stopped) resolve(CTL_EXIT.OK);
      else resolve(shutdown !== undefined ? CTL_EXIT.ENDED : CTL_EXIT.UNAVAILABLE);
    });
  });
  const reply = await client.request({ type: 'events.subscribe', ...(kinds !== undefined ? { kinds } : {}) }).catch((err: unknown) => {
    client.destroy();
    throw err;
  });
  if (reply.type === 'error' && reply.code === 'unknown_type') {
    client.destroy();
    throw new FugueError('FUGUE_ERR_CLIENT_PROTOCOL', `the server at ${ctx.socketPath} does not support events (it predates the events feature); upgrade fugue-server`);
  }
  const err = serverError(ctx, reply);
  if (err) {
    client.destroy();
    throw err;
  }
  ctx.io.stderr(`fuguectl: watching ${kinds === undefined ? 'every event' : kinds.join(', ')} at ${ctx.socketPath} (next #${serverText(reply.seq, 20)}); Ctrl-C to stop\n`);
  const code = await ended;
  if (code === CTL_EXIT.UNAVAILABLE && !stopped) throw new FugueError('FUGUE_ERR_CLIENT_CLOSED', `the server at ${ctx.socketPath} closed the connection without saying it was shutting down; no more events`);
  return code;
}
