// The core's diagnostics channels (node:diagnostics_channel), the seam between
// the server and whoever observes it: fugue's own spans, metrics and logs
// (src/observability), features, APM agents, tests. Named like undici's
// (`undici:client:connected`): `fugue:<area>:<what>`. Channels are
// process-wide; every payload names its server. docs/observability.md,
// "Diagnostics channels", is the contract: names, payloads (events.ts) and
// guarantees.
//
// Publishing is guarded by `hasSubscribers` at the call site, so an event
// nobody observes costs one property read and no allocation. A subscriber
// runs synchronously inside the core's call: it must be quick and must not
// throw (Node reports a subscriber's exception as uncaught).

import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import type {
  AcceptErrorEvent,
  ClientLimitEvent,
  CloseEvent,
  DrainedEvent,
  DrainEvent,
  HandshakeEvent,
  LimitEvent,
  ListeningEvent,
  MessageEvent,
  NoticeEvent,
  OpenEvent,
  PushEvent,
  RejectEvent,
  ReloadEvent,
  SocketEvent,
  StreamEvent,
} from './events.js';

/** Every channel the core publishes on, by name. */
export const CHANNEL_NAMES = {
  listening: 'fugue:server:listening',
  socket: 'fugue:server:socket',
  clientLimit: 'fugue:server:client-limit',
  acceptError: 'fugue:server:accept-error',
  rejected: 'fugue:server:rejected',
  drain: 'fugue:server:drain',
  drained: 'fugue:server:drained',
  notice: 'fugue:server:notice',
  reload: 'fugue:config:reload',
  opened: 'fugue:connection:opened',
  handshake: 'fugue:connection:handshake',
  limit: 'fugue:connection:limit',
  closed: 'fugue:connection:closed',
  message: 'fugue:message',
  push: 'fugue:push',
  stream: 'fugue:stream',
} as const;

/** The payload of each channel. */
export interface ChannelPayloads {
  listening: ListeningEvent;
  socket: SocketEvent;
  clientLimit: ClientLimitEvent;
  acceptError: AcceptErrorEvent;
  rejected: RejectEvent;
  drain: DrainEvent;
  drained: DrainedEvent;
  notice: NoticeEvent;
  reload: ReloadEvent;
  opened: OpenEvent;
  handshake: HandshakeEvent;
  limit: LimitEvent;
  closed: CloseEvent;
  message: MessageEvent;
  push: PushEvent;
  stream: StreamEvent;
}

/** A channel's key in CHANNEL_NAMES. */
export type ChannelKey = keyof ChannelPayloads;

/** A diagnostics channel that carries one kind of event. */
export interface EventChannel<T> {
  readonly name: string | symbol;
  /** False while nobody subscribes: build the payload only when true. */
  readonly hasSubscribers: boolean;
  publish(event: T): void;
}

// The channel objects are held here for the process's life: Node keeps a
// channel alive only while something references it or subscribes to it.
export const channels: { readonly [K in ChannelKey]: EventChannel<ChannelPayloads[K]> } = {
  listening: channel(CHANNEL_NAMES.listening),
  socket: channel(CHANNEL_NAMES.socket),
  clientLimit: channel(CHANNEL_NAMES.clientLimit),
  acceptError: channel(CHANNEL_NAMES.acceptError),
  rejected: channel(CHANNEL_NAMES.rejected),
  drain: channel(CHANNEL_NAMES.drain),
  drained: channel(CHANNEL_NAMES.drained),
  notice: channel(CHANNEL_NAMES.notice),
  reload: channel(CHANNEL_NAMES.reload),
  opened: channel(CHANNEL_NAMES.opened),
  handshake: channel(CHANNEL_NAMES.handshake),
  limit: channel(CHANNEL_NAMES.limit),
  closed: channel(CHANNEL_NAMES.closed),
  message: channel(CHANNEL_NAMES.message),
  push: channel(CHANNEL_NAMES.push),
  stream: channel(CHANNEL_NAMES.stream),
};

/** Publish `event` on channel `key` if anyone listens (for payloads that already exist; build costly ones behind `hasSubscribers`). */
export function publish<K extends ChannelKey>(key: K, event: ChannelPayloads[K]): void {
  const ch = channels[key];
  if (ch.hasSubscribers) ch.publish(event);
}

/** Subscribe `fn` to channel `key`; returns the function that unsubscribes it. */
export function subscribeTo<K extends ChannelKey>(key: K, fn: (event: ChannelPayloads[K]) => void): () => void {
  const name = CHANNEL_NAMES[key];
  // Node calls a listener with (message, name): `fn` takes the message and ignores the rest.
  const listener = fn as (message: unknown, name: string | symbol) => void;
  subscribe(name, listener);
  return () => {
    unsubscribe(name, listener);
  };
}
