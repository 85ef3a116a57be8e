// The one seam between the server core and observability. The core reports
// what happened, as plain self-contained events (undici's diagnostics_channel
// messages are the model): a connection opened or closed, a message handled
// with its timings and outcome, a limit enforced. How those become spans,
// metrics and log lines, and how metric updates are batched, is
// src/observability's business. The no-op default keeps the core usable (and
// testable) on its own.

import type { MessageId, ProtocolErrorCode } from '../protocol/index.js';

/**
 * Why a connection ended. Bounded: these are metric label values, and the
 * metrics export each one at 0 from startup (so the first close of a kind is
 * an increase that alerts can see).
 */
export const CLOSE_REASONS = [
  'client_eof', // the client closed its end
  'client_reset', // ECONNRESET / EPIPE
  'detach', // the client sent `detach`
  'error', // another socket error
  'timeout', // handshake, frame or idle timeout
  'slow_consumer', // the client stopped reading: over limits.maxBufferedBytes
  'protocol_error', // frame_too_large or unsupported_version: the server closed it
  'shutdown_forced', // still open at the end of a graceful drain
] as const;
/** Why a connection ended (one of CLOSE_REASONS). */
export type CloseReason = (typeof CLOSE_REASONS)[number];

/** Why an accepted connection was turned away before it became a client (metric label values, like CLOSE_REASONS). */
export const REJECT_REASONS = [
  'server_busy', // at the client limit: told so, then closed
  'draining', // arrived while the server drains: told so (server_busy), then closed
  'fd_limit', // over net.Server.maxConnections: closed by Node at once (no fd to spare)
] as const;
/** Why an accepted connection was turned away (one of REJECT_REASONS). */
export type RejectReason = (typeof REJECT_REASONS)[number];

/** One client message, handled: what it was, what came of it, and when. */
export interface MessageEvent {
  clientId: number;
  /** The message type as sent ('' when the frame did not parse). Any client string: map it before using it as a label. */
  type: string;
  /** True when a handler is registered for `type`. */
  known: boolean;
  id: MessageId | undefined;
  /** Payload size, in bytes. */
  bytes: number;
  /** The protocol error replied, if any. */
  errorCode: ProtocolErrorCode | undefined;
  /** What a handler threw or rejected with (the reply was `internal`). */
  error: unknown;
  /** The client's W3C trace context, as sent (unvalidated). */
  traceparent: unknown;
  tracestate: unknown;
  /** performance.now() when the read that delivered it was handled (for a message that waited behind an async handler: when its handling began), in ms. */
  startMs: number;
  /** performance.now() when its reply was written (or, without a reply, when the batch it came in was), in ms. */
  endMs: number;
}

/** An unsolicited message a feature sent to a client (extension API: ClientHandle.send). */
export interface PushEvent {
  /** The receiving client. */
  clientId: number;
  type: string;
  /** The client whose message's handler sent it, if one did. */
  fromClientId: number | undefined;
  /** performance.now() when it was queued and when it was written, in ms. */
  startMs: number;
  endMs: number;
}

/** A per-connection limit that was enforced. */
export interface LimitEvent {
  clientId: number;
  /** The configuration key of the limit. */
  limit: 'limits.maxFrameBytes' | 'limits.maxBufferedBytes';
  /** What was seen (a frame length, the unsent bytes) and what is allowed, in bytes. */
  value: number;
  max: number;
}

/** A connection ended: why, how long it lasted, and what went through it. */
export interface CloseEvent {
  clientId: number;
  clientName: string | undefined;
  reason: CloseReason;
  durationMs: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Bytes of an unfinished frame left when the connection ended. */
  partialFrameBytes: number;
  error: Error | undefined;
}

/** Kept for the 0.1 API: the close event. */
export type CloseInfo = CloseEvent;

/** A connection was accepted. */
export interface ConnectionInfo {
  clientId: number;
  socketPath: string;
}

/** Per-connection hooks: one object per accepted client. */
export interface ConnectionObserver {
  handshake(clientName: string | undefined): void;
  /** Once per client message, after its reply was written (or the connection closed first). The event is the observer's to keep. */
  message(event: MessageEvent): void;
  /** Once per message the server queued for this client, replies and unsolicited ones, by type. */
  sent(type: string): void;
  /** Once per unsolicited message from a feature, after it was written. */
  pushed(event: PushEvent): void;
  /** Bytes read from the client (per read). */
  read(bytes: number): void;
  /** Bytes written to the client (per write). */
  written(bytes: number): void;
  limit(event: LimitEvent): void;
  /** Called exactly once. */
  closed(event: CloseEvent): void;
}

/** Minimal structured logger (pino-compatible). */
export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the server core reports. Implemented by src/observability; `noopInstrumentation` does nothing. */
export interface Instrumentation {
  readonly log: Log;
  listening(info: { socketPath: string; pid: number; maxClients: number; openFilesLimit: number | undefined }): void;
  /** The socket path no longer holds this server's socket; it is re-created when the path is free. */
  socketLost(info: { socketPath: string }): void;
  /** The path holds this server's socket again: re-created by it (`recreated`), or put back by someone. */
  socketRestored(info: { socketPath: string; downMs: number; recreated: boolean }): void;
  /** The client limit in force changed (a reload changed limits.maxClients). */
  clientLimit(info: { maxClients: number }): void;
  acceptError(err: NodeJS.ErrnoException): void;
  rejected(reason: RejectReason): void;
  connection(info: ConnectionInfo): ConnectionObserver;
  draining(info: { clients: number; timeoutMs: number }): void;
  drained(info: { durationMs: number; left: number; forced: number }): void;
}

const noopLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

const noopObserver: ConnectionObserver = {
  handshake() {},
  message() {},
  sent() {},
  pushed() {},
  read() {},
  written() {},
  limit() {},
  closed() {},
};

/** Does nothing: the default when no observability is wired. */
export const noopInstrumentation: Instrumentation = {
  log: noopLog,
  listening() {},
  socketLost() {},
  socketRestored() {},
  clientLimit() {},
  acceptError() {},
  rejected() {},
  connection: () => noopObserver,
  draining() {},
  drained() {},
};
