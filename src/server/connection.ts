// One client connection: the socket pump. Bytes in -> FrameDecoder -> the
// dispatch step (dispatch.ts: parse, route, handle, serialise) -> replies,
// queued in request order and written once per read (write coalescing), with
// backpressure (a client that stops reading is cut off), timeouts, and
// unsolicited messages from features queued with the replies. Cleanup runs
// exactly once, on the socket's 'close'.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { errorMessage, ERROR_TEXT, FrameDecoder, FrameEncoder, replyPayload, shutdownMessage, type Frameable, type ServerMessage } from '../protocol/index.js';
import type { DispatchContext, Dispatcher } from './dispatch.js';
import type { ClientHandle, ClientInfo, ConnectionState as StateKey, ServerView } from './handlers.js';
import type { CloseEvent, CloseReason, ConnectionObserver, Log, MessageEvent, PushEvent } from './instrumentation.js';

// One encoder for every connection: replies are framed into its shared slab.
const encoder = new FrameEncoder();

/** The per-connection limits; one object shared by every connection, so a reload changes them all. */
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
  dispatcher: Dispatcher;
  limits: ConnectionLimits;
  server: ServerView;
  observer: ConnectionObserver;
  log: Log;
  /** Called once, after the socket closed. */
  onClose(conn: Connection, event: CloseEvent): void;
}

export type ConnectionState = 'handshaking' | 'ready' | 'closing' | 'closed';

export class Connection implements DispatchContext, ClientHandle {
  readonly clientId: number;
  readonly server: ServerView;
  readonly openedAt = performance.now();
  /** When it connected, in Unix ms. */
  readonly connectedAt = Date.now();
  #socket: Socket;
  #dispatcher: Dispatcher;
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
  // Framed messages waiting for one coalesced write, in the order they are owed.
  #out: Frameable[] = [];
  // Messages handled since the last write: their events go out once it is done.
  #handled: MessageEvent[] = [];
  // Unsolicited messages queued since the last write.
  #pushes: PushEvent[] | undefined;
  // True while a read (or a settled async handler) is being worked through:
  // whatever is queued meanwhile goes out in the write that ends it.
  #inBatch = false;
  #flushScheduled = false;
  // An async handler in progress, and the frames that arrived behind it.
  #blocked = false;
  #backlog: Buffer[] | undefined;
  #peerEnded = false;
  #pendingShutdown: { reason: string; deadline: number } | undefined;
  // When the unfinished frame now buffered began (performance.now()), or 0.
  #partialSince = 0;
  // When the current read (or the settling of an async handler) began: the
  // start of every message it carries. Two clock reads per batch, none per message.
  #clock = 0;
  #framesIn = 0;
  #messagesIn = 0;
  #messagesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #states: Map<StateKey<unknown>, unknown> | undefined;

  constructor(options: ConnectionOptions) {
    this.clientId = options.clientId;
    this.server = options.server;
    this.#socket = options.socket;
    this.#dispatcher = options.dispatcher;
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
        this.#inBatch = false;
        this.#log.error({ clientId: this.clientId, err }, 'unexpected error handling client input; closing this connection');
        this.destroy('error', err as Error);
      }
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
    socket.on('close', () => this.#onSocketClose());
    if (this.#limits.idleTimeoutMs > 0) this.#armIdleTimeout();
  }

  /** Where the connection is in its life. */
  get lifecycle(): ConnectionState {
    return this.#state;
  }

  // --- HandlerContext and ClientHandle ---

  get id(): number {
    return this.clientId;
  }

  get name(): string | undefined {
    return this.#clientName;
  }

  get clientName(): string | undefined {
    return this.#clientName;
  }

  get handshaken(): boolean {
    return this.#handshaken;
  }

  get open(): boolean {
    return this.#state !== 'closing' && this.#state !== 'closed' && !this.#socket.destroyed;
  }

  get client(): ClientHandle {
    return this;
  }

  info(): ClientInfo {
    return {
      id: this.clientId,
      name: this.#clientName,
      connectedAt: this.connectedAt,
      handshaken: this.#handshaken,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
    };
  }

  completeHandshake(clientName: string | undefined): void {
    this.#clientName = clientName;
    this.#handshaken = true;
    if (this.#state === 'handshaking') this.#state = 'ready';
    this.#observer.handshake(clientName);
  }

  closeAfterReply(reason: CloseReason): void {
    this.#closeAfterReply ??= reason;
  }

  state<T>(key: StateKey<T>): T {
    const states = (this.#states ??= new Map());
    if (states.has(key)) return states.get(key) as T;
    const value = key.init(this);
    states.set(key, value);
    return value;
  }

  send(message: ServerMessage): boolean {
    if (!this.#handshaken || !this.open) return false;
    const payload = replyPayload(message, undefined);
    this.#enqueue(payload, message.type);
    (this.#pushes ??= []).push({ clientId: this.clientId, type: message.type, fromClientId: this.#dispatcher.activeClientId, startMs: performance.now(), endMs: 0 });
    this.#scheduleFlush();
    return true;
  }

  // --- DispatchContext ---

  enqueue(payload: Frameable, type: string): void {
    this.#enqueue(payload, type);
  }

  // --- server-side actions ---

  /** The shared limits object changed (a configuration reload): apply what is per connection. */
  limitsChanged(): void {
    this.#decoder.maxFrameBytes = this.#limits.maxFrameBytes;
    if ((this.#socket.timeout ?? 0) !== this.#limits.idleTimeoutMs) {
      this.#socket.removeAllListeners('timeout');
      this.#armIdleTimeout();
    }
  }

  /** Send the `shutdown` notice (a drain started). */
  notifyShutdown(reason: string, timeoutMs: number): void {
    if (this.#state === 'closed' || this.#socket.destroyed) return;
    if (!this.#handshaken) {
      // A client in the middle of its handshake expects `connected` first: it
      // gets the notice right after it, with the time that is left.
      this.#pendingShutdown = { reason, deadline: performance.now() + timeoutMs };
      return;
    }
    this.#enqueue(replyPayload(shutdownMessage(reason, timeoutMs), undefined), 'shutdown');
    if (!this.#blocked) this.#flush();
  }

  #sendPendingShutdown(): void {
    const p = this.#pendingShutdown;
    if (p === undefined || !this.#handshaken) return;
    this.#pendingShutdown = undefined;
    this.#enqueue(replyPayload(shutdownMessage(p.reason, Math.max(0, Math.round(p.deadline - performance.now()))), undefined), 'shutdown');
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
    this.#inBatch = true;
    const framesBefore = this.#framesIn;
    this.#decoder.feed(chunk, this.#onFrame);
    if (this.#decoder.pendingBytes === 0) this.#partialSince = 0;
    else if (this.#framesIn !== framesBefore || this.#partialSince === 0) this.#partialSince = this.#clock;
    if (this.#blocked) {
      // Bound what queues behind a slow handler: stop reading until it settles.
      this.#socket.pause();
      this.#inBatch = false;
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

  #handleFrame(buf: Buffer, start: number, end: number): void {
    this.#messagesIn++;
    const result = this.#dispatcher.dispatch(this, buf, start, end);
    if ('then' in result) {
      this.#blocked = true;
      const startMs = this.#clock;
      void result.then((ev) => this.#settle(ev, startMs));
      return;
    }
    result.startMs = this.#clock;
    this.#handled.push(result);
    if (this.#pendingShutdown !== undefined) this.#sendPendingShutdown();
  }

  // An async handler finished (its reply is queued): work through what queued behind it.
  #settle(ev: MessageEvent, startMs: number): void {
    this.#blocked = false;
    ev.startMs = startMs;
    this.#handled.push(ev);
    if (this.#state === 'closed') {
      this.#complete(performance.now());
      return;
    }
    this.#clock = performance.now();
    this.#inBatch = true;
    try {
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
        this.#inBatch = false;
        this.#flush();
      }
    } catch (err) {
      this.#inBatch = false;
      this.#log.error({ clientId: this.clientId, err }, 'unexpected error handling client input; closing this connection');
      this.destroy('error', err as Error);
    }
  }

  // An over-limit frame ends the stream: reply after everything before it.
  #checkDecoderError(): void {
    const err = this.#decoder.error;
    if (err === undefined || this.#closeAfterReply !== undefined) return;
    const { length, max } = err.details as { length: number; max: number };
    this.#observer.limit({ clientId: this.clientId, limit: 'limits.maxFrameBytes', value: length, max });
    this.#enqueue(replyPayload(errorMessage('frame_too_large', ERROR_TEXT.frame_too_large(length, max)), undefined), 'error');
    this.#handled.push({
      clientId: this.clientId,
      type: '',
      known: false,
      id: undefined,
      bytes: length,
      errorCode: 'frame_too_large',
      error: undefined,
      traceparent: undefined,
      tracestate: undefined,
      startMs: this.#clock,
      endMs: 0,
    });
    this.#closeAfterReply = 'protocol_error';
  }

  #afterBatch(): void {
    this.#inBatch = false;
    this.#checkDecoderError();
    if (this.#closeAfterReply !== undefined) {
      this.#end(this.#closeAfterReply);
    } else {
      this.#flush();
      if (this.#peerEnded) this.#end('client_eof');
    }
  }

  #enqueue(payload: Frameable, type: string): void {
    if (this.#state === 'closed') return; // an async handler that settled after the close
    this.#out.push(payload);
    this.#messagesOut++;
    this.#observer.sent(type);
  }

  // Unsolicited messages sent from outside this connection's own batch go out
  // together, once the code that sent them is done (one write for many).
  #scheduleFlush(): void {
    if (this.#inBatch || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#scheduledFlush);
  }

  #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    if (!this.#inBatch && this.#state !== 'closed') this.#flush();
  };

  #flush(): void {
    const out = this.#out;
    let bytes = 0;
    if (out.length > 0 && !this.#socket.destroyed) {
      const buf = encoder.encode(out);
      bytes = buf.length;
      this.#socket.write(buf);
    }
    out.length = 0;
    if (bytes > 0) {
      this.#bytesOut += bytes;
      this.#observer.written(bytes);
    }
    if (this.#handled.length > 0 || this.#pushes !== undefined) this.#complete(performance.now());
    // The client is not reading fast enough: cut it off rather than buffer without bound.
    const buffered = this.#socket.writableLength;
    if (buffered > this.#limits.maxBufferedBytes) {
      this.#observer.limit({ clientId: this.clientId, limit: 'limits.maxBufferedBytes', value: buffered, max: this.#limits.maxBufferedBytes });
      this.destroy('slow_consumer');
    }
  }

  // Everything handled or pushed since the last write is complete at `endMs`.
  #complete(endMs: number): void {
    const handled = this.#handled;
    if (handled.length > 0) {
      this.#handled = [];
      for (let i = 0; i < handled.length; i++) {
        const ev = handled[i] as MessageEvent;
        ev.endMs = endMs;
        this.#observer.message(ev);
      }
    }
    const pushes = this.#pushes;
    if (pushes !== undefined) {
      this.#pushes = undefined;
      for (const p of pushes) {
        p.endMs = endMs;
        this.#observer.pushed(p);
      }
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
    this.#enqueue(replyPayload(errorMessage('timeout', text), undefined), 'error');
    this.#end('timeout');
  }

  #armIdleTimeout(): void {
    const ms = this.#limits.idleTimeoutMs;
    this.#socket.setTimeout(ms, ms > 0 ? () => this.#timeout(ERROR_TEXT.idle_timeout(ms)) : undefined);
  }

  #onEnd(): void {
    this.#peerEnded = true;
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
    this.#out.length = 0;
    // Messages whose replies were never written (the connection went first) end now.
    if (!this.#blocked && (this.#handled.length > 0 || this.#pushes !== undefined)) this.#complete(performance.now());
    this.#disposeStates();
    const event: CloseEvent = {
      clientId: this.clientId,
      clientName: this.#clientName,
      reason: this.#closeReason ?? 'client_eof',
      durationMs: performance.now() - this.openedAt,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      partialFrameBytes: this.#decoder.pendingBytes,
      error: this.#closeError,
    };
    this.#observer.closed(event);
    this.#onClose(this, event);
  }

  #disposeStates(): void {
    const states = this.#states;
    if (states === undefined) return;
    this.#states = undefined;
    for (const [key, value] of states) {
      try {
        key.dispose?.(value, this);
      } catch (err) {
        this.#log.error({ clientId: this.clientId, err }, 'a feature failed to dispose its per-connection state');
      }
    }
  }
}
