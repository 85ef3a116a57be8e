// Message routing: a table of handlers keyed by message type, and what a
// handler sees. Features register their types through their scope
// (features.ts); the connection pump only looks types up, so adding a
// message type never changes the pump. `connect` and `detach` are not in the
// table: they drive the connection itself (handshake.ts).

import { ReplyShape, type ClientMessage, type Frameable, type MessageId, type ServerMessage } from '../protocol/index.js';
import type { ClientHandle } from './client.js';
import type { ServerView } from './view.js';

/** What a handler can see of and do to its connection: the client object and the server's view. */
export interface HandlerContext {
  /** The client that sent the message. */
  readonly client: ClientHandle;
  readonly server: ServerView;
}

/**
 * A handler's reply: a plain object with a string `type` (the dispatch step
 * adds the request's `id`; the object itself is never changed), or
 * `undefined` for none.
 */
export type HandlerResult = ServerMessage | undefined;

/** How one message type is handled: optional checks, the handler, an optional serialiser. */
export interface MessageHandler {
  /** Check the message's own fields; return what is wrong (becomes `bad_message`) or undefined. */
  validate?(message: ClientMessage): string | undefined;
  /**
   * Handle the message. May return a promise: replies still go out in request
   * order, and later messages on the same connection wait for it. A throw or a
   * rejection becomes an `internal` error reply, logged.
   */
  handle(message: ClientMessage, ctx: HandlerContext): HandlerResult | Promise<HandlerResult>;
  /**
   * Optional fast path: frame this handler's replies yourself (a ReplyShape,
   * say). It must give exactly what `replyPayload(reply, id)` gives for the
   * same reply; the default is `replyPayload`. Most handlers never need it.
   */
  serialize?(reply: ServerMessage, id: MessageId | undefined): Frameable;
}

/** Types the connection itself handles (handshake.ts): never in a table. */
export const CONTROL_TYPES: readonly string[] = ['connect', 'detach'];

/** Message type -> handler, and which feature registered it. */
export class HandlerTable {
  #handlers = new Map<string, MessageHandler>();
  #owners = new Map<string, string>();

  /** Register the handler for `type` on behalf of `owner` (a feature's name); a type registered twice is a programming error. */
  register(type: string, handler: MessageHandler, owner: string): void {
    if (typeof type !== 'string' || type === '') throw new TypeError(`feature "${owner}": a message type must be a non-empty string, got ${JSON.stringify(type)}`);
    if (CONTROL_TYPES.includes(type)) throw new Error(`feature "${owner}": message type "${type}" belongs to the protocol's handshake; choose another type name`);
    const existing = this.#owners.get(type);
    if (existing !== undefined) throw new Error(`feature "${owner}": a handler for message type "${type}" is already registered by feature "${existing}"; choose another type name`);
    this.#handlers.set(type, handler);
    this.#owners.set(type, owner);
  }

  get(type: string): MessageHandler | undefined {
    return this.#handlers.get(type);
  }

  /** Every type a client may send, in registration order after the control types (used in `unknown_type` errors and as metric labels). */
  types(): string[] {
    return [...CONTROL_TYPES, ...this.#handlers.keys()];
  }
}

// --- protocol v1's request types, besides connect and detach ---

// The hottest reply: framed as precomputed bytes around the JSON of `data`.
const ECHO = new ReplyShape('echo', 'data');

/** ping, echo and status (docs/protocol.md): registered first by every server. */
export const CORE_HANDLERS: ReadonlyArray<readonly [string, MessageHandler]> = [
  ['ping', { handle: () => ({ type: 'pong' }) }],
  [
    'echo',
    {
      validate: (msg) => (Object.hasOwn(msg, 'data') ? undefined : 'missing field "data"; echo sends back {"data": <any JSON value>}'),
      handle: (msg) => ({ type: 'echo', data: msg.data }),
      serialize: (reply, id) => ECHO.payload(id, reply.data),
    },
  ],
  [
    'status',
    {
      handle: (_msg, ctx) => ({
        type: 'status',
        server_version: ctx.server.version,
        uptime_ms: Math.floor(ctx.server.uptimeMs()),
        clients: ctx.server.clientCount(),
        draining: ctx.server.isDraining(),
        pid: process.pid, // for fuguectl stop, which checks it against /proc before signalling
      }),
    },
  ],
];

/** Types of the messages the protocol itself sends (docs/protocol.md, "Server -> client"). */
export const CORE_SENT_TYPES: readonly string[] = ['connected', 'pong', 'echo', 'status', 'error', 'shutdown'];
