// One client message, from payload bytes to a queued reply: parse, gate on
// the handshake, validate, route through the handler table, handle, serialise,
// and the message's event, filled in one place. No socket here: the
// connection (connection.ts) keeps the socket pump, backpressure, coalescing
// and timeouts, and this step is unit-testable with a plain object as its
// context.

import { errorMessage, ERROR_TEXT, parseMessage, replyPayload, type ClientMessage, type Frameable, type MessageId, type ProtocolErrorCode } from '../protocol/index.js';
import type { HandlerContext, HandlerResult, HandlerTable, MessageHandler } from './handlers.js';
import type { MessageEvent } from './instrumentation.js';

/** What dispatching needs of a connection: the handler context, and a way to queue a reply. */
export interface DispatchContext extends HandlerContext {
  /** Queue a framed reply for the connection's next write. */
  enqueue(payload: Frameable, type: string): void;
}

export class Dispatcher {
  readonly handlers: HandlerTable;
  /** The client whose handler is running right now (synchronously), if any: the source of pushes it makes. */
  activeClientId: number | undefined;

  constructor(handlers: HandlerTable) {
    this.handlers = handlers;
  }

  /**
   * Handle the frame payload `buf[start, end)` for `ctx`: its reply (if any)
   * is queued through `ctx.enqueue`, and the message's event returned, its
   * `startMs` and `endMs` left at 0 for the caller. For an async handler, a
   * promise of both. Never throws, and the promise never rejects: a failing
   * handler becomes an `internal` reply and the event's `error`.
   */
  dispatch(ctx: DispatchContext, buf: Buffer, start: number, end: number): MessageEvent | Promise<MessageEvent> {
    const bytes = end - start;
    const parsed = parseMessage(buf, start, end);
    if (!parsed.ok) return this.#finish(ctx, event(ctx.clientId, undefined, false, parsed.id, bytes), errorMessage('bad_message', parsed.reason), undefined);
    const msg = parsed.message;
    const handler = this.handlers.get(msg.type);
    const ev = event(ctx.clientId, msg, handler !== undefined, msg.id, bytes);
    if (handler === undefined || (!handler.beforeHandshake && !ctx.handshaken)) {
      const reply = ctx.handshaken
        ? errorMessage('unknown_type', ERROR_TEXT.unknown_type(msg.type) + this.handlers.types().join(', '))
        : errorMessage('handshake_required', ERROR_TEXT.handshake_required);
      return this.#finish(ctx, ev, reply, undefined);
    }
    const invalid = handler.validate?.(msg);
    if (invalid !== undefined) return this.#finish(ctx, ev, errorMessage('bad_message', `${msg.type}: ${invalid}`), undefined);
    let result: HandlerResult | Promise<HandlerResult>;
    this.activeClientId = ctx.clientId;
    try {
      result = handler.handle(msg, ctx);
    } catch (err) {
      ev.error = err;
      return this.#finish(ctx, ev, errorMessage('internal', ERROR_TEXT.internal), undefined);
    } finally {
      this.activeClientId = undefined;
    }
    if (isPromise(result)) {
      return result.then(
        (reply) => this.#finish(ctx, ev, reply, handler),
        (err: unknown) => {
          ev.error = err;
          return this.#finish(ctx, ev, errorMessage('internal', ERROR_TEXT.internal), undefined);
        },
      );
    }
    return this.#finish(ctx, ev, result, handler);
  }

  // The one place a reply is framed and the event gets its outcome.
  #finish(ctx: DispatchContext, ev: MessageEvent, reply: HandlerResult, handler: MessageHandler | undefined): MessageEvent {
    if (reply === undefined) return ev;
    let payload: Frameable;
    try {
      payload = handler?.serialize !== undefined ? handler.serialize(reply, ev.id) : replyPayload(reply, ev.id);
    } catch (err) {
      // JSON.stringify recurses: data nested thousands of levels deep (which
      // JSON.parse accepts) overflows the stack. Answer instead of crashing;
      // the client's data caused it, so it is counted, not logged as a failure.
      reply = errorMessage('internal', `the reply could not be encoded (${(err as Error).message}); nest data less deeply`);
      payload = replyPayload(reply, ev.id);
    }
    if (reply.type === 'error') ev.errorCode = reply.code as ProtocolErrorCode;
    ctx.enqueue(payload, reply.type);
    return ev;
  }
}

function event(clientId: number, msg: ClientMessage | undefined, known: boolean, id: MessageId | undefined, bytes: number): MessageEvent {
  return {
    clientId,
    type: msg === undefined ? '' : msg.type,
    known,
    id,
    bytes,
    errorCode: undefined,
    error: undefined,
    traceparent: msg?.traceparent,
    tracestate: msg?.tracestate,
    startMs: 0,
    endMs: 0,
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}
