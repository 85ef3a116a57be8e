// The same-core paired check.
//
// Both servers run at the same time, pinned to the same core, each driven by
// its own load generator on the other core. The scheduler shares the core
// between them every few milliseconds, so whatever slows the machine down
// slows both alike: the ratio of their rates is the ratio of their CPU cost
// per message, and it is far steadier on a shared VM than runs taken one after
// the other (about +-2 % against +-10 % here). The alternating runs remain the
// primary measurement; this one checks it. With --against DIR the baseline is
// another built checkout instead of bare: how optimisation commits measured
// their before/after.

import { startLoadgen } from './loadgen.js';
import { loadArgs } from './load-run.js';
import type { Options } from './options.js';
import type { OtlpSink } from './otlp-sink.js';
import { BARE, nodeOf, startServer, type RunningServer, type ServerSpec } from './servers.js';
import { median } from './stats.js';
import type { Workload } from './workloads.js';

/** The workloads the paired check runs. */
export const PAIRED_KEYS = ['echo64', 'churn'] as const;

export interface PairedRun {
  workload: string;
  rep: number;
  a: string;
  b: string;
  rateA: number;
  rateB: number;
  ratio: number;
  invalid: boolean;
}

export interface PairedSummary {
  workload: string;
  against: string;
  reps: number;
  ratio: number;
  perRep: number[];
}

/** What fugue is compared with: bare, or the build in --against DIR. */
export function pairedBaseline(opts: Options): ServerSpec {
  return opts.against !== undefined ? { id: 'fugue (--against)', kind: 'fugue', root: opts.against } : BARE;
}

/** One repetition: `a` and `b` at once on core 0; ratio = rate of b / rate of a. */
export async function runPaired(w: Workload, a: ServerSpec, b: ServerSpec, rep: number, opts: Options, sink: OtlpSink): Promise<PairedRun> {
  // The start order alternates so that neither server always starts first.
  const [first, second] = rep % 2 === 1 ? [a, b] : [b, a];
  const s1 = await startServer(first, { otlpEndpoint: sink.endpoint, ...nodeOf(opts) });
  const s2 = await startServer(second, { otlpEndpoint: sink.endpoint, ...nodeOf(opts) });
  const [sa, sb] = first === a ? [s1, s2] : [s2, s1];
  try {
    const load = (srv: RunningServer) => {
      const { args, timeoutMs } = loadArgs(w, srv, opts);
      return startLoadgen(args, timeoutMs).done;
    };
    const [ra, rb] = await Promise.all([load(sa), load(sb)]);
    // Core 1 holds both load generators and fugue's log reader(s): together they must not fill it.
    const readers = (Math.max(0, ra.aux_cpu_s ?? 0) + Math.max(0, rb.aux_cpu_s ?? 0)) / Math.max(ra.seconds, rb.seconds);
    const invalid = ra.errors + rb.errors > 0 || ra.loadgen_cpu_share + rb.loadgen_cpu_share + readers >= 0.95;
    return { workload: w.key, rep, a: a.id, b: b.id, rateA: ra.rate, rateB: rb.rate, ratio: rb.rate / ra.rate, invalid };
  } finally {
    await s1.stop();
    await s2.stop();
  }
}

/** Per workload, the median ratio of the valid repetitions. */
export function summarisePaired(runs: PairedRun[], against: string): PairedSummary[] {
  return PAIRED_KEYS.flatMap((key) => {
    const rs = runs.filter((r) => r.workload === key && !r.invalid);
    if (rs.length === 0) return [];
    return [{ workload: key, against, reps: rs.length, ratio: median(rs.map((r) => r.ratio)), perRep: rs.map((r) => r.ratio) }];
  });
}
