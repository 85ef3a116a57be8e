// The one seam between the server core and observability. The core calls these
// hooks at each event; src/observability implements them with pino, prom-client
// and OpenTelemetry. The core never imports an exporter, and the no-op default
// keeps it usable (and testable) on its own.

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
  'timeout', // handshake or idle timeout
  'slow_consumer', // the client stopped reading: over limits.maxBufferedBytes
  'protocol_error', // frame_too_large or unsupported_version: the server closed it
  'shutdown_forced', // still open at the end of a graceful drain
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/** Why an accepted connection was turned away before it became a client (metric label values, like CLOSE_REASONS). */
export const REJECT_REASONS = [
  'server_busy', // at the client limit: told so, then closed
  'draining', // arrived while the server drains: told so (server_busy), then closed
  'fd_limit', // over net.Server.maxConnections: closed by Node at once (no fd to spare)
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Outcome of one message, as the observer sees it. */
export interface MessageRecord {
  /** The message type as sent (may be any client string: map it before using it as a label). */
  type: string;
  /** True when a handler is registered for `type`. */
  known: boolean;
  id: MessageId | undefined;
  /** Payload size in bytes. */
  bytes: number;
  /**
   * performance.now(), in ms, when the read that carried the message was
   * handled (for a message that waited behind an async handler: when its own
   * handling began). It ends when its reply is written: see `written()`.
   */
  startMs: number;
  /** The protocol error replied, if any. */
  errorCode: ProtocolErrorCode | undefined;
  traceparent: unknown;
  tracestate: unknown;
}

export interface CloseInfo {
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

export interface ConnectionInfo {
  clientId: number;
  socketPath: string;
}

/** Per-connection hooks: one object per accepted client. */
export interface ConnectionObserver {
  handshake(clientName: string | undefined): void;
  /** Called once per message, after its reply (if any) is queued. The record is reused: copy what you keep. */
  message(record: MessageRecord): void;
  /** A message the server sent, by type (replies and unsolicited ones). */
  sent(type: string): void;
  read(bytes: number): void;
  /**
   * Everything queued since the last call was written (`bytes` may be 0: the
   * messages had no reply), at `nowMs` (performance.now()): the messages
   * reported since then are complete. One clock read per write, not per message.
   */
  written(bytes: number, nowMs: number): void;
  /** Called exactly once. */
  closed(info: CloseInfo): void;
}

/** Minimal structured logger (pino-compatible). */
export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface Instrumentation {
  readonly log: Log;
  listening(info: { socketPath: string; pid: number; maxClients: number; openFilesLimit: number | undefined }): void;
  /** The socket file vanished or was replaced; the server is re-creating it. */
  socketLost(info: { socketPath: string }): void;
  socketRestored(info: { socketPath: string; downMs: number }): void;
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
  read() {},
  written() {},
  closed() {},
};

/** Does nothing: the default when no observability is wired. */
export const noopInstrumentation: Instrumentation = {
  log: noopLog,
  listening() {},
  socketLost() {},
  socketRestored() {},
  acceptError() {},
  rejected() {},
  connection: () => noopObserver,
  draining() {},
  drained() {},
};
