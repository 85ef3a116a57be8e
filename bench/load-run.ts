// One run of a load workload against one server: a fresh server, one load
// generator for warm-up plus the measured window, then the server's peak
// memory and, for fugue, what it logged and, for the OTLP rows, what it
// exported.

import { fanoutOf, firstWindow, readerFellBehind, type FanoutRun } from './fanout-rows.js';
import { countsBetween, total, type LogCounts, type LogReader, type StreamCount } from './log-reader.js';
import { startLoadgen, type LoadgenResult, type WindowEdge } from './loadgen.js';
import type { Options } from './options.js';
import type { OtlpSink } from './otlp-sink.js';
import { procStatus } from './proc.js';
import { sleep } from './processes.js';
import { metricValue, scrape } from './scrape.js';
import { nodeOf, startServer, type RunningServer, type ServerSpec } from './servers.js';
import { NOISE_CORES, type Workload } from './workloads.js';

/** fugue's log output in one run, as its consumer read it and as fugue counted it. */
export interface LogRun {
  /** fugue's log.level in this run: info (its default) unless a --log-level row. */
  level: string;
  /** Read during the measured window (between loadgen's WINDOW lines). */
  window: LogCounts;
  /** Read over the server's whole life: start-up, warm-up, window, detach, drain, exit. */
  whole: LogCounts;
  /** The consumer's CPU over the window, as a share of one core. */
  readerCpuShare: number;
  /** fugue's own counters, scraped after the load (absent: a build without them, e.g. --against an older one). */
  counters: { linesWritten?: number; bytesWritten?: number; linesDropped?: number; bytesDropped?: number };
  /** What the consumer had read from stdout when the counters were scraped, once the output had settled. */
  readAtScrape: StreamCount;
  /** readAtScrape matches fugue_log_lines_written_total and fugue_log_written_bytes_total; undefined without counters. */
  agree: boolean | undefined;
}

export interface LoadRun {
  workload: string;
  server: string;
  rep: number;
  result: LoadgenResult;
  serverCpuShare: number;
  peakRssMb: number;
  invalid: boolean;
  /** CPU (in cores) used by processes other than server, loadgen and log reader during the window. */
  foreignCpu: number;
  noisy: boolean;
  tracing?: { requests: number; bytes: number; spansDropped: number | undefined };
  logs?: LogRun;
  /** The fan-out rows: what became of the subscribers (fanout-rows.ts). */
  fanout?: FanoutRun;
  nofile: number;
}

/** The warm-up of `w`'s runs, in seconds: its own (fan-out) unless --quick. */
export const warmupOf = (w: Workload, opts: Pick<Options, 'warmup' | 'quick'>): number => (opts.quick || w.warmupS === undefined ? opts.warmup : w.warmupS);

/** Seconds a run of `w` takes beyond a plain one: a longer warm-up; a second window and the wait before it (about 2 s). */
export const extraRunS = (w: Workload, opts: Pick<Options, 'warmup' | 'quick' | 'seconds'>): number => warmupOf(w, opts) - opts.warmup + (w.second === undefined ? 0 : opts.seconds + 2);

/** loadgen arguments for one measured run of `w` against `server` (whose row is `specId`). */
export function loadArgs(w: Workload, server: RunningServer, opts: Options, specId?: string): { args: string[]; timeoutMs: number } {
  const own = specId === undefined ? [] : (w.serverArgs?.[specId] ?? []);
  const warmup = warmupOf(w, opts);
  const args = [...w.args, ...own, '--socket', server.socket, '--seconds', String(opts.seconds), '--warmup', String(warmup), '--server-pid', String(server.pid)];
  // The log reader's CPU is measured over the same window, apart from other tenants'.
  if (server.logs !== undefined) args.push('--aux-pid', String(server.logs.pid));
  return { args, timeoutMs: (2 * opts.seconds + warmup + 80) * 1000 };
}

/**
 * The consumer's counts once they stop changing (100 ms without a new byte, at
 * most 3 s): the lines of the clients' disconnects may still be on their way.
 */
async function settled(logs: LogReader): Promise<LogCounts> {
  let last = await logs.counts();
  const deadline = Date.now() + 3000;
  for (let still = 0; still < 4 && Date.now() < deadline; ) {
    await sleep(25);
    const now = await logs.counts();
    still = total(now).bytes === total(last).bytes ? still + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * One run: a fresh server and one load generator. The LoadRuns of its measured
 * windows: one, or for the fan-out runs two (the first window's row first).
 */
export async function runLoad(w: Workload, spec: ServerSpec, rep: number, opts: Options, sink: OtlpSink, cpuProfDir?: string): Promise<LoadRun[]> {
  const server = await startServer(spec, { otlpEndpoint: sink.endpoint, ...nodeOf(opts), ...(cpuProfDir !== undefined ? { cpuProfDir } : {}) });
  const sink0 = sink.snapshot();
  try {
    const { args, timeoutMs } = loadArgs(w, server, opts, spec.id);
    const logs = server.logs;
    const edges: Partial<Record<WindowEdge, Promise<LogCounts>>> = {};
    const result = await startLoadgen(args, timeoutMs, logs === undefined ? undefined : (edge) => (edges[edge] = logs.counts())).done;
    const st = procStatus(server.pid);
    const run: LoadRun = {
      // The main (last) window; a second window makes its own row.
      workload: w.second?.key ?? w.key,
      server: spec.id,
      rep,
      result,
      serverCpuShare: result.server_cpu_s / result.seconds,
      peakRssMb: st.hwmKb / 1024,
      invalid: result.loadgen_cpu_share >= 0.95,
      foreignCpu: 0,
      noisy: false,
      nofile: server.nofile,
    };
    const readerCpuS = Math.max(0, result.aux_cpu_s ?? 0);
    if (result.machine_busy_s >= 0 && result.server_cpu_s >= 0) {
      run.foreignCpu = Math.max(0, (result.machine_busy_s - result.server_cpu_s - result.loadgen_cpu_s - readerCpuS) / result.seconds);
      run.noisy = run.foreignCpu > NOISE_CORES;
    }
    let body: string | undefined;
    if (logs !== undefined) {
      // The reader shares core 1 with the load generator: together they must not fill it.
      const readerCpuShare = readerCpuS / result.seconds;
      if (result.loadgen_cpu_share + readerCpuShare >= 0.95) run.invalid = true;
      const atStart = (await edges.start) ?? (await logs.counts());
      const atEnd = (await edges.end) ?? (await logs.counts());
      await settled(logs);
      body = server.httpPort === undefined ? undefined : (await scrape(server.httpPort)).body;
      const readAtScrape = (await settled(logs)).stdout;
      const value = (name: string) => (body === undefined ? undefined : metricValue(body, name));
      const counters = {
        linesWritten: value('fugue_log_lines_written_total'),
        bytesWritten: value('fugue_log_written_bytes_total'),
        linesDropped: value('fugue_log_lines_dropped_total'),
        bytesDropped: value('fugue_log_dropped_bytes_total'),
      };
      const agree = counters.linesWritten === undefined ? undefined : counters.linesWritten === readAtScrape.lines && counters.bytesWritten === readAtScrape.bytes;
      run.logs = { level: spec.logLevel ?? 'info', window: countsBetween(atStart, atEnd), whole: atEnd, readerCpuShare, counters, readAtScrape, agree };
    }
    if (result.mode === 'fanout') {
      run.fanout = fanoutOf(result, body);
      if (readerFellBehind(run.fanout)) run.invalid = true;
    }
    await server.stop(); // before reading the sink: the final flush belongs to this run
    if (logs !== undefined && run.logs !== undefined) run.logs.whole = await logs.ended;
    if (spec.tracing !== undefined) run.tracing = { ...sink.since(sink0), spansDropped: body === undefined ? undefined : metricValue(body, 'fugue_spans_dropped_total') };
    return result.alone === undefined ? [run] : [firstWindow(run, w.key), run];
  } catch (err) {
    await server.stop();
    throw new Error(`${w.key}/${spec.id}: ${(err as Error).message}\nserver output:\n${await server.output()}`);
  } finally {
    await server.stop();
  }
}
