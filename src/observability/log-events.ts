// Log lines from the server's events (docs/operations.md, "Logs"): a lowercase
// event phrase plus structured fields. Nothing is logged per message at info;
// lines are built only at a level that writes them; refusals, which an
// attacker can repeat at will, are rate-limited.

import type { CloseEvent, LimitEvent, MessageEvent, PushEvent, RejectReason } from '../server/instrumentation.js';
import type { Logger } from './logger.js';
import { ABNORMAL_CLOSE } from './spans.js';
import { LogThrottle } from './throttle.js';

export class LogEvents {
  readonly log: Logger;
  #info: boolean;
  #debug: boolean;
  #throttle: LogThrottle;

  constructor(log: Logger) {
    this.log = log;
    // Cached: asked once per connection. A reload may change the level.
    this.#info = log.isLevelEnabled('info');
    this.#debug = log.isLevelEnabled('debug');
    log.on('level-change', () => {
      this.#info = log.isLevelEnabled('info');
      this.#debug = log.isLevelEnabled('debug');
    });
    this.#throttle = new LogThrottle(log);
  }

  listening(info: { socketPath: string; maxClients: number; openFilesLimit: number | undefined }): void {
    this.log.info({ socketPath: info.socketPath, maxClients: info.maxClients, openFilesLimit: info.openFilesLimit }, 'server listening');
  }

  socketLost(info: { socketPath: string }): void {
    this.log.warn(info, 'socket file was removed or replaced; re-creating it');
  }

  socketRestored(info: { socketPath: string; downMs: number; recreated: boolean }): void {
    this.log.warn({ socketPath: info.socketPath, downMs: Math.round(info.downMs) }, info.recreated ? 'socket re-created' : "socket path holds this server's socket again");
  }

  acceptError(err: NodeJS.ErrnoException): void {
    this.log.error({ code: err.code ?? 'UNKNOWN', err }, 'accept failed; still listening');
  }

  rejected(listener: 'socket' | 'http', reason: RejectReason | 'limit' | 'idle'): void {
    this.#throttle.warn(`${listener}:${reason}`, { listener, reason }, 'connection rejected');
  }

  draining(info: { clients: number; timeoutMs: number }): void {
    this.log.info({ phase: 'drain', clients: info.clients, timeoutMs: info.timeoutMs }, 'drain started: socket removed, shutdown sent to clients');
  }

  drained(info: { durationMs: number; left: number; forced: number }): void {
    this.log.info({ phase: 'drained', durationMs: Math.round(info.durationMs), left: info.left, forced: info.forced }, 'drain finished');
  }

  // At debug, not info: one line per connection at info (`client disconnected`,
  // with everything about it) costs half of two, and at thousands of
  // connections a second the log was a fifth of the server's time
  // (docs/performance.md). `fuguectl clients` lists who is connected now.
  connected(clientId: number): void {
    if (this.#debug) this.log.debug({ clientId }, 'client connected');
  }

  handshake(clientId: number, clientName: string | undefined): void {
    if (this.#debug) this.log.debug({ clientId, clientName }, 'client handshake complete');
  }

  /** A handler threw or rejected: the client got `internal`. */
  handlerFailed(ev: MessageEvent): void {
    this.log.error({ clientId: ev.clientId, type: ev.type, err: ev.error }, 'message handler failed');
  }

  pushed(ev: PushEvent): void {
    if (this.#debug) this.log.debug({ clientId: ev.clientId, type: ev.type, fromClientId: ev.fromClientId }, 'message pushed to client');
  }

  limit(ev: LimitEvent): void {
    if (ev.limit === 'limits.maxFrameBytes') {
      this.log.warn({ clientId: ev.clientId, frameLength: ev.value, maxFrameBytes: ev.max }, 'frame too large, closing connection');
    } else {
      this.log.warn({ clientId: ev.clientId, bufferedBytes: ev.value, maxBufferedBytes: ev.max }, 'client is not reading its replies, disconnecting it');
    }
  }

  closed(ev: CloseEvent): void {
    const abnormal = ABNORMAL_CLOSE.has(ev.reason);
    // Normal closes are logged at info: above that level, skip building the line.
    if (!abnormal && !this.#info) return;
    const fields = {
      clientId: ev.clientId,
      clientName: ev.clientName,
      reason: ev.reason,
      durationMs: Math.round(ev.durationMs),
      messagesIn: ev.messagesIn,
      messagesOut: ev.messagesOut,
      bytesIn: ev.bytesIn,
      bytesOut: ev.bytesOut,
      ...(ev.partialFrameBytes > 0 ? { partialFrameBytes: ev.partialFrameBytes } : {}),
      ...(ev.error ? { err: ev.error } : {}),
    };
    if (abnormal) this.log.warn(fields, 'client disconnected');
    else this.log.info(fields, 'client disconnected');
  }
}
