// Features: how fugue's own features (sessions, panes, agents) and anyone's
// extend a server (docs/architecture.md, "Adding a feature"). Like a fastify
// plugin, each feature registers into a scope that belongs to one server
// instance: its state lives in what `register` creates, never in module
// globals, so two servers in one process share nothing. The scope has hooks
// for a connection completing `connect` and closing, a drain starting and the
// server closing, and a feature declares the names it adds (error codes, the
// types it sends, its streams) so that metric labels stay bounded.

import { ERROR_CODES, PreparedMessage, type ServerMessage } from '../protocol/index.js';
import { CHANNEL_NAMES, channels, subscribeTo, type ChannelKey, type ChannelPayloads } from './channels.js';
import type { ClientHandle } from './client.js';
import type { CloseEvent, DrainEvent } from './events.js';
import { CORE_SENT_TYPES, type HandlerTable, type MessageHandler } from './handlers.js';
import { Stream, type StreamOptions } from './stream.js';
import type { Catalog, ServerView } from './view.js';

/** A fugue feature: the names it adds, and its registration. */
export interface Feature {
  /** Shown in errors and in `feature_failed` notices. */
  readonly name: string;
  /** Error codes its replies may carry besides the protocol's (metric label values; any other is counted as `undeclared`). Name them `<feature>.<what>`. */
  readonly errorCodes?: readonly string[];
  /** Types of the messages it sends, replies and pushes (metric label values; any other is counted as `undeclared`). */
  readonly sends?: readonly string[];
  /** Names of the streams it makes (`scope.stream`). */
  readonly streams?: readonly string[];
  /** Called once per server, when the server is made. */
  register(scope: FeatureScope): void;
}

/** What a feature registers into: one per feature per server. */
export interface FeatureScope {
  /** The feature's name. */
  readonly feature: string;
  /** The server this scope belongs to. */
  readonly server: ServerView;
  /** Handle message type `type` (a type registered twice, or `connect`/`detach`, throws). */
  handle(type: string, handler: MessageHandler): this;
  /** Serialise and frame a message once, to send it to many clients (`client.send` or a stream). */
  prepare(message: ServerMessage): PreparedMessage;
  /** A new set of subscribers; `name` must be one of the feature's declared `streams`. Subscribers leave it when they disconnect. */
  stream(name: string, options?: StreamOptions): Stream;
  /** Subscribe to one of the core's channels, for this server's events only, until the server closes. */
  subscribe<K extends ChannelKey>(key: K, fn: (event: ChannelPayloads[K]) => void): void;
  /** A client completed `connect` (its `connected` reply is queued: what the hook sends comes after it). */
  onConnect(hook: (client: ClientHandle) => void): void;
  /** A client that completed `connect` has gone (its per-connection state is disposed after the hooks). */
  onDisconnect(hook: (client: ClientHandle, event: CloseEvent) => void): void;
  /** A graceful drain started; what the hook sends comes before the `shutdown` notice. */
  onDrain(hook: (event: DrainEvent) => void): void;
  /** The server closed (every connection is gone). Awaited, features in reverse order of registration. */
  onClose(hook: () => void | Promise<void>): void;
}

interface Hooks {
  connect: Array<(client: ClientHandle) => void>;
  disconnect: Array<(client: ClientHandle, event: CloseEvent) => void>;
  drain: Array<(event: DrainEvent) => void>;
  close: Array<() => void | Promise<void>>;
}

class Scope implements FeatureScope {
  readonly feature: string;
  readonly server: ServerView;
  readonly hooks: Hooks = { connect: [], disconnect: [], drain: [], close: [] };
  readonly streams: Stream[] = [];
  readonly unsubscribes: Array<() => void> = [];
  readonly #table: HandlerTable;
  readonly #declaredStreams: ReadonlySet<string>;

  constructor(feature: Feature, server: ServerView, table: HandlerTable) {
    this.feature = feature.name;
    this.server = server;
    this.#table = table;
    this.#declaredStreams = new Set(feature.streams ?? []);
  }

  handle(type: string, handler: MessageHandler): this {
    this.#table.register(type, handler, this.feature);
    return this;
  }

  prepare(message: ServerMessage): PreparedMessage {
    return new PreparedMessage(message);
  }

  stream(name: string, options?: StreamOptions): Stream {
    if (!this.#declaredStreams.has(name)) throw new Error(`feature "${this.feature}": stream "${name}" is not declared; add it to the feature's \`streams\``);
    const stream = new Stream(name, this.server, options);
    this.streams.push(stream);
    return stream;
  }

  subscribe<K extends ChannelKey>(key: K, fn: (event: ChannelPayloads[K]) => void): void {
    if (!Object.hasOwn(CHANNEL_NAMES, key)) throw new Error(`feature "${this.feature}": no channel "${String(key)}"; channels: ${Object.keys(CHANNEL_NAMES).join(', ')}`);
    const server = this.server;
    this.unsubscribes.push(subscribeTo(key, (event) => {
      if (event.server === server) fn(event);
    }));
  }

  onConnect(hook: (client: ClientHandle) => void): void {
    this.hooks.connect.push(hook);
  }

  onDisconnect(hook: (client: ClientHandle, event: CloseEvent) => void): void {
    this.hooks.disconnect.push(hook);
  }

  onDrain(hook: (event: DrainEvent) => void): void {
    this.hooks.drain.push(hook);
  }

  onClose(hook: () => void | Promise<void>): void {
    this.hooks.close.push(hook);
  }
}

/** The features of one server: registers them and runs their hooks. Hooks never throw out of here. */
export class FeatureHost {
  readonly #scopes: Scope[] = [];
  readonly #server: ServerView;
  #closing: Promise<void> | undefined;
  readonly errorCodes: readonly string[];
  readonly sentTypes: readonly string[];
  readonly streams: readonly string[];

  constructor(server: ServerView, table: HandlerTable, features: readonly Feature[]) {
    this.#server = server;
    const names = new Set<string>();
    for (const feature of features) {
      if (names.has(feature.name)) throw new Error(`feature "${feature.name}" is registered twice; register each feature once`);
      names.add(feature.name);
      const scope = new Scope(feature, server, table);
      feature.register(scope);
      this.#scopes.push(scope);
    }
    this.errorCodes = features.flatMap((f) => f.errorCodes ?? []);
    this.sentTypes = features.flatMap((f) => f.sends ?? []);
    this.streams = features.flatMap((f) => f.streams ?? []);
  }

  /** The names the protocol and these features declared (the metric label sets). */
  catalog(table: HandlerTable): Catalog {
    return Object.freeze({
      messageTypes: Object.freeze(table.types()),
      sentTypes: Object.freeze([...new Set([...CORE_SENT_TYPES, ...this.sentTypes])]),
      errorCodes: Object.freeze([...new Set([...ERROR_CODES, ...this.errorCodes])]),
      streams: Object.freeze([...new Set(this.streams)]),
    });
  }

  connected(client: ClientHandle): void {
    for (const scope of this.#scopes) for (const hook of scope.hooks.connect) this.#run(scope, 'onConnect', client.id, () => hook(client));
  }

  disconnected(client: ClientHandle, event: CloseEvent): void {
    for (let i = this.#scopes.length - 1; i >= 0; i--) {
      const scope = this.#scopes[i] as Scope;
      for (const stream of scope.streams) stream.unsubscribe(client);
      for (const hook of scope.hooks.disconnect) this.#run(scope, 'onDisconnect', client.id, () => hook(client, event));
    }
  }

  draining(event: DrainEvent): void {
    for (const scope of this.#scopes) for (const hook of scope.hooks.drain) this.#run(scope, 'onDrain', undefined, () => hook(event));
  }

  /** Run the onClose hooks, features in reverse order, then drop every channel subscription. Once: later calls share the first. */
  close(): Promise<void> {
    return (this.#closing ??= this.#close());
  }

  async #close(): Promise<void> {
    for (let i = this.#scopes.length - 1; i >= 0; i--) {
      const scope = this.#scopes[i] as Scope;
      for (const hook of scope.hooks.close) {
        try {
          await hook();
        } catch (err) {
          this.failed(scope.feature, 'onClose', undefined, err);
        }
      }
      for (const unsubscribe of scope.unsubscribes.splice(0)) unsubscribe();
    }
  }

  /** Report a feature's failure (a hook, a dispose) as a notice. */
  failed(feature: string, hook: string, clientId: number | undefined, error: unknown): void {
    if (channels.notice.hasSubscribers) channels.notice.publish({ server: this.#server, code: 'feature_failed', feature, hook, clientId, error });
  }

  #run(scope: Scope, hook: string, clientId: number | undefined, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failed(scope.feature, hook, clientId, err);
    }
  }
}
