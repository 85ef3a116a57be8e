// Fan-out: a set of subscribed clients and messages published to all of them,
// serialised and framed once (a PreparedMessage) whatever the number of
// recipients (uWebSockets' publish). Each recipient keeps its own order (the
// message queues behind what it is already owed) and its own bound; one that
// has stopped reading never delays the others. What happens to it is the
// stream's declared policy (tmux's control mode pauses a client that falls
// behind, then tells it: `pause-after`, `%pause`, `%continue`):
// - 'disconnect': it keeps getting every message until it has more than
//   limits.maxBufferedBytes unread, then it is cut off (slow_consumer);
// - 'drop': once it has more than the stream's `maxBufferedBytes` unread, the
//   stream's messages to it are dropped and counted; when it has caught up it
//   first gets one message saying how many it missed, then the stream again.

import { performance } from 'node:perf_hooks';
import { PreparedMessage, type ServerMessage } from '../protocol/index.js';
import { channels } from './channels.js';
import { Client, type ClientHandle, type ClientPort } from './client.js';
import { pushEvent } from './events.js';
import type { ServerView } from './view.js';

/** How a stream treats a subscriber that falls behind. */
export interface StreamOptions {
  /** 'disconnect': cut off at limits.maxBufferedBytes, like any slow consumer. 'drop': skip it while it is behind, then tell it how many it missed. Default: 'disconnect'. */
  onSlow?: 'disconnect' | 'drop';
  /** 'drop' only: unread bytes above which the stream skips a subscriber, in bytes. Default: 1048576 (1 MiB). */
  maxBufferedBytes?: number;
  /** 'drop' only: the message a subscriber gets when it has caught up. Default: `{ type: "<name>.missed", missed }`. */
  missedMessage?: (missed: number) => ServerMessage;
}

/** What a publish did. */
export interface PublishResult {
  /** Subscribers it was queued for. */
  sent: number;
  /** Subscribers skipped because they were behind ('drop'). */
  dropped: number;
}

interface Subscriber {
  port: ClientPort;
  paused: boolean;
  missed: number;
}

const DEFAULT_DROP_BYTES = 1024 * 1024;

/** A set of subscribers sharing one sequence of messages. Made by `FeatureScope.stream()`. */
export class Stream {
  /** The declared name: the `stream` label of its metrics and events. */
  readonly name: string;
  readonly #view: ServerView;
  readonly #drop: boolean;
  readonly #maxBuffered: number;
  readonly #missed: (missed: number) => ServerMessage;
  readonly #subs = new Map<ClientHandle, Subscriber>();

  constructor(name: string, view: ServerView, options: StreamOptions = {}) {
    this.name = name;
    this.#view = view;
    this.#drop = options.onSlow === 'drop';
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULT_DROP_BYTES;
    this.#missed = options.missedMessage ?? ((missed) => ({ type: `${name}.missed`, missed }));
  }

  /** Subscribers now. */
  get size(): number {
    return this.#subs.size;
  }

  /** Add a handshaken, open client; false if it is not one (or already subscribed). */
  subscribe(client: ClientHandle): boolean {
    const port = Client.portOf(client);
    if (port === undefined || !port.handshaken || !port.open || this.#subs.has(client)) return false;
    this.#subs.set(client, { port, paused: false, missed: 0 });
    return true;
  }

  /** Remove a client (done for you when it disconnects). */
  unsubscribe(client: ClientHandle): boolean {
    return this.#subs.delete(client);
  }

  has(client: ClientHandle): boolean {
    return this.#subs.has(client);
  }

  /** Queue `message` for every subscriber, serialised once. Throws what JSON.stringify throws. */
  publish(message: ServerMessage | PreparedMessage): PublishResult {
    const prepared = message instanceof PreparedMessage ? message : new PreparedMessage(message);
    const size = prepared.frame.length;
    const observed = channels.push.hasSubscribers;
    const ev = observed ? pushEvent(this.#view, prepared.type, undefined, { name: this.name, recipients: 0, dropped: 0 }, undefined) : undefined;
    let sent = 0;
    let dropped = 0;
    for (const [client, sub] of this.#subs) {
      const port = sub.port;
      if (!port.open) continue; // removed at its disconnect
      if (this.#drop) {
        if (sub.paused) {
          sub.missed++;
          dropped++;
          continue;
        }
        if (port.bufferedBytes + size > this.#maxBuffered) {
          this.#pause(client, sub);
          dropped++;
          continue;
        }
      }
      port.pushQuiet(prepared);
      sent++;
    }
    if (ev !== undefined) {
      ev.recipients = sent;
      ev.dropped = dropped;
      ev.endMs = performance.now();
      channels.push.publish(ev);
    }
    return { sent, dropped };
  }

  #pause(client: ClientHandle, sub: Subscriber): void {
    sub.paused = true;
    sub.missed = 1;
    if (channels.stream.hasSubscribers) channels.stream.publish({ server: this.#view, stream: this.name, clientId: client.id, state: 'paused', missed: 0 });
    sub.port.whenDrained(() => this.#resume(client, sub));
  }

  // It has taken what it was owed: tell it what it missed, then it gets the stream again.
  #resume(client: ClientHandle, sub: Subscriber): void {
    if (!sub.paused || this.#subs.get(client) !== sub || !sub.port.open) return;
    const missed = sub.missed;
    sub.paused = false;
    sub.missed = 0;
    sub.port.pushQuiet(new PreparedMessage(this.#missed(missed)));
    if (channels.stream.hasSubscribers) channels.stream.publish({ server: this.#view, stream: this.name, clientId: client.id, state: 'resumed', missed });
  }
}
