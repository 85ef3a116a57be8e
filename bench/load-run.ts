// One run of a load workload against one server: a fresh server, one load
// generator for warm-up plus the measured window, then the server's peak
// memory and, for the OTLP rows, what it exported.

import { startLoadgen, type LoadgenResult } from './loadgen.js';
import type { Options } from './options.js';
import type { OtlpSink } from './otlp-sink.js';
import { procStatus } from './proc.js';
import { metricValue, scrape } from './scrape.js';
import { freePort, startServer, type RunningServer, type ServerSpec } from './servers.js';
import { NOISE_CORES, type Workload } from './workloads.js';

export interface LoadRun {
  workload: string;
  server: string;
  rep: number;
  result: LoadgenResult;
  serverCpuShare: number;
  peakRssMb: number;
  invalid: boolean;
  /** CPU (in cores) used by processes other than server and loadgen during the window. */
  foreignCpu: number;
  noisy: boolean;
  tracing?: { requests: number; bytes: number; spansDropped: number | undefined };
  nofile: number;
}

/** loadgen arguments for one measured run of `w` against `server`. */
export function loadArgs(w: Workload, server: RunningServer, opts: Options): { args: string[]; timeoutMs: number } {
  return {
    args: [...w.args, '--socket', server.socket, '--seconds', String(opts.seconds), '--warmup', String(opts.warmup), '--server-pid', String(server.pid)],
    timeoutMs: (opts.seconds + opts.warmup + 60) * 1000,
  };
}

export async function runLoad(w: Workload, spec: ServerSpec, rep: number, opts: Options, sink: OtlpSink, cpuProfDir?: string): Promise<LoadRun> {
  const needPort = spec.tracing !== undefined;
  const httpPort = needPort ? await freePort() : undefined;
  const server = await startServer(spec, {
    otlpEndpoint: sink.endpoint,
    ...(httpPort !== undefined ? { httpPort } : {}),
    ...(cpuProfDir !== undefined ? { cpuProfDir } : {}),
  });
  const sink0 = sink.snapshot();
  try {
    const { args, timeoutMs } = loadArgs(w, server, opts);
    const result = await startLoadgen(args, timeoutMs).done;
    const st = procStatus(server.pid);
    let spansDropped: number | undefined;
    if (httpPort !== undefined) spansDropped = metricValue((await scrape(httpPort)).body, 'fugue_spans_dropped_total');
    const run: LoadRun = {
      workload: w.key,
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
    if (result.machine_busy_s >= 0 && result.server_cpu_s >= 0) {
      run.foreignCpu = Math.max(0, (result.machine_busy_s - result.server_cpu_s - result.loadgen_cpu_s) / result.seconds);
      run.noisy = run.foreignCpu > NOISE_CORES;
    }
    await server.stop(); // before reading the sink: the final flush belongs to this run
    if (spec.tracing !== undefined) run.tracing = { ...sink.since(sink0), spansDropped };
    return run;
  } catch (err) {
    throw new Error(`${w.key}/${spec.id}: ${(err as Error).message}\nserver output:\n${server.output()}`);
  } finally {
    await server.stop();
  }
}
