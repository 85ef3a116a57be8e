// The extension API: message routing through a table of handlers keyed by
// message type, and what a handler can see and do. fugue's features
// (sessions, panes, agents) live outside src/server as `Feature`s that
// register their types here; the connection pump only looks types up, so
// adding a message type never changes the pump. docs/architecture.md walks
// through adding a feature.

import {
  describe,
  errorMessage,
  ERROR_TEXT,
  PROTOCOL_VERSION,
  replyPayload,
  ReplyShape,
  type ClientMessage,
  type Frameable,
  type MessageId,
  type ServerMessage,
} from '../protocol/index.js';
import type { CloseReason } from './instrumentation.js';

/** A snapshot of one connected client. */
export interface ClientInfo {
  /** Unique for the server's lifetime (the `client_id` of `connected`). */
  id: number;
  /** The `client_name` it sent with `connect`, if any. */
  name: string | undefined;
  /** When it connected, in Unix milliseconds. */
  connectedAt: number;
  /** Whether it completed `connect`. */
  handshaken: boolean;
  /** Messages received from it and sent to it (replies and unsolicited ones). */
  messagesIn: number;
  messagesOut: number;
  /** Bytes read from it and written to it. */
  bytesIn: number;
  bytesOut: number;
}

/**
 * Per-connection state a feature keeps: created by `init` on first use
 * (`client.state(key)`), dropped when the connection closes, after `dispose`
 * (if given) has run. Make one key per kind of state, once, with
 * `connectionState()`.
 */
export interface ConnectionState<T> {
  init(client: ClientHandle): T;
  dispose?(value: T, client: ClientHandle): void;
}

/** A key for per-connection state (see ConnectionState). */
export function connectionState<T>(init: (client: ClientHandle) => T, dispose?: (value: T, client: ClientHandle) => void): ConnectionState<T> {
  return Object.freeze(dispose === undefined ? { init } : { init, dispose });
}

/** One connected client, as handlers see it: its own (`ctx.client`) or another (`ctx.server.client(id)`). */
export interface ClientHandle {
  readonly id: number;
  readonly name: string | undefined;
  readonly handshaken: boolean;
  /** False once the connection is closing or closed: `send` then returns false. */
  readonly open: boolean;
  /** A snapshot of its counters. */
  info(): ClientInfo;
  /**
   * Send an unsolicited message (no `id`). It is queued behind everything
   * already owed to the client (replies stay in request order), written with
   * them, bounded by the same `limits.maxBufferedBytes` (a client that does not
   * read is disconnected as a slow consumer), and instrumented like a reply
   * (counted by type, spanned, logged at debug). Returns false, sending
   * nothing, to a client that is not handshaken or no longer open. Throws
   * what JSON.stringify throws.
   */
  send(message: ServerMessage): boolean;
  /** This connection's value for `key`, created on first use. */
  state<T>(key: ConnectionState<T>): T;
}

/** What handlers can see of the server. */
export interface ServerView {
  readonly version: string;
  uptimeMs(): number;
  clientCount(): number;
  isDraining(): boolean;
  /** A snapshot of every connected client, in connection order. */
  clients(): ClientInfo[];
  /** The connected client with this id, if any. */
  client(id: number): ClientHandle | undefined;
}

/** What a handler can see of and do to its connection. */
export interface HandlerContext {
  readonly clientId: number;
  readonly clientName: string | undefined;
  readonly handshaken: boolean;
  /** This connection, for unsolicited messages and per-connection state. */
  readonly client: ClientHandle;
  readonly server: ServerView;
  /** Mark the handshake complete (the `connect` handler does). */
  completeHandshake(clientName: string | undefined): void;
  /** Close the connection cleanly once the reply (if any) has been written. */
  closeAfterReply(reason: CloseReason): void;
}

/**
 * A handler's reply: a plain object with a string `type` (the pump adds the
 * request's `id`; the object itself is never changed), or `undefined` for none.
 */
export type HandlerResult = ServerMessage | undefined;

/** How one message type is handled: optional checks, the handler, an optional serialiser. */
export interface MessageHandler {
  /** Allowed before the `connect` handshake. Default: false. */
  readonly beforeHandshake?: boolean;
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

/** A fugue feature: registers its message types and handlers. */
export interface Feature {
  /** Shown in errors (a type registered twice). */
  readonly name: string;
  register(table: HandlerTable): void;
}

/** Message type -> handler. */
export class HandlerTable {
  #handlers = new Map<string, MessageHandler>();
  #owners = new Map<string, string>();
  #registering: string | undefined;

  /** Register the handler for `type`; registering a type twice is a programming error. */
  register(type: string, handler: MessageHandler): this {
    const owner = this.#owners.get(type);
    if (owner !== undefined) {
      throw new Error(`a handler for message type "${type}" is already registered${owner === '' ? '' : ` (by feature "${owner}")`}; choose another type name`);
    }
    this.#handlers.set(type, handler);
    this.#owners.set(type, this.#registering ?? '');
    return this;
  }

  /** Let `feature` register its types. */
  use(feature: Feature): this {
    this.#registering = feature.name;
    try {
      feature.register(this);
    } finally {
      this.#registering = undefined;
    }
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

// One per table (the version is the table's server's): `connected`, sent
// once per connection, has its fixed fields serialised once.
function connectHandler(): MessageHandler {
  let shape: ReplyShape | undefined;
  let shapeVersion: unknown;
  return {
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
      ctx.completeHandshake(msg.client_name as string | undefined);
      return { type: 'connected', protocol_version: PROTOCOL_VERSION, server_version: ctx.server.version, client_id: ctx.clientId };
    },
    serialize(reply, id) {
      if (reply.type !== 'connected') return replyPayload(reply, id);
      if (shape === undefined || shapeVersion !== reply.server_version) {
        shapeVersion = reply.server_version;
        shape = new ReplyShape('connected', 'client_id', { protocol_version: reply.protocol_version, server_version: reply.server_version });
      }
      return shape.payload(id, reply.client_id);
    },
  };
}
const ping: MessageHandler = {
  handle: () => ({ type: 'pong' }),
};

// The hottest reply: framed as precomputed bytes around the JSON of `data`.
const ECHO = new ReplyShape('echo', 'data');

const echo: MessageHandler = {
  validate: (msg) => (Object.hasOwn(msg, 'data') ? undefined : 'missing field "data"; echo sends back {"data": <any JSON value>}'),
  handle: (msg) => ({ type: 'echo', data: msg.data }),
  serialize: (reply, id) => ECHO.payload(id, reply.data),
};

const status: MessageHandler = {
  handle: (_msg, ctx) => ({
    type: 'status',
    server_version: ctx.server.version,
    uptime_ms: Math.floor(ctx.server.uptimeMs()),
    clients: ctx.server.clientCount(),
    draining: ctx.server.isDraining(),
    pid: process.pid, // for fuguectl stop, which checks it against /proc before signalling
  }),
};

const detach: MessageHandler = {
  handle(_msg, ctx) {
    ctx.closeAfterReply('detach');
    return undefined;
  },
};

/** Protocol v1's own types: connect, ping, echo, status, detach. */
export const coreFeature: Feature = {
  name: 'core',
  register(table) {
    table.register('connect', connectHandler()).register('ping', ping).register('echo', echo).register('status', status).register('detach', detach);
  },
};

/** A table with the protocol v1 core types; add features with `.use(feature)`. */
export function coreHandlers(): HandlerTable {
  return new HandlerTable().use(coreFeature);
}
