// Readiness, reload, stop and watchdog notification to a service manager
// (systemd's sd_notify(3) protocol: one AF_UNIX datagram of KEY=value lines to
// $NOTIFY_SOCKET). Without NOTIFY_SOCKET every call is a no-op and nothing
// native is loaded. With it, a notification that cannot be sent is logged
// (once per outage) and counted, never thrown: a service manager that went
// away must not take the server down with it. See docs/deployment.md.

import {
  formatMessage,
  parseNotifySocket,
  parseWatchdog,
  statusText,
  watchdogIntervalMs,
  type NotifyAddress,
  type WatchdogResult,
} from './notify-env.js';
import { koffiSenderFactory, NATIVE_MISSING, NATIVE_UNLOADABLE, type DatagramSender, type SenderFactory } from './unix-datagram.js';

/** The part of a pino logger the notifier uses. */
export interface NotifyLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const silentLogger: NotifyLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** The variables sd_notify(3) reads; `unsetEnvironment` removes exactly these. */
export const NOTIFY_ENV_KEYS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

export interface NotifierOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read, once, at construction (the CLI passes the process environment). */
  env: Record<string, string | undefined>;
  /** Where problems and the watchdog's start are logged. Default: nowhere. */
  log?: NotifyLogger;
  /** This process's pid, compared with WATCHDOG_PID. Default: `process.pid`. */
  pid?: number;
  /**
   * Delete NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from `env` once read
   * (sd_notify's `unset_environment`), so processes the server spawns do not
   * inherit them; the server does the same with LISTEN_*. Default: false.
   */
  unsetEnvironment?: boolean;
  /** How datagrams are sent. Default: libc sendto() through koffi, loaded only if NOTIFY_SOCKET is set. */
  senderFactory?: SenderFactory;
}

/**
 * `off`: NOTIFY_SOCKET unset, every call a no-op. `unavailable`: set, but
 * unusable (bad address, native module missing): logged once at construction,
 * every call a counted failure. `open`: sending. `closed`: after close().
 */
export type NotifierState = 'off' | 'unavailable' | 'open' | 'closed';

export interface NotifierStats {
  /** Datagrams delivered to the socket. */
  sent: number;
  /** Notifications that could not be delivered (including every one while `unavailable`). */
  failed: number;
  /** WATCHDOG=1 pings among `sent`. */
  watchdogPings: number;
  /** errno name (or reason) of the latest failure. */
  lastError: string | undefined;
}

/** CLOCK_MONOTONIC in µs. libuv's uv_hrtime(), behind process.hrtime, reads CLOCK_MONOTONIC on Linux. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

const FIELD_NAME = /^[A-Z_][A-Z0-9_]*$/;

export class Notifier {
  /** NOTIFY_SOCKET as it was given; undefined when unset. */
  readonly notifySocket: string | undefined;
  /** The watchdog timeout in µs when the watchdog is ours (WATCHDOG_USEC valid, WATCHDOG_PID ours or unset). */
  readonly watchdogUsec: number | undefined;
  /** What sends, e.g. "koffi 3.3.4: libc sendto()"; undefined unless `open`. */
  readonly mechanism: string | undefined;
  readonly #stats: NotifierStats = { sent: 0, failed: 0, watchdogPings: 0, lastError: undefined };
  readonly #log: NotifyLogger;
  #state: NotifierState;
  #sender: DatagramSender | undefined;
  #failing = false;
  #watchdogTimer: NodeJS.Timeout | undefined;

  constructor(options: NotifierOptions) {
    const { env } = options;
    this.#log = options.log ?? silentLogger;
    const socketText = env.NOTIFY_SOCKET;
    const watchdog = parseWatchdog(env.WATCHDOG_USEC, env.WATCHDOG_PID, options.pid ?? process.pid);
    if (options.unsetEnvironment) for (const key of NOTIFY_ENV_KEYS) delete env[key];

    this.notifySocket = socketText;
    this.#state = 'off';
    const parsed = parseNotifySocket(socketText);
    if (parsed === undefined) {
      this.watchdogUsec = undefined;
      this.mechanism = undefined;
      return;
    }
    this.#state = 'unavailable';
    if (!parsed.ok) {
      this.#unavailable(`NOTIFY_SOCKET=${JSON.stringify(socketText)} is unusable: ${parsed.reason}`, undefined);
    } else {
      this.#sender = this.#open(parsed.address, options.senderFactory ?? koffiSenderFactory());
      if (this.#sender !== undefined) this.#state = 'open';
    }
    this.mechanism = this.#sender?.mechanism;
    this.watchdogUsec = this.#watchdogFor(watchdog);
    if (this.#state === 'open') this.#log.debug({ notifySocket: socketText, mechanism: this.mechanism, watchdogUsec: this.watchdogUsec }, 'service manager notification enabled');
  }

  get state(): NotifierState {
    return this.#state;
  }

  /** Counters since construction (a copy). */
  get stats(): NotifierStats {
    return { ...this.#stats };
  }

  /** READY=1: start-up (or a reload) finished and clients are being served. */
  ready(status?: string): boolean {
    return this.#send([['READY', '1'], ...optionalStatus(status)]);
  }

  /**
   * RELOADING=1 with MONOTONIC_USEC (required by Type=notify-reload, systemd
   * >= 253; older managers ignore the extra field). Send ready() when the
   * reload is done, whether it succeeded or not.
   */
  reloading(status?: string): boolean {
    return this.#send([['RELOADING', '1'], ['MONOTONIC_USEC', String(monotonicUsec())], ...optionalStatus(status)]);
  }

  /** STOPPING=1: a graceful drain started. */
  stopping(status?: string): boolean {
    return this.#send([['STOPPING', '1'], ...optionalStatus(status)]);
  }

  /** STATUS=: one line shown by `systemctl status` (newlines folded, at most 1024 characters). */
  status(text: string): boolean {
    return this.#send([['STATUS', statusText(text)]]);
  }

  /**
   * EXTEND_TIMEOUT_USEC: ask for `ms` more milliseconds in the current state
   * (start-up, runtime or stop) before the manager's timeout fires; send it
   * again before that runs out if the work goes on.
   */
  extendTimeout(ms: number): boolean {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`extendTimeout(ms): ms must be a finite number >= 0, got ${ms}`);
    return this.#send([['EXTEND_TIMEOUT_USEC', String(Math.ceil(ms * 1000))]]);
  }

  /** Send any sd_notify fields, in order (names are upper-case, values one line). */
  notify(fields: ReadonlyArray<readonly [string, string]>): boolean {
    for (const [key, value] of fields) {
      if (!FIELD_NAME.test(key)) throw new TypeError(`notify(): field name must match ${FIELD_NAME.source}, got ${JSON.stringify(key)}`);
      if (/[\r\n]/.test(value)) throw new TypeError(`notify(): the value of ${key} must be one line`);
    }
    return this.#send(fields);
  }

  /**
   * Ping WATCHDOG=1 now and then every WATCHDOG_USEC/2 from an unref'd
   * interval on the event loop, so a blocked loop stops the pings and the
   * manager's watchdog fires. Returns false (and does nothing) when there is
   * no watchdog for this process; idempotent.
   */
  startWatchdog(): boolean {
    if (this.watchdogUsec === undefined || this.#state !== 'open') return false;
    if (this.#watchdogTimer !== undefined) return true;
    const intervalMs = watchdogIntervalMs(this.watchdogUsec);
    this.#ping();
    this.#watchdogTimer = setInterval(() => this.#ping(), intervalMs);
    this.#watchdogTimer.unref();
    this.#log.info({ watchdogUsec: this.watchdogUsec, intervalMs }, 'watchdog pings started');
    return true;
  }

  /** Stop the pings (idempotent). */
  stopWatchdog(): void {
    if (this.#watchdogTimer === undefined) return;
    clearInterval(this.#watchdogTimer);
    this.#watchdogTimer = undefined;
  }

  /** Stop the watchdog and close the socket; later calls are no-ops returning false. Idempotent. */
  close(): void {
    this.stopWatchdog();
    this.#sender?.close();
    this.#sender = undefined;
    if (this.#state !== 'off') this.#state = 'closed';
  }

  #open(address: NotifyAddress, factory: SenderFactory): DatagramSender | undefined {
    try {
      return factory(address);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.#unavailable(
        code === NATIVE_MISSING
          ? `NOTIFY_SOCKET=${address.text} is set but the optional dependency koffi, which sends the notifications, is not installed; reinstall fugue-server with optional dependencies, or run it with Type=simple`
          : code === NATIVE_UNLOADABLE
            ? `NOTIFY_SOCKET=${address.text} is set but koffi, which sends the notifications, does not load on this platform (${(err as Error).message}); run fugue-server with Type=simple`
            : `NOTIFY_SOCKET=${address.text} is set but no notification socket could be opened (${(err as Error).message}); run fugue-server with Type=simple if this platform cannot send AF_UNIX datagrams`,
        err,
      );
      return undefined;
    }
  }

  /** Logged once, at error level: a Type=notify unit would otherwise time out with no hint why. */
  #unavailable(message: string, err: unknown): void {
    this.#stats.lastError = 'unavailable';
    this.#log.error({ notifySocket: this.notifySocket, ...(err === undefined ? {} : { err }) }, `cannot notify the service manager: ${message}`);
  }

  #watchdogFor(watchdog: WatchdogResult): number | undefined {
    if (watchdog.enabled) return watchdog.usec;
    if (watchdog.invalid) this.#log.warn({ reason: watchdog.reason }, 'ignoring the watchdog settings: no watchdog pings will be sent');
    else if (watchdog.reason !== undefined) this.#log.debug({ reason: watchdog.reason }, 'the watchdog is not ours: no watchdog pings');
    return undefined;
  }

  #ping(): void {
    if (this.#send([['WATCHDOG', '1']])) this.#stats.watchdogPings++;
  }

  #send(fields: ReadonlyArray<readonly [string, string]>): boolean {
    if (this.#state === 'off' || this.#state === 'closed') return false;
    if (this.#sender === undefined) {
      this.#stats.failed++;
      return false;
    }
    const message = formatMessage(fields);
    try {
      this.#sender.send(Buffer.from(message));
    } catch (err) {
      this.#stats.failed++;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.#stats.lastError = code;
      // Once per outage: the watchdog would otherwise log every few seconds.
      if (!this.#failing) {
        this.#failing = true;
        this.#log.warn({ err, code, notifySocket: this.notifySocket, message }, 'a notification to the service manager was not delivered; further failures are counted, not logged, until one succeeds');
      }
      return false;
    }
    this.#stats.sent++;
    if (this.#failing) {
      this.#failing = false;
      this.#log.info({ notifySocket: this.notifySocket, failed: this.#stats.failed }, 'notifications to the service manager are delivered again');
    }
    return true;
  }
}

function optionalStatus(status: string | undefined): Array<readonly [string, string]> {
  return status === undefined ? [] : [['STATUS', statusText(status)]];
}
