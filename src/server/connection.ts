// One client connection: the socket pump. Bytes in -> FrameDecoder -> the
// dispatch step (dispatch.ts) -> replies queued in request order on the
// write side (outbox.ts), written once per read. An async handler holds
// later frames back in a bounded backlog so replies keep request order.
// Features never see this object: they get its Client (client.ts). Cleanup
// runs exactly once, on the socket's 'close'.
//
// Over 300 lines on purpose: the read side of one connection is one state
// machine (reading, dispatching, holding frames behind an async handler, the
// half-close, the core's own notices, the close) whose fields guard one
// invariant together: replies in request order and exactly one close. Split
// further, that invariant would be spread over several files. The write side
// is its own module (outbox.ts).

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameDecoder, replyPayload, type Frameable, type ServerMessage } from '../protocol/index.js';
import { channels } from './channels.js';
import { Client, type ClientInfo, type ClientPort } from './client.js';
import type { DispatchTarget, Dispatcher } from './dispatch.js';
import type { CloseEvent, CloseReason, LimitName, MessageEvent } from './events.js';
import type { HandlerContext } from './handlers.js';
import { Outbox, type OutboxOwner } from './outbox.js';
import { shutdownNotice, timedOut } from './replies.js';
import type { ServerView } from './view.js';

/** The per-connection limits; one object shared by every connection, so a reload changes them all. */
export interface ConnectionLimits {
  maxFrameBytes: number;
  maxBufferedBytes: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
}

/** What a connection needs of its server. */
export interface ConnectionHost {
  readonly view: ServerView;
  readonly dispatcher: Dispatcher;
  readonly limits: ConnectionLimits;
  /** The client completed `connect` (its `connected` reply is queued). */
  handshaken(conn: Connection): void;
  /** The socket closed: called exactly once. */
  closed(conn: Connection, event: CloseEvent): void;
  /** This connection's code path failed: the connection is closed, the server carries on. */
  failed(conn: Connection, err: unknown): void;
}

/** A timeout limit (the sweep in timeouts.ts, or the socket's idle timer). */
export type TimeoutLimit = Extract<LimitName, `${string}TimeoutMs`>;

export type ConnectionState = 'handshaking' | 'ready' | 'closing' | 'closed';

export class Connection implements DispatchTarget, ClientPort, OutboxOwner {
  readonly clientId: number;
  readonly openedAt = performance.now();
  /** When it connected, in Unix ms. */
  readonly connectedAt = Date.now();
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #decoder: FrameDecoder;
  readonly #outbox: Outbox;
  #state: ConnectionState = 'handshaking';
  #name: string | undefined;
  #handshakeDone = false;
  #justHandshaken = false;
  #closeReason: CloseReason | undefined;
  #closeDetail: string | undefined;
  #closeError: Error | undefined;
  #closeAfterReply: CloseReason | undefined;
  // An async handler in progress, and the frames that arrived behind it.
  #blocked = false;
  #backlog: Buffer[] | undefined;
  #peerEnded = false;
  #pendingShutdown: { reason: string; deadline: number } | undefined;
  /** When the unfinished frame now buffered began (performance.now()), or 0. */
  partialSince = 0;
  // When the current read (or the settling of an async handler) began: the
  // start of every message it carries. Two clock reads per batch, none per message.
  #clock = 0;
  #framesIn = 0;
  messagesIn = 0;
  bytesIn = 0;
  #client: Client | undefined;
  #context: HandlerContext | undefined;

  constructor(clientId: number, socket: Socket, host: ConnectionHost) {
    this.clientId = clientId;
    this.#socket = socket;
    this.#host = host;
    this.#decoder = new FrameDecoder({ maxFrameBytes: host.limits.maxFrameBytes });
    this.#outbox = new Outbox(socket, host.view, this);
    socket.on('data', (chunk: Buffer) => {
      // Last line of defence: nothing a client sends may take the daemon down.
      // A bug reached this way costs this connection only.
      try {
        this.#onData(chunk);
      } catch (err) {
        this.#fail(err);
      }
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
    socket.on('close', () => this.#onSocketClose());
    if (host.limits.idleTimeoutMs > 0) this.#armIdleTimeout();
  }

  get name(): string | undefined {
    return this.#name;
  }

  get handshaken(): boolean {
    return this.#handshakeDone;
  }

  get open(): boolean {
    return this.#state !== 'closing' && this.#state !== 'closed' && !this.#socket.destroyed;
  }

  get bufferedBytes(): number {
    return this.#outbox.bufferedBytes;
  }

  get messagesOut(): number {
    return this.#outbox.messagesOut;
  }

  get bytesOut(): number {
    return this.#outbox.bytesOut;
  }

  // --- for the write side (outbox.ts) ---

  get maxBufferedBytes(): number {
    return this.#host.limits.maxBufferedBytes;
  }

  /** The client is not reading fast enough: cut it off rather than buffer without bound. */
  overflow(buffered: number): void {
    this.#limit('limits.maxBufferedBytes', buffered, this.#host.limits.maxBufferedBytes);
    this.destroy('slow_consumer');
  }

  /** The object features get for this connection. */
  get client(): Client {
    return (this.#client ??= new Client(this));
  }

  /** The client object, if one was made (features or handlers asked for it). */
  get clientIfMade(): Client | undefined {
    return this.#client;
  }

  get context(): HandlerContext {
    return (this.#context ??= Object.freeze({ client: this.client, server: this.#host.view }));
  }

  info(): ClientInfo {
    return {
      id: this.clientId,
      name: this.#name,
      connectedAt: this.connectedAt,
      handshaken: this.#handshakeDone,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    };
  }

  // --- for the handshake and dispatch steps ---

  completeHandshake(clientName: string | undefined): void {
    this.#name = clientName;
    this.#handshakeDone = true;
    if (this.#state === 'handshaking') this.#state = 'ready';
    this.#justHandshaken = true;
  }

  closeAfterReply(reason: CloseReason): void {
    this.#closeAfterReply ??= reason;
  }

  enqueue(payload: Frameable): void {
    this.#outbox.enqueue(payload);
  }

  // --- for the Client (client.ts) and streams (stream.ts) ---

  push(payload: Frameable, type: string): void {
    this.#outbox.push(payload, type, this.#host.dispatcher.activeClientId);
  }

  /** Queue one of a stream's messages (the stream publishes one event for all its recipients). */
  pushQuiet(payload: Frameable): void {
    this.#outbox.pushQuiet(payload);
  }

  /** Call `fn` once the client has taken everything owed to it. */
  whenDrained(fn: () => void): void {
    this.#outbox.whenDrained(fn);
  }

  closeByFeature(detail: string): void {
    if (!this.open) return;
    this.#closeDetail ??= detail;
    if (this.#outbox.inBatch || this.#blocked) this.closeAfterReply('closed_by_feature');
    else this.#end('closed_by_feature');
  }

  // --- the server's actions ---

  /** The shared limits object changed (a configuration reload): apply what is per connection. */
  limitsChanged(): void {
    this.#decoder.maxFrameBytes = this.#host.limits.maxFrameBytes;
    if ((this.#socket.timeout ?? 0) !== this.#host.limits.idleTimeoutMs) {
      this.#socket.removeAllListeners('timeout');
      this.#armIdleTimeout();
    }
  }

  /** Send the `shutdown` notice (a drain started). */
  notifyShutdown(reason: string, timeoutMs: number): void {
    if (this.#state === 'closed' || this.#socket.destroyed) return;
    // A client in the middle of its handshake expects `connected` first: it
    // gets the notice right after it, with the time that is left.
    if (!this.#handshakeDone) this.#pendingShutdown = { reason, deadline: performance.now() + timeoutMs };
    else this.#notice(shutdownNotice(reason, timeoutMs), !this.#blocked);
  }

  /** A timeout limit ran out: the client is told, then disconnected. */
  timeOut(limit: TimeoutLimit, elapsedMs: number, ms: number): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (limit === 'limits.frameTimeoutMs') this.partialSince = 0;
    this.#limit(limit, Math.round(elapsedMs), ms);
    this.#notice(timedOut(limit, ms, this.#decoder.pendingBytes), false);
    this.#end('timeout');
  }

  /** Close now, without flushing (deadline reached, slow consumer). */
  destroy(reason: CloseReason, err?: Error): void {
    this.#setReason(reason, err);
    this.#socket.destroy();
  }

  // --- the pump ---

  #onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#clock = performance.now();
    this.#outbox.inBatch = true;
    const framesBefore = this.#framesIn;
    this.#decoder.feed(chunk, this.#onFrame);
    if (this.#decoder.pendingBytes === 0) this.partialSince = 0;
    else if (this.#framesIn !== framesBefore || this.partialSince === 0) this.partialSince = this.#clock;
    if (this.#blocked) {
      // Bound what queues behind a slow handler: stop reading until it settles.
      this.#socket.pause();
      this.#outbox.inBatch = false;
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
    this.messagesIn++;
    const result = this.#host.dispatcher.dispatch(this, buf, start, end);
    if (result !== undefined) {
      if ('then' in result) {
        this.#blocked = true;
        const startMs = this.#clock;
        void result.then((ev) => this.#settle(ev, startMs));
      } else {
        result.startMs = this.#clock;
        this.#outbox.handled(result);
      }
    }
    if (this.#justHandshaken) this.#afterHandshake();
  }

  #afterHandshake(): void {
    this.#justHandshaken = false;
    this.#host.handshaken(this);
    const p = this.#pendingShutdown;
    if (p !== undefined) {
      this.#pendingShutdown = undefined;
      this.#notice(shutdownNotice(p.reason, Math.max(0, Math.round(p.deadline - performance.now()))), false);
    }
  }

  // An async handler finished (its reply is queued): work through what queued behind it.
  #settle(ev: MessageEvent | undefined, startMs: number): void {
    this.#blocked = false;
    if (ev !== undefined) {
      ev.startMs = startMs;
      this.#outbox.handled(ev);
    }
    if (this.#state === 'closed') {
      this.#outbox.complete(performance.now());
      return;
    }
    this.#clock = performance.now();
    this.#outbox.inBatch = true;
    try {
      const backlog = this.#backlog;
      while (backlog !== undefined && backlog.length > 0 && !this.#blocked && this.#closeAfterReply === undefined) {
        const frame = backlog.shift() as Buffer;
        this.#handleFrame(frame, 0, frame.length);
      }
      if (this.#blocked) {
        this.#outbox.inBatch = false;
        this.#outbox.flush();
        return;
      }
      this.#backlog = undefined;
      this.#socket.resume();
      this.#afterBatch();
    } catch (err) {
      this.#fail(err);
    }
  }

  #afterBatch(): void {
    this.#outbox.inBatch = false;
    // An over-limit frame ends the stream: reply after everything before it.
    const err = this.#decoder.error;
    if (err !== undefined && this.#closeAfterReply === undefined) {
      const { length, max } = err.details as { length: number; max: number };
      this.#limit('limits.maxFrameBytes', length, max);
      const ev = this.#host.dispatcher.oversized(this, length, max);
      if (ev !== undefined) {
        ev.startMs = this.#clock;
        this.#outbox.handled(ev);
      }
      this.#closeAfterReply = 'protocol_error';
    }
    if (this.#closeAfterReply !== undefined) {
      this.#end(this.#closeAfterReply);
    } else {
      this.#outbox.flush();
      if (this.#peerEnded) this.#end('client_eof');
    }
  }

  // A message of the core's own (shutdown, timeout): queued like a push, written now or with the batch.
  #notice(message: ServerMessage, flushNow: boolean): void {
    this.push(replyPayload(message, undefined), message.type);
    if (flushNow && !this.#outbox.inBatch) this.#outbox.flush();
  }

  #limit(limit: LimitName, value: number, max: number): void {
    if (channels.limit.hasSubscribers) channels.limit.publish({ server: this.#host.view, clientId: this.clientId, limit, value, max });
  }

  /** Flush what is owed, then close cleanly (FIN after the last reply). */
  #end(reason: CloseReason): void {
    this.#setReason(reason);
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    this.#outbox.flush();
    if (!this.#socket.destroyed) this.#socket.destroySoon();
  }

  #armIdleTimeout(): void {
    const ms = this.#host.limits.idleTimeoutMs;
    this.#socket.setTimeout(ms, ms > 0 ? () => this.timeOut('limits.idleTimeoutMs', ms, ms) : undefined);
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

  #fail(err: unknown): void {
    this.#outbox.inBatch = false;
    this.#host.failed(this, err);
    this.destroy('error', err as Error);
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
    this.#outbox.close(this.#blocked);
    const reason = this.#closeReason ?? 'client_eof';
    this.#host.closed(this, {
      server: this.#host.view,
      clientId: this.clientId,
      clientName: this.#name,
      reason,
      detail: reason === 'closed_by_feature' ? this.#closeDetail : undefined,
      durationMs: performance.now() - this.openedAt,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      partialFrameBytes: this.#decoder.pendingBytes,
      error: this.#closeError,
    });
  }
}
