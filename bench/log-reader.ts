// The harness's side of bench/logreader.c, fugue's log consumer in the
// benchmark (bench/README.md, "The log consumer").
//
// A deployed fugue writes its logs to stdout, read by journald (a stream
// socket) or a container runtime (containerd's shim: FIFOs; conmon: pipes):
// another process, on whatever core the scheduler gives it, reading as lines
// come. The benchmark does the same with a separate C process reading two
// FIFOs, pinned to core 1 with the load generator, so that it takes nothing
// from the server's core and its CPU is measured on its own (loadgen
// --aux-pid), not mistaken for other tenants' noise. Reading in the harness
// instead would tie the server's pipe to the harness's event loop, which also
// runs the OTLP sink: under 100 % sampling the pipe would fill and fugue drop
// lines that a real consumer would have taken.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { LOGREADER } from './paths.js';
import { pinnedCommand, track } from './processes.js';

/** Lines and bytes read from one stream. */
export interface StreamCount {
  lines: number;
  bytes: number;
}

export interface LogCounts {
  stdout: StreamCount;
  stderr: StreamCount;
}

/** Both streams together: what a journal would store. */
export const total = (c: LogCounts): StreamCount => ({ lines: c.stdout.lines + c.stderr.lines, bytes: c.stdout.bytes + c.stderr.bytes });

/** b - a, stream by stream. */
export function countsBetween(a: LogCounts, b: LogCounts): LogCounts {
  const d = (x: StreamCount, y: StreamCount) => ({ lines: y.lines - x.lines, bytes: y.bytes - x.bytes });
  return { stdout: d(a.stdout, b.stdout), stderr: d(a.stderr, b.stderr) };
}

type Pending = { kind: 'c'; resolve(c: LogCounts): void } | { kind: 't'; resolve(t: string): void };

const ZERO: LogCounts = { stdout: { lines: 0, bytes: 0 }, stderr: { lines: 0, bytes: 0 } };

export class LogReader {
  /** The FIFOs to give the server as its stdout and stderr. */
  readonly stdoutPath: string;
  readonly stderrPath: string;
  readonly pid: number;
  /** Resolves when both streams reached end of file (the server exited), with the final counts. */
  readonly ended: Promise<LogCounts>;
  #child: ChildProcess;
  #buf = Buffer.alloc(0);
  #pending: Pending[] = [];
  #final: LogCounts | undefined;
  #tail = '';
  #onReady: (() => void) | undefined;
  #onEnd: (c: LogCounts) => void = () => {};

  private constructor(dir: string) {
    this.stdoutPath = join(dir, 'stdout');
    this.stderrPath = join(dir, 'stderr');
    const [cmd, args] = pinnedCommand(1, LOGREADER, [dir]);
    this.#child = track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
    this.pid = this.#child.pid as number;
    this.ended = new Promise((resolve) => (this.#onEnd = resolve));
    this.#child.stdout?.on('data', (chunk: Buffer) => this.#parse(chunk));
    // A request racing the reader's exit: the answer comes from 'close' below.
    this.#child.stdin?.on('error', () => {});
    // 'close', not 'exit': by then every byte of its stdout was parsed. Killed or
    // failed before END: answer whoever waits, with what is known.
    this.#child.once('close', () => this.#finish(this.#final ?? ZERO));
  }

  /** Start a reader that creates its FIFOs in `dir` (a fresh private directory) and wait until it holds them open. */
  static async start(dir: string): Promise<LogReader> {
    const r = new LogReader(dir);
    await new Promise<void>((resolve, reject) => {
      r.#onReady = resolve;
      r.#child.once('exit', (code, signal) => reject(new Error(`logreader exited before READY (${code ?? signal}); see its message above`)));
    });
    return r;
  }

  /** Lines and bytes read so far (the final counts once the server is gone). */
  counts(): Promise<LogCounts> {
    if (this.#final !== undefined) return Promise.resolve(this.#final);
    return new Promise((resolve) => {
      this.#pending.push({ kind: 'c', resolve });
      this.#child.stdin?.write('c\n');
    });
  }

  /** The last 8 KB read from both streams, for error messages. */
  tail(): Promise<string> {
    if (this.#final !== undefined) return Promise.resolve(this.#tail);
    return new Promise((resolve) => {
      this.#pending.push({ kind: 't', resolve });
      this.#child.stdin?.write('t\n');
    });
  }

  #parse(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const nl = this.#buf.indexOf(10);
      if (nl < 0) return;
      const line = this.#buf.subarray(0, nl).toString('latin1');
      const [tag, ...nums] = line.split(' ');
      if (tag === 'TAIL') {
        const n = Number(nums[0]);
        if (this.#buf.length < nl + 1 + n) return; // the rest of the tail is still coming
        const text = this.#buf.subarray(nl + 1, nl + 1 + n).toString('utf8');
        this.#buf = this.#buf.subarray(nl + 1 + n);
        this.#tail = text;
        if (this.#final !== undefined) this.#finish(this.#final);
        else this.#answer('t', text);
        continue;
      }
      this.#buf = this.#buf.subarray(nl + 1);
      if (tag === 'READY') this.#onReady?.();
      else if (tag === 'COUNT' || tag === 'END') {
        const [ol, ob, el, eb] = nums.map(Number) as [number, number, number, number];
        const c: LogCounts = { stdout: { lines: ol, bytes: ob }, stderr: { lines: el, bytes: eb } };
        if (tag === 'COUNT') this.#answer('c', c);
        else this.#final = c; // its TAIL follows
      }
    }
  }

  #answer(kind: 'c', value: LogCounts): void;
  #answer(kind: 't', value: string): void;
  #answer(kind: 'c' | 't', value: LogCounts | string): void {
    const i = this.#pending.findIndex((p) => p.kind === kind);
    const p = i < 0 ? undefined : this.#pending.splice(i, 1)[0];
    if (p?.kind === 'c') p.resolve(value as LogCounts);
    else if (p?.kind === 't') p.resolve(value as string);
  }

  /** The server is gone: every open question gets the final answer. */
  #finish(final: LogCounts): void {
    this.#final = final;
    for (const p of this.#pending.splice(0)) {
      if (p.kind === 'c') p.resolve(final);
      else p.resolve(this.#tail);
    }
    this.#onEnd(final);
  }
}
