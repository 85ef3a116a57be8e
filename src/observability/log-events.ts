// Log lines from the server's events (docs/operations.md, "Logs"): a lowercase
// event phrase plus structured fields. The core writes no log text; every
// line about it is made here. Nothing is logged per message at info; lines
// are built only at a level that writes them; refusals, which an attacker can
// repeat at will, are rate-limited.

import type {
  AcceptErrorEvent,
  CloseEvent,
  DrainedEvent,
  DrainEvent,
  LimitEvent,
  ListeningEvent,
  MessageEvent,
  NoticeCode,
  NoticeEvent,
  PushEvent,
  RejectReason,
  ReloadEvent,
  SocketEvent,
  StreamEvent,
} from '../server/events.js';
import type { Logger } from './logger.js';
import { ABNORMAL_CLOSE } from './spans.js';
import { LogThrottle } from './throttle.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** Each notice's level, phrase and fields. */
const NOTICES: { [C in NoticeCode]: (ev: Extract<NoticeEvent, { code: C }>) => [Level, object, string] } = {
  socket_dir_created: (ev) => ['info', { dir: ev.dir, mode: ev.mode }, 'created socket directory'],
  stale_socket_removed: (ev) => ['info', { socketPath: ev.socketPath }, 'removed stale socket left by a server that is no longer running'],
  pid_file_failed: (ev) => ['warn', { err: ev.error, pidFile: ev.pidFile }, 'could not write pid file; "already running" errors will not name this pid'],
  socket_bound: (ev) => ['debug', { socketPath: ev.socketPath, ino: ev.ino, dev: ev.dev }, 'socket bound'],
  activation_path_mismatch: (ev) => [
    'error',
    { socketPath: ev.socketPath, boundPath: ev.boundPath },
    `socket-activated, but socket.path does not name the socket the service manager passed${ev.boundPath === undefined ? '' : ` (it is bound at ${ev.boundPath})`}: set socket.path (FUGUE_SOCKET_PATH) to the .socket unit's ListenStream= path; until then the server reports not ready`,
  ],
  socket_rebind_failed: (ev) => ['error', { err: ev.error, socketPath: ev.socketPath }, 'cannot re-create the socket; will retry'],
  fd_budget_low: (ev) => [
    'warn',
    { maxClients: ev.maxClients, effectiveMaxClients: ev.effectiveMaxClients, openFilesLimit: ev.openFilesLimit, openNow: ev.openNow, reserved: ev.reserved },
    'the open-files limit leaves room for fewer clients than limits.maxClients; raise it (ulimit -n, LimitNOFILE=)',
  ],
  client_input_failed: (ev) => ['error', { clientId: ev.clientId, err: ev.error }, 'unexpected error handling client input; closing this connection'],
  feature_failed: (ev) => ['error', { feature: ev.feature, hook: ev.hook, clientId: ev.clientId, err: ev.error }, `feature "${ev.feature}" failed in ${ev.hook}; the server carries on`],
};

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

  notice(ev: NoticeEvent): void {
    const [level, fields, msg] = (NOTICES[ev.code] as (e: NoticeEvent) => [Level, object, string])(ev);
    if (level === 'debug' && !this.#debug) return;
    this.log[level](fields, msg);
  }

  listening(ev: ListeningEvent): void {
    this.log.info({ socketPath: ev.socketPath, maxClients: ev.maxClients, openFilesLimit: ev.openFilesLimit, activated: ev.activated }, 'server listening');
  }

  socket(ev: SocketEvent): void {
    if (ev.state === 'restored') {
      this.log.warn({ socketPath: ev.socketPath, downMs: Math.round(ev.downMs) }, ev.recreated ? 'socket re-created' : "socket path holds this server's socket again");
    } else if (ev.activated) {
      this.log.error({ socketPath: ev.socketPath }, 'the socket-activated socket file is gone or is not the one passed; clients cannot connect until the .socket unit is restarted (systemctl restart fugue-server.socket)');
    } else {
      this.log.warn({ socketPath: ev.socketPath }, 'socket file was removed or replaced; re-creating it');
    }
  }

  acceptError(ev: AcceptErrorEvent): void {
    this.log.error({ code: ev.error.code ?? 'UNKNOWN', err: ev.error }, 'accept failed; still listening');
  }

  rejected(listener: 'socket' | 'http', reason: RejectReason | 'limit' | 'idle'): void {
    this.#throttle.warn(`${listener}:${reason}`, { listener, reason }, 'connection rejected');
  }

  draining(ev: DrainEvent): void {
    this.log.info({ phase: 'drain', clients: ev.clients, timeoutMs: ev.timeoutMs }, 'drain started: socket removed, shutdown sent to clients');
  }

  drained(ev: DrainedEvent): void {
    this.log.info({ phase: 'drained', durationMs: Math.round(ev.durationMs), left: ev.left, forced: ev.forced }, 'drain finished');
  }

  reload(ev: ReloadEvent): void {
    if (!ev.ok) {
      const err = ev.error as (Error & { code?: string; details?: object }) | undefined;
      const fields = err?.code !== undefined ? { code: err.code, ...err.details } : { err };
      this.log.error(fields, `configuration reload refused, the running configuration stays: ${err?.message ?? 'unknown error'}`);
      return;
    }
    const { applied, restartRequired } = ev;
    this.log.info({ applied, restartRequired }, applied.length === 0 && restartRequired.length === 0 ? 'configuration reloaded: nothing changed' : 'configuration reloaded');
    if (restartRequired.length > 0) this.log.warn({ keys: restartRequired }, 'configuration reload: these keys only take effect after a restart and keep their running values');
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
    if (!this.#debug) return;
    if (ev.stream === undefined) this.log.debug({ clientId: ev.clientId, type: ev.type, fromClientId: ev.fromClientId }, 'message pushed to client');
    else this.log.debug({ stream: ev.stream, type: ev.type, recipients: ev.recipients, dropped: ev.dropped }, 'message published to stream');
  }

  stream(ev: StreamEvent): void {
    if (ev.state === 'paused') this.log.warn({ stream: ev.stream, clientId: ev.clientId }, 'stream subscriber is not reading: its messages are dropped until it catches up');
    else this.log.info({ stream: ev.stream, clientId: ev.clientId, missed: ev.missed }, 'stream subscriber caught up; told how many messages it missed');
  }

  limit(ev: LimitEvent): void {
    if (ev.limit === 'limits.maxFrameBytes') {
      this.log.warn({ clientId: ev.clientId, frameLength: ev.value, maxFrameBytes: ev.max }, 'frame too large, closing connection');
    } else if (ev.limit === 'limits.maxBufferedBytes') {
      this.log.warn({ clientId: ev.clientId, bufferedBytes: ev.value, maxBufferedBytes: ev.max }, 'client is not reading its replies, disconnecting it');
    }
    // Timeouts are logged with the close (reason `timeout`).
  }

  closed(ev: CloseEvent): void {
    const abnormal = ABNORMAL_CLOSE.has(ev.reason);
    // Normal closes are logged at info: above that level, skip building the line.
    if (!abnormal && !this.#info) return;
    // One object literal of a fixed shape, the rare fields added after it
    // (conditional spreads here cost a fifth of the line's time at churn).
    const fields: Record<string, unknown> = {
      clientId: ev.clientId,
      clientName: ev.clientName,
      reason: ev.reason,
      durationMs: Math.round(ev.durationMs),
      messagesIn: ev.messagesIn,
      messagesOut: ev.messagesOut,
      bytesIn: ev.bytesIn,
      bytesOut: ev.bytesOut,
    };
    if (ev.detail !== undefined) fields.detail = ev.detail;
    if (ev.partialFrameBytes > 0) fields.partialFrameBytes = ev.partialFrameBytes;
    if (ev.error) fields.err = ev.error;
    if (abnormal) this.log.warn(fields, 'client disconnected');
    else this.log.info(fields, 'client disconnected');
  }
}
