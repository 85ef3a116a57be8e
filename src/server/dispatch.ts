// One client message, from payload bytes to a queued reply: parse, gate on
// the handshake, validate, route (the handshake step or the handler table),
// handle, serialise, and the message's event, built here and nowhere else.
// No socket here: the connection (connection.ts) keeps the socket pump,
// backpressure, coalescing and timeouts, and this step is unit-testable with
// a plain object as its target.

import { parseMessage, replyPayload, type ClientMessage, type Frameable, type MessageId } from '../protocol/index.js';
import { channels } from './channels.js';
import type { MessageEvent } from './events.js';
import type { Handshake, HandshakeTarget } from './handshake.js';
import type { HandlerContext, HandlerResult, HandlerTable, MessageHandler } from './handlers.js';
import { badMessage, frameTooLarge, handshakeRequired, internalError, unencodable, unknownType } from './replies.js';
import type { ServerView } from './view.js';

/** What dispatching needs of a connection. */
export interface DispatchTarget extends HandshakeTarget {
  /** What its handlers see (made once per connection). */
  readonly context: HandlerContext;
  /** Queue a framed reply for the connection's next write. */
  enqueue(payload: Frameable): void;
}

/** The framer of a reply: a handler's own, the handshake's, or the default. */
type Serializer = Pick<MessageHandler, 'serialize'> | Handshake | undefined;

export class Dispatcher {
  readonly #table: HandlerTable;
  readonly #handshake: Handshake;
  readonly #server: ServerView;
  readonly #types: readonly string[];
  /** The client whose handler is running right now (synchronously), if any: the source of pushes it makes. */
  activeClientId: number | undefined;

  constructor(table: HandlerTable, handshake: Handshake, server: ServerView) {
    this.#table = table;
    this.#handshake = handshake;
    this.#server = server;
    this.#types = table.types();
  }

  /**
   * Handle the frame payload `buf[start, end)` for `target`: its reply (if
   * any) is queued through `target.enqueue`. Returns the message's event
   * (when `fugue:message` has subscribers; else undefined), its `startMs`
   * and `endMs` left at 0 for the caller, or for an async handler a promise
   * of it. Never throws, and the promise never rejects: a failing handler
   * becomes an `internal` reply and the event's `error`.
   */
  dispatch(target: DispatchTarget, buf: Buffer, start: number, end: number): MessageEvent | undefined | Promise<MessageEvent | undefined> {
    const observed = channels.message.hasSubscribers;
    const bytes = end - start;
    const parsed = parseMessage(buf, start, end);
    if (!parsed.ok) return this.#finish(target, observed ? this.#event(target, undefined, false, parsed.id, bytes) : undefined, parsed.id, badMessage(parsed.reason), undefined);
    const msg = parsed.message;
    const control = this.#handshake.handles(msg.type);
    const handler = control ? undefined : this.#table.get(msg.type);
    const ev = observed ? this.#event(target, msg, control || handler !== undefined, msg.id, bytes) : undefined;
    if (!target.handshaken && msg.type !== 'connect') return this.#finish(target, ev, msg.id, handshakeRequired(), undefined);
    if (control) {
      const invalid = this.#handshake.validate(msg);
      if (invalid !== undefined) return this.#finish(target, ev, msg.id, badMessage(`${msg.type}: ${invalid}`), undefined);
      return this.#finish(target, ev, msg.id, this.#handshake.handle(msg, target), this.#handshake);
    }
    if (handler === undefined) return this.#finish(target, ev, msg.id, unknownType(msg.type, this.#types), undefined);
    const invalid = handler.validate?.(msg);
    if (invalid !== undefined) return this.#finish(target, ev, msg.id, badMessage(`${msg.type}: ${invalid}`), undefined);
    let result: HandlerResult | Promise<HandlerResult>;
    this.activeClientId = target.clientId;
    try {
      result = handler.handle(msg, target.context);
    } catch (err) {
      if (ev !== undefined) ev.error = err;
      return this.#finish(target, ev, msg.id, internalError(), undefined);
    } finally {
      this.activeClientId = undefined;
    }
    if (isPromise(result)) {
      return result.then(
        (reply) => this.#finish(target, ev, msg.id, reply, handler),
        (err: unknown) => {
          if (ev !== undefined) ev.error = err;
          return this.#finish(target, ev, msg.id, internalError(), undefined);
        },
      );
    }
    return this.#finish(target, ev, msg.id, result, handler);
  }

  /**
   * A frame over limits.maxFrameBytes (the decoder refused it): its
   * `frame_too_large` reply is queued and its event returned, as for any
   * message that became an error.
   */
  oversized(target: DispatchTarget, length: number, max: number): MessageEvent | undefined {
    const ev = channels.message.hasSubscribers ? this.#event(target, undefined, false, undefined, length) : undefined;
    return this.#finish(target, ev, undefined, frameTooLarge(length, max), undefined);
  }

  // The one place a reply is framed and the event gets its outcome.
  #finish(target: DispatchTarget, ev: MessageEvent | undefined, id: MessageId | undefined, reply: HandlerResult, serializer: Serializer): MessageEvent | undefined {
    if (reply === undefined) return ev;
    let payload: Frameable;
    try {
      payload = serializer?.serialize !== undefined ? serializer.serialize(reply, id) : replyPayload(reply, id);
    } catch (err) {
      // JSON.stringify recurses: data nested thousands of levels deep (which
      // JSON.parse accepts) overflows the stack. Answer instead of crashing;
      // the client's data caused it, so it is counted, not logged as a failure.
      reply = unencodable(err as Error);
      payload = replyPayload(reply, id);
    }
    if (ev !== undefined) {
      ev.replyType = reply.type;
      if (reply.type === 'error') ev.errorCode = typeof reply.code === 'string' ? reply.code : 'internal';
    }
    target.enqueue(payload);
    return ev;
  }

  #event(target: DispatchTarget, msg: ClientMessage | undefined, known: boolean, id: MessageId | undefined, bytes: number): MessageEvent {
    return {
      server: this.#server,
      clientId: target.clientId,
      type: msg === undefined ? '' : msg.type,
      known,
      id,
      bytes,
      replyType: undefined,
      errorCode: undefined,
      error: undefined,
      traceparent: msg?.traceparent,
      tracestate: msg?.tracestate,
      startMs: 0,
      endMs: 0,
    };
  }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}
