// Pure parsing of the variables a service manager sets for sd_notify(3):
// NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. No I/O here, so every rule
// below is tested without a socket. The rules follow libsystemd's
// sd-daemon.c (socket_address_parse_unix(), sd_watchdog_enabled()).

/** sizeof(struct sockaddr_un.sun_path) on Linux. */
export const SUN_PATH_MAX = 108;

/** Where notifications go: a socket file, or a Linux abstract-namespace name. */
export type NotifyAddress =
  | { kind: 'path'; /** absolute path of the socket file */ path: string; /** NOTIFY_SOCKET as given */ text: string }
  | { kind: 'abstract'; /** the name without the leading '@' (sent as a leading NUL byte) */ name: string; text: string };

export type AddressResult = { ok: true; address: NotifyAddress } | { ok: false; reason: string };

/**
 * Parse NOTIFY_SOCKET. `undefined` means the variable is unset (not run by a
 * notify-aware manager: every notification is a no-op). An absolute path is a
 * socket file; `@name` is an abstract socket. Anything else (a relative path,
 * systemd 256's `vsock:CID:PORT`, a name longer than sun_path) is refused with
 * a reason, because the manager would never hear from us.
 */
export function parseNotifySocket(value: string | undefined): AddressResult | undefined {
  if (value === undefined) return undefined;
  if (value.startsWith('@')) {
    const name = value.slice(1);
    if (name === '') return { ok: false, reason: 'the abstract socket name after "@" is empty' };
    // The kernel name is a NUL byte followed by the name: 1 + length bytes of sun_path.
    if (1 + Buffer.byteLength(name) > SUN_PATH_MAX) return { ok: false, reason: `the abstract socket name is longer than ${SUN_PATH_MAX - 1} bytes` };
    return { ok: true, address: { kind: 'abstract', name, text: value } };
  }
  if (value.startsWith('/')) {
    // A path needs its terminating NUL inside sun_path too.
    if (Buffer.byteLength(value) + 1 > SUN_PATH_MAX) return { ok: false, reason: `the socket path is longer than ${SUN_PATH_MAX - 1} bytes` };
    return { ok: true, address: { kind: 'path', path: value, text: value } };
  }
  if (value.startsWith('vsock')) return { ok: false, reason: 'AF_VSOCK notify sockets are not supported (only AF_UNIX: an absolute path or an @abstract name)' };
  return { ok: false, reason: 'it is neither an absolute path nor an @abstract name' };
}

/** systemd's USEC_INFINITY (UINT64_MAX): "no timeout", never a watchdog. */
const USEC_INFINITY = 0xffff_ffff_ffff_ffffn;

export type WatchdogResult =
  | { enabled: true; usec: number }
  | { enabled: false; /** why not, for a log line; undefined when WATCHDOG_USEC is simply unset */ reason?: string; invalid?: boolean };

/**
 * Decide whether the watchdog is ours, as sd_watchdog_enabled() does:
 * WATCHDOG_USEC must be a decimal integer in (0, UINT64_MAX); if WATCHDOG_PID
 * is set it must be a valid pid and equal to `pid` (a child that inherited the
 * variables must not ping on its parent's behalf).
 */
export function parseWatchdog(usecText: string | undefined, pidText: string | undefined, pid: number): WatchdogResult {
  if (usecText === undefined) return { enabled: false };
  if (!/^[0-9]+$/.test(usecText)) return { enabled: false, invalid: true, reason: `WATCHDOG_USEC must be a positive integer (microseconds), got ${JSON.stringify(usecText)}` };
  const usec = BigInt(usecText);
  if (usec === 0n || usec >= USEC_INFINITY) return { enabled: false, invalid: true, reason: `WATCHDOG_USEC must be > 0 and finite, got ${JSON.stringify(usecText)}` };
  if (pidText !== undefined) {
    if (!/^[1-9][0-9]*$/.test(pidText) || Number(pidText) > 0x7fff_ffff) return { enabled: false, invalid: true, reason: `WATCHDOG_PID must be a process id, got ${JSON.stringify(pidText)}` };
    if (Number(pidText) !== pid) return { enabled: false, reason: `WATCHDOG_PID ${pidText} is another process (this is ${pid})` };
  }
  // Above 2^53 µs (285 years) precision does not matter any more.
  return { enabled: true, usec: Number(usec) };
}

/** Longest delay setInterval() accepts; longer ones fire after 1 ms instead. */
const MAX_TIMER_MS = 0x7fff_ffff;

/** Ping period: half the watchdog timeout (sd_watchdog_enabled(3) recommends it), in ms, >= 1. */
export function watchdogIntervalMs(usec: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(usec / 2000)));
}

/** The environment block of one notification: KEY=value lines, no trailing newline (as libsystemd sends). */
export function formatMessage(fields: ReadonlyArray<readonly [string, string]>): string {
  return fields.map(([k, v]) => `${k}=${v}`).join('\n');
}

/** Longest STATUS= text kept; the manager reads at most PIPE_BUF (4096) bytes per datagram. */
export const STATUS_MAX_CHARS = 1024;

/** STATUS= is one line a human reads in `systemctl status`: newlines folded, length bounded. */
export function statusText(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ');
  return line.length > STATUS_MAX_CHARS ? `${line.slice(0, STATUS_MAX_CHARS - 1)}…` : line;
}
