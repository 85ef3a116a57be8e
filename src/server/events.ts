// What the server core reports, as plain self-contained event objects: the
// payloads of the diagnostics channels in channels.ts (docs/observability.md,
// "Diagnostics channels", lists every channel with its payload and guarantees).
// The core builds them; it never formats a log line, updates a metric or
// starts a span. Observability, fugue's features and anyone else subscribe.
//
// Every event names the server it comes from (`server`, the ServerView that
// features also get): channels are process-wide, and one process may run
// several servers.

import { performance } from 'node:perf_hooks';
import type { MessageId } from '../protocol/index.js';
import type { ServerView } from './view.js';

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
  'closed_by_feature', // a feature closed it (ClientHandle.close)
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

/** The limits a connection can run into (their configuration keys). */
export type LimitName = 'limits.maxFrameBytes' | 'limits.maxBufferedBytes' | 'limits.handshakeTimeoutMs' | 'limits.frameTimeoutMs' | 'limits.idleTimeoutMs';

/** `fugue:server:listening`: the server accepts connections. */
export interface ListeningEvent {
  server: ServerView;
  socketPath: string;
  pid: number;
  /** The client limit in force. */
  maxClients: number;
  /** Soft RLIMIT_NOFILE, when it could be read. */
  openFilesLimit: number | undefined;
  /** True when serving a socket passed by the service manager. */
  activated: boolean;
  /** False when the socket path does not hold the socket served (socket-activated with socket.path naming another path). */
  socketHealthy: boolean;
}

/** `fugue:server:socket`: the socket path stopped or started holding this server's listening socket. */
export interface SocketEvent {
  server: ServerView;
  socketPath: string;
  /** lost: missing or replaced; restored: ours again. */
  state: 'lost' | 'restored';
  /** Socket-activated: the service manager owns the file, the server never re-creates it. */
  activated: boolean;
  /** restored: how long it was lost, in ms. */
  downMs: number;
  /** restored: re-created by this server (else put back by someone). */
  recreated: boolean;
}

/** `fugue:server:client-limit`: the client limit in force changed (a reload changed limits.maxClients). */
export interface ClientLimitEvent {
  server: ServerView;
  maxClients: number;
}

/** `fugue:server:accept-error`: the listener reported a failed accept; it keeps listening. */
export interface AcceptErrorEvent {
  server: ServerView;
  error: NodeJS.ErrnoException;
}

/** `fugue:server:rejected`: an accepted connection was turned away before it became a client. */
export interface RejectEvent {
  server: ServerView;
  reason: RejectReason;
  /** The client limit in force (server_busy). */
  maxClients: number;
}

/** `fugue:server:drain`: a graceful drain started. */
export interface DrainEvent {
  server: ServerView;
  /** Clients connected when it started. */
  clients: number;
  timeoutMs: number;
}

/** `fugue:server:drained`: the drain ended. */
export interface DrainedEvent {
  server: ServerView;
  durationMs: number;
  /** Clients that left by themselves. */
  left: number;
  /** Clients still connected at the deadline (or at a forced stop), closed by the server. */
  forced: number;
}

/**
 * `fugue:server:notice`: something an operator may want to know that is not
 * a metric: each `code` has its fields (docs/observability.md lists them); the
 * logs subscriber turns each into one line.
 */
export type NoticeEvent =
  | { server: ServerView | undefined; code: 'socket_dir_created'; dir: string; mode: string }
  | { server: ServerView | undefined; code: 'stale_socket_removed'; socketPath: string }
  | { server: ServerView | undefined; code: 'pid_file_failed'; pidFile: string; error: Error }
  | { server: ServerView | undefined; code: 'socket_bound'; socketPath: string; ino: number; dev: number }
  | { server: ServerView; code: 'activation_path_mismatch'; socketPath: string; boundPath: string | undefined }
  | { server: ServerView; code: 'socket_rebind_failed'; socketPath: string; error: Error }
  | { server: ServerView; code: 'fd_budget_low'; maxClients: number; effectiveMaxClients: number; openFilesLimit: number | undefined; openNow: number | undefined; reserved: number }
  | { server: ServerView; code: 'client_input_failed'; clientId: number; error: unknown }
  | { server: ServerView; code: 'feature_failed'; feature: string; hook: string; clientId: number | undefined; error: unknown };

/** The `code` of a NoticeEvent. */
export type NoticeCode = NoticeEvent['code'];

/** `fugue:connection:opened`: a connection was accepted and became a client (before its handshake). */
export interface OpenEvent {
  server: ServerView;
  clientId: number;
  socketPath: string;
}

/** `fugue:connection:handshake`: a client completed `connect`. */
export interface HandshakeEvent {
  server: ServerView;
  clientId: number;
  clientName: string | undefined;
}

/** `fugue:message`: one client message, handled: what it was, what came of it, and when. */
export interface MessageEvent {
  server: ServerView;
  clientId: number;
  /** The message type as sent ('' when the frame did not parse). Any client string: map it before using it as a label. */
  type: string;
  /** True when the type is the protocol's or a feature's. */
  known: boolean;
  id: MessageId | undefined;
  /** Payload size, in bytes. */
  bytes: number;
  /** The type of the reply sent, if any. */
  replyType: string | undefined;
  /** The error code replied, if the reply was an `error` (a protocol code or a feature's). */
  errorCode: string | undefined;
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

/**
 * `fugue:push`: an unsolicited message (no `id`) went to one client
 * (ClientHandle.send, the core's `shutdown` notice and timeout errors) or to
 * a stream's subscribers (Stream.publish).
 */
export interface PushEvent {
  server: ServerView;
  type: string;
  /** The receiving client (one recipient), or undefined for a stream's publish. */
  clientId: number | undefined;
  /** The stream's name, for a publish. */
  stream: string | undefined;
  /** Clients it was queued for. */
  recipients: number;
  /** Subscribers that were skipped because they had fallen behind (a stream whose slow policy is `drop`). */
  dropped: number;
  /** The client whose message's handler sent it, if one did. */
  fromClientId: number | undefined;
  /** performance.now() when it was queued, and when it was written (one recipient) or queued for all (a publish), in ms. */
  startMs: number;
  endMs: number;
}

/** A PushEvent, its endMs left at 0 for whoever writes it (the only place one is made). */
export function pushEvent(server: ServerView, type: string, clientId: number | undefined, stream: { name: string; recipients: number; dropped: number } | undefined, fromClientId: number | undefined): PushEvent {
  return {
    server,
    type,
    clientId,
    stream: stream?.name,
    recipients: stream === undefined ? 1 : stream.recipients,
    dropped: stream === undefined ? 0 : stream.dropped,
    fromClientId,
    startMs: performance.now(),
    endMs: 0,
  };
}

/** `fugue:stream`: a subscriber of a `drop` stream fell behind (paused) or caught up and was told what it missed (resumed). */
export interface StreamEvent {
  server: ServerView;
  stream: string;
  clientId: number;
  state: 'paused' | 'resumed';
  /** resumed: messages it missed while paused. */
  missed: number;
}

/** `fugue:connection:limit`: a per-connection limit was enforced (the client was told, then disconnected). */
export interface LimitEvent {
  server: ServerView;
  clientId: number;
  limit: LimitName;
  /** What was seen (a frame length, the unsent bytes, the elapsed ms) and what is allowed. */
  value: number;
  max: number;
}

/** `fugue:connection:closed`: a connection ended: why, how long it lasted, and what went through it. Exactly once per opened connection. */
export interface CloseEvent {
  server: ServerView;
  clientId: number;
  clientName: string | undefined;
  reason: CloseReason;
  /** closed_by_feature: the reason the feature gave. */
  detail: string | undefined;
  durationMs: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Bytes of an unfinished frame left when the connection ended. */
  partialFrameBytes: number;
  error: Error | undefined;
}

/** `fugue:config:reload`: a configuration reload was applied (`ok`) or refused (the running configuration stays). Published by the App. */
export interface ReloadEvent {
  server: ServerView;
  ok: boolean;
  /** Keys whose new values are in force. */
  applied: readonly string[];
  /** Keys that changed but keep their running values until a restart. */
  restartRequired: readonly string[];
  /** Why it was refused. */
  error: Error | undefined;
}
