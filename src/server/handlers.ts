// Message routing: a table of handlers keyed by message type. Features register
// their types here; the connection pump (connection.ts) only looks types up, so
// adding a message type never changes the pump.

import {
  describe,
  errorMessage,
  ERROR_TEXT,
  PROTOCOL_VERSION,
  ReplyShape,
  type ClientMessage,
  type ServerMessage,
  type ShapedReply,
} from '../protocol/index.js';
import type { CloseReason } from './instrumentation.js';

/** What a handler can see of and do to its connection. */
export interface HandlerContext {
  readonly clientId: number;
  readonly clientName: string | undefined;
  readonly handshaken: boolean;
  /** Mark the handshake complete. */
  completeHandshake(clientName: string | undefined): void;
  /** Close the connection cleanly once the reply (if any) has been written. */
  closeAfterReply(reason: CloseReason): void;
  readonly server: ServerView;
}

/** What handlers can see of the server. */
export interface ServerView {
  readonly version: string;
  uptimeMs(): number;
  clientCount(): number;
  isDraining(): boolean;
}

/**
 * The reply, or `undefined` for none. The pump sets `id` to the request's. A
 * reply literal that already has an `id` field (`{ type, id: msg.id, ... }`,
 * as the core handlers do) keeps its shape when the pump sets it: a little
 * cheaper than adding the property, and `id` is then serialised right after
 * `type`. A hot reply of one fixed shape can be a ShapedReply (see `echo`).
 */
export type HandlerResult = ServerMessage | ShapedReply | undefined;

export interface MessageHandler {
  /** Allowed before the `connect` handshake. Default: false. */
  readonly beforeHandshake?: boolean;
  /** Check the message's own fields; return what is wrong (becomes `bad_message`) or undefined. */
  validate?(message: ClientMessage): string | undefined;
  /**
   * Handle the message. May return a promise: replies still go out in request
   * order, and later messages on the same connection wait for it.
   */
  handle(message: ClientMessage, ctx: HandlerContext): HandlerResult | Promise<HandlerResult>;
}

export class HandlerTable {
  #handlers = new Map<string, MessageHandler>();

  /** Register the handler for `type`; registering a type twice is a programming error. */
  register(type: string, handler: MessageHandler): this {
    if (this.#handlers.has(type)) throw new Error(`a handler for message type "${type}" is already registered`);
    this.#handlers.set(type, handler);
    return this;
  }

  get(type: string): MessageHandler | undefined {
    return this.#handlers.get(type);
  }

  has(type: string): boolean {
    return this.#handlers.has(type);
  }

  /** Registered types, in registration order (used in `unknown_type` errors and as metric labels). */
  types(): string[] {
    return [...this.#handlers.keys()];
  }
}

// --- protocol v1 core handlers ---

const connect: MessageHandler = {
  beforeHandshake: true,
  validate(msg) {
    if (typeof msg.protocol_version !== 'number' || !Number.isInteger(msg.protocol_version)) {
      return msg.protocol_version === undefined
        ? 'missing field "protocol_version"; send {"type":"connect","protocol_version":1}'
        : `field "protocol_version" must be an integer, got ${describe(msg.protocol_version)}`;
    }
    if (msg.client_name !== undefined && typeof msg.client_name !== 'string') {
      return `field "client_name" must be a string, got ${describe(msg.client_name)}`;
    }
    return undefined;
  },
  handle(msg, ctx) {
    if (ctx.handshaken) return errorMessage('already_connected', ERROR_TEXT.already_connected);
    const version = msg.protocol_version as number;
    if (version !== PROTOCOL_VERSION) {
      ctx.closeAfterReply('protocol_error');
      const upgrade = version > PROTOCOL_VERSION ? 'upgrade fugue-server, or use a client that speaks protocol 1' : 'upgrade the client to one that speaks protocol 1';
      return errorMessage('unsupported_version', `protocol_version ${version} is not supported; this server (${ctx.server.version}) speaks protocol 1: ${upgrade}`, undefined, {
        supported: [PROTOCOL_VERSION],
        server_version: ctx.server.version,
      });
    }
    const name = msg.client_name as string | undefined;
    ctx.completeHandshake(name);
    return connectedShape(ctx.server.version).reply(ctx.clientId);
  },
};

// `connected` is sent once per connection: its fixed fields are serialised once
// per server version (one per process, in practice).
let connected: ReplyShape | undefined;
function connectedShape(serverVersion: string): ReplyShape {
  if (connected === undefined || connected.fixed.server_version !== serverVersion) {
    connected = new ReplyShape('connected', 'client_id', { protocol_version: PROTOCOL_VERSION, server_version: serverVersion });
  }
  return connected;
}

const ping: MessageHandler = {
  handle: (msg) => ({ type: 'pong', id: msg.id }),
};

// The hottest reply: serialised as precomputed text around the JSON of `data`.
const ECHO = new ReplyShape('echo', 'data');

const echo: MessageHandler = {
  validate: (msg) => (Object.hasOwn(msg, 'data') ? undefined : 'missing field "data"; echo sends back {"data": <any JSON value>}'),
  handle: (msg) => ECHO.reply(msg.data),
};

const status: MessageHandler = {
  handle: (msg, ctx) => ({
    type: 'status',
    id: msg.id,
    server_version: ctx.server.version,
    uptime_ms: Math.floor(ctx.server.uptimeMs()),
    clients: ctx.server.clientCount(),
    draining: ctx.server.isDraining(),
  }),
};

const detach: MessageHandler = {
  handle(_msg, ctx) {
    ctx.closeAfterReply('detach');
    return undefined;
  },
};

/** A table with the protocol v1 types: connect, ping, echo, status, detach. */
export function coreHandlers(): HandlerTable {
  return new HandlerTable().register('connect', connect).register('ping', ping).register('echo', echo).register('status', status).register('detach', detach);
}
