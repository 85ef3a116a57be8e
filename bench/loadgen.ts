// Driving bench/loadgen.c: one process per run, pinned to core 1, whose last
// stdout line is its JSON result (idle mode also prints "READY {...}" once its
// clients are open, and then waits for "quit" on stdin; the other modes print
// "WINDOW start" and "WINDOW end" as the measured window opens and closes).

import { spawn } from 'node:child_process';
import { LOADGEN } from './paths.js';
import { pinnedCommand, tail, track } from './processes.js';

/** What a measured window gives: replies (or messages delivered), its length, the rate and the latency percentiles. */
export interface WindowFigures {
  replies: number;
  seconds: number;
  rate: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
}

/** The result line of an echo, latency or churn run (see loadgen.c). */
export interface LoadgenResult extends WindowFigures {
  mode: string;
  errors: number;
  err?: Record<string, number>;
  loadgen_cpu_s: number;
  loadgen_cpu_share: number;
  server_cpu_s: number;
  /** CPU seconds of the --aux-pid process (the log reader) over the window; -1 without one. */
  aux_cpu_s?: number;
  /** Busy CPU time of the whole machine over the window (all processes). */
  machine_busy_s: number;
  /** fanout with --stalled: the first window, before the stalled subscribers came (the main figures are the second's). */
  alone?: AloneWindow;
  [k: string]: unknown;
}

/** The first window of a fanout run with stalled subscribers (loadgen.c). */
export interface AloneWindow extends WindowFigures {
  /** Fewest and most messages one subscriber got. */
  sub_min: number;
  sub_max: number;
  /** Drops the publishes reported, and bench.missed the subscribers got, by the window's end. */
  pub_dropped: number;
  missed_notices: number;
  loadgen_cpu_s: number;
  loadgen_cpu_share: number;
  server_cpu_s: number;
  aux_cpu_s: number;
  machine_busy_s: number;
  /** The server's VmRSS as the window closed. */
  server_rss_kb: number;
}

export interface LoadgenHandle {
  pid: number;
  /** Resolves with the JSON after "READY " (idle mode). */
  ready: Promise<Record<string, unknown>>;
  done: Promise<LoadgenResult>;
  send(line: string): void;
}

/** Edges of the measured window, as the load generator reports them. */
export type WindowEdge = 'start' | 'end';

/**
 * Start the load generator with `args`; SIGKILLed after `timeoutMs`.
 * `onWindow` is called as the measured window opens and as it closes (within
 * the harness's reaction time, about a millisecond, of a window of seconds).
 */
export function startLoadgen(args: string[], timeoutMs: number, onWindow?: (edge: WindowEdge) => void): LoadgenHandle {
  const [cmd, cargs] = pinnedCommand(1, LOADGEN, args);
  const child = track(spawn(cmd, cargs, { stdio: ['pipe', 'pipe', 'pipe'] }));
  const err = tail(child.stderr);
  let stdout = '';
  let onReady: (v: Record<string, unknown>) => void = () => {};
  let onReadyFail: (e: Error) => void = () => {};
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    onReady = resolve;
    onReadyFail = reject;
  });
  ready.catch(() => {}); // only idle mode awaits it
  const seen = new Set<WindowEdge>();
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    const m = /^READY (.*)$/m.exec(stdout);
    if (m) onReady(JSON.parse(m[1] as string) as Record<string, unknown>);
    for (const edge of ['start', 'end'] as const) {
      if (!seen.has(edge) && stdout.includes(`WINDOW ${edge}\n`)) {
        seen.add(edge);
        onWindow?.(edge);
      }
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // 'close', not 'exit': 'exit' can come before the last stdout bytes (the result line) were read.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const done = closed.then(() => {
    clearTimeout(timer);
    const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
    if (line === undefined) {
      const e = new Error(`loadgen ${args.join(' ')} gave no result (exit ${child.exitCode ?? child.signalCode}): ${err()}`);
      onReadyFail(e);
      throw e;
    }
    onReadyFail(new Error(`loadgen ended before READY: ${err()}`));
    if (child.exitCode !== 0) throw new Error(`loadgen ${args.join(' ')} failed (exit ${child.exitCode ?? child.signalCode}): ${err()}`);
    const result = JSON.parse(line) as LoadgenResult;
    if (err().trim() !== '') result.stderr = err().trim();
    return result;
  });
  return { pid: child.pid as number, ready, done, send: (line) => child.stdin?.write(line) };
}
