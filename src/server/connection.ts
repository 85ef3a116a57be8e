// One client connection: the pump. Bytes in -> FrameDecoder -> parseMessage ->
// handler table -> replies, queued in request order and written once per read
// (write coalescing). Cleanup runs exactly once, on the socket's 'close'.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  FrameEncoder,
  errorMessage,
  ERROR_TEXT,
  FrameDecoder,
  parseMessage,
  shutdownMessage,
  ShapedReply,
  type ClientMessage,
  type EncodedReply,
  type MessageId,
  type ServerMessage,
} from '../protocol/index.js';
import type { HandlerContext, HandlerResult, HandlerTable, ServerView } from './handlers.js';
import type { CloseInfo, CloseReason, ConnectionObserver, Log, MessageRecord } from './instrumentation.js';

// One encoder for every connection: replies are framed into its shared slab.
const encoder = new FrameEncoder();

export interface ConnectionLimits {
  maxFrameBytes: number;
  maxBufferedBytes: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
}

export interface ConnectionOptions {
  clientId: number;
  socket: Socket;
  handlers: HandlerTable;
  limits: ConnectionLimits;
  server: ServerView;
  observer: ConnectionObserver;
  log: Log;
  /** Called once, after the socket closed. */
  onClose(conn: Connection, info: CloseInfo): void;
}

export type ConnectionState = 'handshaking' | 'ready' | 'closing' | 'closed';

export class Connection implements HandlerContext {
  readonly clientId: number;
  readonly server: ServerView;
  readonly openedAt = performance.now();
  #socket: Socket;
  #handlers: HandlerTable;
  #limits: ConnectionLimits;
  #observer: ConnectionObserver;
  #log: Log;
  #onClose: ConnectionOptions['onClose'];
  #decoder: FrameDecoder;
  #state: ConnectionState = 'handshaking';
  #clientName: string | undefined;
  #handshaken = false;
  #closeReason: CloseReason | undefined;
  #closeError: Error | undefined;
  #closeAfterReply: CloseReason | undefined;
  // Replies of the current batch, serialised, waiting for one coalesced write.
  #out: EncodedReply[] = [];
  // An async handler in progress, and the frames that arrived behind it.
  #blocked = false;
  #backlog: Buffer[] | undefined;
  #peerEnded = false;
  #pendingShutdown: { reason: string; deadline: number } | undefined;
  // When the unfinished frame now buffered began (performance.now()), or 0.
  #partialSince = 0;
  // When the current read (or the settling of an async handler) began: the
  // start of every message it carries. Messages end when their replies are
  // written: two clock reads per batch, none per message.
  #clock = 0;
  // Messages reported to the observer since the last write.
  #unwritten = 0;
  #framesIn = 0;
  #messagesIn = 0;
  #messagesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  // Reused for every message: the observer copies what it keeps.
  #record: MessageRecord = { type: '', known: false, id: undefined, bytes: 0, startMs: 0, errorCode: undefined, traceparent: undefined, tracestate: undefined };

  constructor(options: ConnectionOptions) {
    this.clientId = options.clientId;
    this.server = options.server;
    this.#socket = options.socket;
    this.#handlers = options.handlers;
    this.#limits = options.limits;
    this.#observer = options.observer;
    this.#log = options.log;
    this.#onClose = options.onClose;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.limits.maxFrameBytes });

    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => {
      // Last line of defence: nothing a client sends may take the daemon down.
      // A bug reached this way costs this connection only.
      try {
        this.#onData(chunk);
      } catch (err) {
        this.#log.error({ clientId: this.clientId, err }, 'unexpected error handling client input; closing this connection');
        this.destroy('error', err as Error);
      }
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
    socket.on('close', () => this.#onSocketClose());
    if (this.#limits.idleTimeoutMs > 0) this.#armIdleTimeout();
  }

  #armIdleTimeout(): void {
    const ms = this.#limits.idleTimeoutMs;
    this.#socket.setTimeout(ms, ms > 0 ? () => this.#timeout(ERROR_TEXT.idle_timeout(ms)) : undefined);
  }

  /** The shared limits object changed (a configuration reload): apply what is per connection. */
  limitsChanged(): void {
    this.#decoder.maxFrameBytes = this.#limits.maxFrameBytes;
    if ((this.#socket.timeout ?? 0) !== this.#limits.idleTimeoutMs) {
      this.#socket.removeAllListeners('timeout');
      this.#armIdleTimeout();
    }
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get clientName(): string | undefined {
    return this.#clientName;
  }

  get handshaken(): boolean {
    return this.#handshaken;
  }

  // --- HandlerContext ---

  completeHandshake(clientName: string | undefined): void {
    this.#clientName = clientName;
    this.#handshaken = true;
    if (this.#state === 'handshaking') this.#state = 'ready';
    this.#observer.handshake(clientName);
  }

  closeAfterReply(reason: CloseReason): void {
    this.#closeAfterReply ??= reason;
  }

  // --- server-side actions ---

  /** Send an unsolicited message (e.g. `shutdown`) right away. */
  notifyShutdown(reason: string, timeoutMs: number): void {
    if (this.#state === 'closed' || this.#socket.destroyed) return;
    if (!this.#handshaken) {
      // A client in the middle of its handshake expects `connected` first: it
      // gets the notice right after it, with the time that is left.
      this.#pendingShutdown = { reason, deadline: performance.now() + timeoutMs };
      return;
    }
    this.#enqueue(shutdownMessage(reason, timeoutMs));
    if (!this.#blocked) this.#flush();
  }

  #sendPendingShutdown(): void {
    const p = this.#pendingShutdown;
    if (p === undefined || !this.#handshaken) return;
    this.#pendingShutdown = undefined;
    this.#enqueue(shutdownMessage(p.reason, Math.max(0, Math.round(p.deadline - performance.now()))));
  }

  /**
   * Called by the server's periodic sweep (one timer for all connections, not
   * one per connection): no `connect` within handshakeTimeoutMs, or a frame
   * dribbled in too slowly (slowloris), ends the connection.
   */
  checkTimeouts(now: number): void {
    const { handshakeTimeoutMs, frameTimeoutMs } = this.#limits;
    if (!this.#handshaken && handshakeTimeoutMs > 0 && now - this.openedAt >= handshakeTimeoutMs) {
      this.#timeout(ERROR_TEXT.handshake_timeout(handshakeTimeoutMs));
    } else if (this.#partialSince !== 0 && frameTimeoutMs > 0 && now - this.#partialSince >= frameTimeoutMs) {
      this.#partialSince = 0;
      this.#timeout(ERROR_TEXT.frame_timeout(frameTimeoutMs, this.#decoder.pendingBytes));
    }
  }

  /** Close now, without flushing (deadline reached, slow consumer). */
  destroy(reason: CloseReason, err?: Error): void {
    this.#setReason(reason, err);
    this.#socket.destroy();
  }

  // --- the pump ---

  #onData(chunk: Buffer): void {
    this.#bytesIn += chunk.length;
    this.#observer.read(chunk.length);
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#clock = performance.now();
    const framesBefore = this.#framesIn;
    this.#decoder.feed(chunk, this.#onFrame);
    if (this.#decoder.pendingBytes === 0) this.#partialSince = 0;
    else if (this.#framesIn !== framesBefore || this.#partialSince === 0) this.#partialSince = this.#clock;
    if (this.#blocked) {
      // Bound what queues behind a slow handler: stop reading until it settles.
      this.#socket.pause();
      return;
    }
    this.#afterBatch();
  }

  // One complete frame, `buf[start, end)`, from the decoder.
  #onFrame = (buf: Buffer, start: number, end: number): void => {
    this.#framesIn++;
    // After a reply that closes the connection, the rest of the stream is ignored.
    if (this.#closeAfterReply !== undefined) return;
    if (this.#blocked) (this.#backlog ??= []).push(buf.subarray(start, end));
    else this.#handleFrame(buf, start, end);
  };

  // An over-limit frame ends the stream: reply after everything before it.
  #checkDecoderError(): void {
    const err = this.#decoder.error;
    if (err === undefined || this.#closeAfterReply !== undefined) return;
    const { length, max } = err.details as { length: number; max: number };
    this.#log.warn({ clientId: this.clientId, frameLength: length, maxFrameBytes: max }, 'frame too large, closing connection');
    this.#recordProtocolError('frame_too_large', length);
    this.#enqueue(errorMessage('frame_too_large', ERROR_TEXT.frame_too_large(length, max)));
    this.#closeAfterReply = 'protocol_error';
  }

  #afterBatch(): void {
    this.#checkDecoderError();
    if (this.#closeAfterReply !== undefined) {
      this.#end(this.#closeAfterReply);
    } else {
      this.#flush();
      if (this.#peerEnded) this.#end('client_eof');
    }
  }

  #handleFrame(buf: Buffer, start: number, end: number): void {
    this.#messagesIn++;
    const bytes = end - start;
    const rec = this.#record;
    rec.startMs = this.#clock;
    rec.bytes = bytes;
    rec.errorCode = undefined;
    rec.traceparent = undefined;
    rec.tracestate = undefined;
    const parsed = parseMessage(buf, start, end);
    if (!parsed.ok) {
      rec.type = ''; // no type: the frame did not parse
      rec.known = false;
      rec.id = parsed.id;
      this.#reply(errorMessage('bad_message', parsed.reason), parsed.id);
      return;
    }
    const msg = parsed.message;
    rec.type = msg.type;
    rec.id = msg.id;
    rec.traceparent = msg.traceparent;
    rec.tracestate = msg.tracestate;
    const handler = this.#handlers.get(msg.type);
    rec.known = handler !== undefined;
    if (handler === undefined || (!handler.beforeHandshake && !this.handshaken)) {
      const reply = this.handshaken
        ? errorMessage('unknown_type', ERROR_TEXT.unknown_type(msg.type) + this.#handlers.types().join(', '))
        : errorMessage('handshake_required', ERROR_TEXT.handshake_required);
      this.#reply(reply, msg.id);
      return;
    }
    const invalid = handler.validate?.(msg);
    if (invalid !== undefined) {
      this.#reply(errorMessage('bad_message', `${msg.type}: ${invalid}`), msg.id);
      return;
    }
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = handler.handle(msg, this);
    } catch (err) {
      this.#internalError(msg, err);
      return;
    }
    if (result instanceof Promise) {
      this.#blocked = true;
      const startMs = rec.startMs;
      result.then(
        (reply) => this.#settle(msg, startMs, bytes, reply),
        (err: unknown) => {
          this.#internalError(msg, err);
          this.#settle(msg, startMs, bytes, undefined, true);
        },
      );
      return;
    }
    this.#reply(result, msg.id);
    if (this.#pendingShutdown !== undefined) this.#sendPendingShutdown();
  }

  #internalError(msg: ClientMessage, err: unknown): void {
    this.#log.error({ clientId: this.clientId, type: msg.type, err }, 'message handler failed');
    this.#reply(errorMessage('internal', ERROR_TEXT.internal), msg.id);
  }

  // An async handler finished: reply, then work through what queued behind it.
  #settle(msg: ClientMessage, startMs: number, bytes: number, reply: HandlerResult, replied = false): void {
    this.#blocked = false;
    if (this.#state === 'closed') return;
    this.#clock = performance.now();
    const rec = this.#record;
    rec.type = msg.type;
    rec.known = true;
    rec.id = msg.id;
    rec.bytes = bytes;
    rec.startMs = startMs;
    rec.traceparent = msg.traceparent;
    rec.tracestate = msg.tracestate;
    if (!replied) {
      rec.errorCode = undefined;
      this.#reply(reply, msg.id);
    }
    const backlog = this.#backlog;
    while (backlog !== undefined && backlog.length > 0 && !this.#blocked && this.#closeAfterReply === undefined) {
      const frame = backlog.shift() as Buffer;
      this.#handleFrame(frame, 0, frame.length);
    }
    if (!this.#blocked) {
      this.#backlog = undefined;
      this.#socket.resume();
      this.#afterBatch();
    } else {
      this.#flush();
    }
  }

  #reply(reply: HandlerResult, id: MessageId | undefined): void {
    const rec = this.#record;
    if (reply instanceof ShapedReply) {
      reply.id = id;
      this.#enqueue(reply, id);
    } else if (reply !== undefined) {
      if (id !== undefined) reply.id = id;
      if (reply.type === 'error') rec.errorCode = reply.code as MessageRecord['errorCode'];
      this.#enqueue(reply, id);
    }
    this.#unwritten++;
    this.#observer.message(rec);
  }

  #recordProtocolError(code: 'frame_too_large', bytes: number): void {
    const rec = this.#record;
    rec.type = '';
    rec.known = false;
    rec.id = undefined;
    rec.bytes = bytes;
    rec.startMs = this.#clock;
    rec.errorCode = code;
    rec.traceparent = rec.tracestate = undefined;
    this.#unwritten++;
    this.#observer.message(rec);
  }

  #enqueue(message: ServerMessage | ShapedReply, id?: MessageId): void {
    let json: EncodedReply;
    let type: string;
    try {
      if (message instanceof ShapedReply) {
        type = message.shape.type;
        message.encodeValue();
        json = message; // framed straight from its parts
      } else {
        type = message.type;
        json = JSON.stringify(message);
      }
    } catch (err) {
      // JSON.stringify recurses: data nested thousands of levels deep (which
      // JSON.parse accepts) overflows the stack. Answer instead of crashing.
      const reply = errorMessage('internal', `the reply could not be encoded (${(err as Error).message}); nest data less deeply`, id);
      json = JSON.stringify(reply);
      type = reply.type;
    }
    this.#out.push(json);
    this.#messagesOut++;
    this.#observer.sent(type);
  }

  #flush(): void {
    const out = this.#out;
    let bytes = 0;
    if (out.length > 0 && !this.#socket.destroyed) {
      const buf = encoder.encode(out);
      bytes = buf.length;
      this.#socket.write(buf);
    }
    out.length = 0;
    if (bytes === 0 && this.#unwritten === 0) return;
    this.#bytesOut += bytes;
    this.#unwritten = 0;
    this.#observer.written(bytes, performance.now());
    // The client is not reading fast enough: cut it off rather than buffer without bound.
    const buffered = this.#socket.writableLength;
    if (buffered > this.#limits.maxBufferedBytes) {
      this.#log.warn({ clientId: this.clientId, bufferedBytes: buffered, maxBufferedBytes: this.#limits.maxBufferedBytes }, 'client is not reading its replies, disconnecting it');
      this.destroy('slow_consumer');
    }
  }

  /** Flush what is owed, then close cleanly (FIN after the last reply). */
  #end(reason: CloseReason): void {
    this.#setReason(reason);
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    this.#flush();
    if (!this.#socket.destroyed) this.#socket.destroySoon();
  }

  #timeout(text: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#enqueue(errorMessage('timeout', text));
    this.#end('timeout');
  }

  #onEnd(): void {
    this.#peerEnded = true;
    const pending = this.#decoder.pendingBytes;
    if (pending > 0) {
      this.#log.info({ clientId: this.clientId, partialFrameBytes: pending }, 'client closed in the middle of a frame');
    }
    // Answer everything already received, then close our side (allowHalfOpen).
    if (!this.#blocked) this.#end('client_eof');
  }

  #onError(err: NodeJS.ErrnoException): void {
    const reset = err.code === 'ECONNRESET' || err.code === 'EPIPE';
    this.#setReason(reset ? 'client_reset' : 'error', reset ? undefined : err);
  }

  #setReason(reason: CloseReason, err?: Error): void {
    // The first cause wins: a reset that follows a timeout is still a timeout.
    if (this.#closeReason === undefined) {
      this.#closeReason = reason;
      this.#closeError = err;
    }
  }

  #onSocketClose(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#backlog = undefined;
    const info: CloseInfo = {
      reason: this.#closeReason ?? 'client_eof',
      durationMs: performance.now() - this.openedAt,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      partialFrameBytes: this.#decoder.pendingBytes,
      error: this.#closeError,
    };
    this.#observer.closed(info);
    this.#onClose(this, info);
  }
}
