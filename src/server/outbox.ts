// The write side of one connection: everything owed to the client (replies,
// pushes, the core's notices) queued in order and written with one write()
// per batch, the events of what was handled published once that write is
// done, and the bound on what a client may leave unread (over it: a slow
// consumer, cut off by the connection).

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameEncoder, PreparedMessage, type Frameable } from '../protocol/index.js';
import { channels } from './channels.js';
import { pushEvent, type MessageEvent, type PushEvent } from './events.js';
import type { ServerView } from './view.js';

// One encoder for every connection: replies are framed into its shared slab.
const encoder = new FrameEncoder();

/** The connection an outbox writes for. */
export interface OutboxOwner {
  readonly clientId: number;
  /** limits.maxBufferedBytes in force. */
  readonly maxBufferedBytes: number;
  /** A write left more than maxBufferedBytes unsent: the client is not reading (cut it off). */
  overflow(buffered: number): void;
}

export class Outbox {
  readonly #socket: Socket;
  readonly #view: ServerView;
  readonly #clientId: number;
  // Framed messages waiting for one coalesced write, in the order they are owed.
  #out: Frameable[] = [];
  // Messages handled since the last write: their events go out once it is done.
  #handled: MessageEvent[] = [];
  // Unsolicited messages queued since the last write (when fugue:push is observed).
  #pushes: PushEvent[] | undefined;
  #flushScheduled = false;
  #drainWaiters: Array<() => void> | undefined;
  #drainListening = false;
  #closed = false;
  /**
   * True while the connection works through a read (or a settled async
   * handler): whatever is queued meanwhile goes out in the write that ends it.
   */
  inBatch = false;
  messagesOut = 0;
  bytesOut = 0;
  readonly #owner: OutboxOwner;

  constructor(socket: Socket, view: ServerView, owner: OutboxOwner) {
    this.#socket = socket;
    this.#view = view;
    this.#clientId = owner.clientId;
    this.#owner = owner;
  }

  /** Bytes owed and not yet taken by the client: queued for the next write (a bound) and unsent in the socket. */
  get bufferedBytes(): number {
    let queued = 0;
    for (const p of this.#out) queued += p.maxBytes();
    return queued + this.#socket.writableLength;
  }

  /** Queue a framed message for the next write. */
  enqueue(payload: Frameable): void {
    if (this.#closed) return; // an async handler that settled after the close
    this.#out.push(payload);
    this.messagesOut++;
  }

  /** A handled message: its event is published once the write that carries its reply is done. */
  handled(ev: MessageEvent): void {
    this.#handled.push(ev);
  }

  /** Queue an unsolicited message for one recipient (published on fugue:push once written). */
  push(payload: Frameable, type: string, fromClientId: number | undefined): void {
    if (this.#closed) return;
    this.enqueue(payload);
    if (channels.push.hasSubscribers) (this.#pushes ??= []).push(pushEvent(this.#view, type, this.#clientId, undefined, fromClientId));
    this.scheduleFlush();
  }

  /** Queue one of a stream's messages (the stream publishes one event for all its recipients). */
  pushQuiet(payload: Frameable): void {
    if (this.#closed) return;
    this.enqueue(payload);
    this.scheduleFlush();
  }

  /**
   * Call `fn` once the client has taken what it was owed: the socket no
   * longer needs a 'drain' (its unsent bytes are under the high-water mark)
   * and nothing is queued. Checked on 'drain' and after every write.
   */
  whenDrained(fn: () => void): void {
    if (this.#closed) return;
    (this.#drainWaiters ??= []).push(fn);
    if (!this.#drainListening) {
      this.#drainListening = true;
      this.#socket.once('drain', this.#onDrainEvent);
    }
    if (this.#out.length === 0 && !this.#socket.writableNeedDrain) queueMicrotask(this.#checkDrained);
  }

  #onDrainEvent = (): void => {
    this.#drainListening = false;
    this.#checkDrained();
  };

  #checkDrained = (): void => {
    const waiters = this.#drainWaiters;
    if (waiters === undefined || this.#closed || this.#out.length > 0 || this.#socket.writableNeedDrain) return;
    this.#drainWaiters = undefined;
    for (const fn of waiters) fn();
  };

  // Unsolicited messages sent from outside the connection's own batch go out
  // together, once the code that sent them is done (one write for many).
  scheduleFlush(): void {
    if (this.inBatch || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#scheduledFlush);
  }

  #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    if (!this.inBatch && !this.#closed) this.flush();
  };

  /** Write everything queued in one write(), then publish what it completed. */
  flush(): void {
    const out = this.#out;
    let bytes = 0;
    if (out.length > 0 && !this.#socket.destroyed) {
      if (allPrepared(out)) {
        // A fan-out backlog: its frames are written as they are (one writev
        // for several), never copied; a copy per recipient into fresh slabs
        // made the garbage a fan-out to many clients pays for.
        if (out.length > 1) this.#socket.cork();
        for (const p of out) {
          bytes += p.frame.length;
          this.#socket.write(p.frame);
        }
        if (out.length > 1) this.#socket.uncork();
      } else {
        const buf = encoder.encode(out);
        bytes = buf.length;
        this.#socket.write(buf);
      }
    }
    out.length = 0;
    this.bytesOut += bytes;
    if (this.#handled.length > 0 || this.#pushes !== undefined) this.complete(performance.now());
    if (this.#drainWaiters !== undefined) this.#checkDrained();
    // The client is not reading fast enough: cut it off rather than buffer without bound.
    const buffered = this.#socket.writableLength;
    if (buffered > this.#owner.maxBufferedBytes && !this.#closed) this.#owner.overflow(buffered);
  }

  /** Everything handled or pushed since the last write is complete at `endMs`: publish it. */
  complete(endMs: number): void {
    const handled = this.#handled;
    if (handled.length > 0) {
      this.#handled = [];
      const ch = channels.message;
      for (let i = 0; i < handled.length; i++) {
        const ev = handled[i] as MessageEvent;
        ev.endMs = endMs;
        ch.publish(ev);
      }
    }
    const pushes = this.#pushes;
    if (pushes !== undefined) {
      this.#pushes = undefined;
      for (const p of pushes) {
        p.endMs = endMs;
        channels.push.publish(p);
      }
    }
  }

  /**
   * The socket closed: drop what was never written; messages whose replies
   * never went out end now (unless an async handler still owes one).
   */
  close(handlerPending: boolean): void {
    this.#closed = true;
    this.#out.length = 0;
    this.#drainWaiters = undefined;
    if (!handlerPending && (this.#handled.length > 0 || this.#pushes !== undefined)) this.complete(performance.now());
  }
}

function allPrepared(out: Frameable[]): out is PreparedMessage[] {
  for (const p of out) if (!(p instanceof PreparedMessage)) return false;
  return true;
}
