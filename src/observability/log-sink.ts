// Where log lines go: a file descriptor (stdout) written without ever blocking
// the event loop, with a bounded backlog. A supervisor's log reader can stall
// (a paused pager, a stuck shipper, a blocked journald); a daemon that writes
// its logs synchronously then stops serving. OpenSSH and PostgreSQL drop log
// output rather than service; so does this sink:
//
// - pipes, sockets and terminals are written through a non-blocking libuv
//   stream (epoll, no thread), so a full pipe only grows the backlog;
// - the backlog is bounded (log.maxBufferedBytes): a line that does not fit is
//   dropped and counted, and once the reader catches up one line says how many
//   were lost;
// - regular files and devices such as /dev/null cannot stall: written synchronously;
// - lines are written in batches: every FLUSH_INTERVAL_MS, or as soon as
//   FLUSH_BYTES are pending, one write for all of them. Per-connection lines at
//   thousands of connections a second then cost a system call (and a wake-up
//   of the log reader) per batch, not per line;
// - flush(timeoutMs) writes what is pending and waits, bounded, for the backlog
//   to reach the reader: every controlled exit calls it, so a reading consumer
//   gets every line. A kill -9 loses what is pending (at most FLUSH_INTERVAL_MS
//   of lines, at most FLUSH_BYTES) and the backlog (at most
//   log.maxBufferedBytes, only while the reader is slow).
//
// Node restores the O_NONBLOCK flag of its stdio descriptors at exit, so the
// terminal or pipe is left as it was found.

import { fstatSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isatty, WriteStream } from 'node:tty';

/** Counters of what the sink wrote and dropped (for metrics and the bench). */
export interface LogSinkStats {
  linesWritten: number;
  bytesWritten: number;
  linesDropped: number;
  bytesDropped: number;
  /** Bytes accepted but not yet taken by the reader. */
  bufferedBytes: number;
}

/** What was lost during one stall, reported once the reader caught up. */
export interface StallReport {
  linesDropped: number;
  bytesDropped: number;
  /** From the first dropped line to the moment the backlog emptied, in ms. */
  stalledMs: number;
}

export interface LogSinkOptions {
  /** Descriptor to write to. Default: 1 (stdout). */
  fd?: number;
  /** Bytes of log lines held while the reader is not reading; beyond it lines are dropped. Default: 1048576. */
  maxBufferedBytes?: number;
}

/** Longest a line waits before it is written, in ms (what a kill -9 can lose, besides the backlog). */
export const FLUSH_INTERVAL_MS = 20;
/** Pending bytes that are written at once, without waiting for the interval. */
export const FLUSH_BYTES = 16 * 1024;

/** How often a stalled sink checks whether its reader caught up, in ms. */
const STALL_CHECK_MS = 50;

/** Default of log.maxBufferedBytes: 1 MiB, about 4,000 typical lines. */
export const DEFAULT_LOG_BUFFER_BYTES = 1024 * 1024;

type Kind = 'stream' | 'sync';

export class LogSink {
  readonly fd: number;
  readonly maxBufferedBytes: number;
  /** Called once per stall, when the backlog has drained after drops. */
  onStallEnd: ((report: StallReport) => void) | undefined;
  #kind: Kind;
  #stream: Socket | WriteStream | undefined;
  #broken = false;
  #stats: LogSinkStats = { linesWritten: 0, bytesWritten: 0, linesDropped: 0, bytesDropped: 0, bufferedBytes: 0 };
  // Drops since the last report, and when the first of them happened.
  #stallLines = 0;
  #stallBytes = 0;
  #stallSince = 0;
  // While lines are being dropped: watches for the backlog to empty.
  #stallTimer: NodeJS.Timeout | undefined;
  // Lines accepted since the last write, written together (FLUSH_INTERVAL_MS, FLUSH_BYTES).
  #flushTimer: NodeJS.Timeout | undefined;
  #pending = '';
  #pendingLines = 0;
  #pendingBytes = 0;

  constructor(options: LogSinkOptions = {}) {
    this.fd = options.fd ?? 1;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_LOG_BUFFER_BYTES;
    this.#kind = streamKind(this.fd);
    if (this.#kind === 'stream') {
      const stream = isatty(this.fd) ? nonBlockingTty(this.fd) : new Socket({ fd: this.fd, readable: false, writable: true });
      // The reader went away (EPIPE): nothing more can be delivered; later lines count as dropped.
      stream.on('error', () => {
        this.#broken = true;
      });
      // Never keeps the process alive by itself.
      (stream as Socket).unref?.();
      this.#stream = stream;
    }
  }

  /** A copy of the counters. */
  get stats(): LogSinkStats {
    return { ...this.#stats, bufferedBytes: this.#buffered() };
  }

  #buffered(): number {
    return this.#stream === undefined ? 0 : this.#stream.writableLength;
  }

  /** pino's destination interface: one serialised line, newline included. */
  write(line: string): boolean {
    const bytes = line.length; // close enough for the bound: log lines are mostly ASCII
    if (this.#broken || (this.#stream !== undefined && this.#stream.writableLength + this.#pendingBytes + bytes > this.maxBufferedBytes)) {
      this.#drop(bytes);
      return false;
    }
    if (this.#pendingLines === 0) this.#flushTimer = setTimeout(this.#writePending, FLUSH_INTERVAL_MS).unref();
    this.#pending += line;
    this.#pendingLines++;
    this.#pendingBytes += bytes;
    this.#wrote(bytes);
    if (this.#pendingBytes >= FLUSH_BYTES) this.#writePending();
    return true;
  }

  // One write for the lines of one turn.
  #writePending = (): void => {
    clearTimeout(this.#flushTimer);
    if (this.#pendingLines === 0) return;
    const text = this.#pending;
    const lines = this.#pendingLines;
    const bytes = this.#pendingBytes;
    this.#pending = '';
    this.#pendingLines = 0;
    this.#pendingBytes = 0;
    if (this.#broken) {
      this.#unwrite(lines, bytes);
      return;
    }
    if (this.#stream !== undefined) {
      this.#stream.write(text);
      return;
    }
    try {
      writeSync(this.fd, text);
    } catch {
      this.#unwrite(lines, bytes); // ENOSPC, EBADF...: lose the lines, never the server
    }
  };

  // Lines counted as written that could not be: count them as dropped instead.
  #unwrite(lines: number, bytes: number): void {
    this.#stats.linesWritten -= lines;
    this.#stats.bytesWritten -= bytes;
    this.#drop(bytes, lines);
  }

  #wrote(bytes: number): void {
    this.#stats.linesWritten++;
    this.#stats.bytesWritten += bytes;
  }

  #drop(bytes: number, lines = 1): void {
    this.#stats.linesDropped += lines;
    this.#stats.bytesDropped += bytes;
    if (this.#stallLines === 0) this.#stallSince = performance.now();
    this.#stallLines += lines;
    this.#stallBytes += bytes;
    // The stream's 'drain' is not emitted for a backlog kept below its high-water
    // mark: watch the backlog instead, only while a stall lasts.
    if (this.#stallTimer === undefined && this.#stream !== undefined && !this.#broken) {
      this.#stallTimer = setInterval(() => this.#checkStallEnd(), STALL_CHECK_MS).unref();
    }
  }

  #checkStallEnd(): void {
    if (this.#broken) {
      clearInterval(this.#stallTimer);
      this.#stallTimer = undefined;
      return;
    }
    if (this.#buffered() > 0) return;
    clearInterval(this.#stallTimer);
    this.#stallTimer = undefined;
    const report: StallReport = { linesDropped: this.#stallLines, bytesDropped: this.#stallBytes, stalledMs: Math.round(performance.now() - this.#stallSince) };
    this.#stallLines = 0;
    this.#stallBytes = 0;
    this.onStallEnd?.(report);
  }

  /**
   * Wait until every accepted line has been handed to the reader, or
   * `timeoutMs` has passed. Resolves true when nothing is left. Never rejects.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    this.#writePending();
    // At least one turn of the event loop, and every turn while something is
    // left: lines logged meanwhile (the clients a forced exit just cut off log
    // theirs when their sockets close) are written too, not left pending.
    do {
      await delay(5);
      this.#writePending();
    } while (!this.#broken && (this.#pendingLines > 0 || this.#buffered() > 0) && performance.now() < deadline);
    return this.#pendingLines === 0 && this.#buffered() === 0;
  }
}

// Pipes, sockets and terminals can stall; files and devices such as /dev/null cannot.
function streamKind(fd: number): Kind {
  try {
    const st = fstatSync(fd);
    if (st.isFIFO() || st.isSocket()) return 'stream';
    if (st.isCharacterDevice() && isatty(fd)) return 'stream';
  } catch {
    // a closed descriptor: writes fail and are counted as drops
  }
  return 'sync';
}

// Node makes a terminal's writes blocking (so Ctrl-S would freeze the
// daemon); undo that for this stream only.
function nonBlockingTty(fd: number): WriteStream {
  const tty = new WriteStream(fd);
  // Node's internal handle, reached by name; nothing happens where it is not there.
  const handle: unknown = Reflect.get(tty, '_handle');
  if (typeof handle === 'object' && handle !== null && 'setBlocking' in handle && typeof handle.setBlocking === 'function') handle.setBlocking(false);
  return tty;
}
