// The fan-out rows (issue 17, item 3). Each fan-out run measures two windows
// (loadgen.c, fanout --stalled): the 1,000 subscribers alone, the
// `fanout` row; then the same 1,000 once a 1,001st has subscribed and
// stopped reading, the `fanout-stalled` row. Here: the first window as a run
// of its own, what a run says about its subscribers beyond the rate, and what
// became of the stopped subscriber: fugue's own counters for it (dropped,
// paused, cut off), the publishes' results, and for bare, which keeps
// everything, the memory that costs.

import type { LoadgenResult } from './loadgen.js';
import type { LoadRun } from './load-run.js';
import { metricSample } from './scrape.js';
import { median } from './stats.js';
import { NOISE_CORES } from './workloads.js';

/** Bytes of one bench.msg frame beyond its payload: header, the JSON around it, a seq of up to 6 digits. */
const FRAME_OVERHEAD = 4 + 37 + 6;

/** What one fan-out run says about its subscribers (from the load generator and, for fugue, /metrics). */
export interface FanoutRun {
  /** Subscribers that stopped reading (they came after the first window). */
  stalled: number;
  /** The slow policy the subscribers asked for (fugue's streams; bare has none). */
  onSlow: string;
  /** Payload bytes of each message. */
  size: number;
  /** Messages published after the stopped subscriber subscribed: what it was owed. */
  owed: number;
  /** Deliveries the server skipped, as its bench.published replies summed them (PublishResult.dropped), over the run. */
  dropped: number;
  /** bench.missed received by the reading subscribers: one of them fell behind (the generator's fault in these rows). */
  missedNotices: number;
  /** Fewest and most messages one reading subscriber got in the second window. */
  subMin: number;
  subMax: number;
  /** Stalled subscribers the server hung up on, and when the first was (ms after it subscribed). */
  cut: number;
  cutMs: number | undefined;
  /** When a publish first reported a drop, ms after the stopped subscriber subscribed. */
  firstDropMs: number | undefined;
  /** The server had not dealt with the stopped subscriber 10 s after it subscribed (fugue's runs wait for that). */
  waitCapped: boolean;
  /** The server's VmRSS as each window closed, in MB. */
  rssAloneMb: number;
  rssMb: number;
  /** fugue's counters after the run (undefined for bare). */
  metrics?: { dropped?: number; pauses?: number; slowConsumerClosed?: number };
}

const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
const orUndefined = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** The fan-out part of a load generator result, with fugue's /metrics body when there is one. */
export function fanoutOf(result: LoadgenResult, body: string | undefined): FanoutRun {
  const run: FanoutRun = {
    stalled: num(result.stalled),
    onSlow: String(result.on_slow),
    size: num(result.size),
    owed: num(result.published_since_stall) * num(result.batch),
    dropped: num(result.pub_dropped),
    missedNotices: num(result.missed_notices),
    subMin: num(result.sub_min),
    subMax: num(result.sub_max),
    cut: num(result.stalled_cut),
    cutMs: orUndefined(result.stalled_cut_ms),
    firstDropMs: orUndefined(result.first_drop_ms),
    waitCapped: result.stall_wait_capped === true,
    rssAloneMb: num(result.alone?.server_rss_kb) / 1024,
    rssMb: num(result.server_rss_kb) / 1024,
  };
  if (body !== undefined) {
    run.metrics = {
      dropped: metricSample(body, 'fugue_stream_dropped_total', 'stream', 'bench'),
      pauses: metricSample(body, 'fugue_stream_pauses_total', 'stream', 'bench'),
      slowConsumerClosed: metricSample(body, 'fugue_connections_closed_total', 'reason', 'slow_consumer'),
    };
  }
  return run;
}

/**
 * A reading subscriber was skipped: the load generator did not keep up, so
 * the run measured it, not the server (INVALID).
 */
export const readerFellBehind = (f: FanoutRun): boolean => f.missedNotices > 0;

/**
 * The first window of a fan-out run as a run of its own (the `row` row): its
 * own rate, latency and CPU, the server's RSS as it closed; errors are the
 * whole run's. INVALID if the generator filled its core or anything was
 * dropped before a subscriber had stopped reading.
 */
export function firstWindow(main: LoadRun, row: string): LoadRun {
  const a = main.result.alone;
  if (a === undefined) throw new Error(`${main.workload}/${main.server}: the load generator reported no first window`);
  const result: LoadgenResult = { ...main.result, ...a, alone: undefined };
  delete result.alone;
  const readerCpuS = Math.max(0, a.aux_cpu_s);
  const foreignCpu = a.machine_busy_s >= 0 && a.server_cpu_s >= 0 ? Math.max(0, (a.machine_busy_s - a.server_cpu_s - a.loadgen_cpu_s - readerCpuS) / a.seconds) : 0;
  return {
    workload: row,
    server: main.server,
    rep: main.rep,
    result,
    serverCpuShare: a.server_cpu_s / a.seconds,
    peakRssMb: a.server_rss_kb / 1024,
    invalid: a.loadgen_cpu_share + readerCpuS / a.seconds >= 0.95 || a.pub_dropped > 0 || a.missed_notices > 0,
    foreignCpu,
    noisy: foreignCpu > NOISE_CORES,
    nofile: main.nofile,
  };
}

/** The progress line's fan-out part. */
export function fanoutText(run: LoadRun): string {
  const f = run.fanout;
  if (f === undefined) return `per subscriber ${run.result.sub_min}-${run.result.sub_max}`;
  const parts = [`per subscriber ${f.subMin}-${f.subMax}`, `dropped ${f.dropped}`];
  if (f.cut > 0) parts.push(`stopped one cut off ${((f.cutMs ?? NaN) / 1000).toFixed(1)} s after it subscribed`);
  else if (f.firstDropMs !== undefined) parts.push(`first drop ${(f.firstDropMs / 1000).toFixed(1)} s after it subscribed`);
  if (f.waitCapped) parts.push('not dealt with within 10 s');
  parts.push(`RSS ${f.rssAloneMb.toFixed(0)} -> ${f.rssMb.toFixed(0)} MB`);
  return parts.join(', ');
}

/** What became of the stopped subscriber, for one server. */
export interface StalledSummary {
  server: string;
  runs: number;
  onSlow: string;
  /** Summed over the runs. */
  dropped: number;
  droppedMetric: number | undefined;
  pauses: number | undefined;
  cutRuns: number;
  slowConsumerClosed: number | undefined;
  /** Medians, ms after it subscribed. */
  firstDropMs: number | undefined;
  cutMs: number | undefined;
  capped: number;
  /** Median MB published to it after it subscribed: what a server without a bound holds for it. */
  owedMb: number;
  /** Median VmRSS as the first and the second window closed. */
  rssAloneMb: number;
  rssMb: number;
}

const sumOf = (xs: Array<number | undefined>): number | undefined => (xs.some((x) => x === undefined) ? undefined : xs.reduce((a: number, x) => a + (x as number), 0));
const medianOf = (xs: Array<number | undefined>): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length === 0 ? undefined : median(v);
};

/** Per server, over its runs with a stopped subscriber. */
export function summariseStalled(runs: LoadRun[]): StalledSummary[] {
  const withStalled = runs.filter((r) => r.fanout !== undefined && r.fanout.stalled > 0);
  return [...new Set(withStalled.map((r) => r.server))].map((server) => {
    const fs = withStalled.filter((r) => r.server === server).map((r) => r.fanout as FanoutRun);
    return {
      server,
      runs: fs.length,
      onSlow: fs[0]?.onSlow ?? '?',
      dropped: fs.reduce((a, f) => a + f.dropped, 0),
      droppedMetric: sumOf(fs.map((f) => f.metrics?.dropped)),
      pauses: sumOf(fs.map((f) => f.metrics?.pauses)),
      cutRuns: fs.filter((f) => f.cut > 0).length,
      slowConsumerClosed: sumOf(fs.map((f) => f.metrics?.slowConsumerClosed)),
      firstDropMs: medianOf(fs.map((f) => f.firstDropMs)),
      cutMs: medianOf(fs.map((f) => f.cutMs)),
      capped: fs.filter((f) => f.waitCapped).length,
      owedMb: median(fs.map((f) => (f.owed * (f.size + FRAME_OVERHEAD)) / 1e6)),
      rssAloneMb: median(fs.map((f) => f.rssAloneMb)),
      rssMb: median(fs.map((f) => f.rssMb)),
    };
  });
}

const s = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
const count = (n: number | undefined) => (n === undefined ? 'not counted' : n.toLocaleString('en-US'));

/** The lines under the load table: what happened to the stopped subscriber, per server. */
export function stalledLines(sums: StalledSummary[]): string[] {
  if (sums.length === 0) return [];
  const lines = ['the stopped subscriber of "fan-out 1000 + 1 stalled" (its ratio: the others\' rate against the first window of the same run, without it):'];
  for (const x of sums) {
    const rss = `VmRSS ${x.rssAloneMb.toFixed(0)} MB before it came, ${x.rssMb.toFixed(0)} MB at the end (medians)`;
    const capped = x.capped > 0 ? `; in ${x.capped} run(s) not dealt with within 10 s` : '';
    if (x.server === 'bare') {
      lines.push(`  bare (no bound): kept every message for it, ${x.owedMb.toFixed(1)} MB owed by the end of a run (median); ${rss}`);
    } else if (x.onSlow === 'disconnect') {
      lines.push(
        `  ${x.server} (limits.maxBufferedBytes 256 KiB): cut off in ${x.cutRuns} of ${x.runs} runs, ${s(x.cutMs)} after it subscribed (median); ` +
          `fugue_connections_closed_total{reason="slow_consumer"} ${count(x.slowConsumerClosed)}; ${rss}${capped}`,
      );
    } else {
      lines.push(
        `  ${x.server} (drop, 256 KiB): ${count(x.droppedMetric)} messages dropped for it over ${x.runs} runs (fugue_stream_dropped_total{stream="bench"}; ` +
          `the publishes' own count: ${count(x.dropped)}), ${count(x.pauses)} pause(s) (fugue_stream_pauses_total), the first drop ${s(x.firstDropMs)} after it subscribed (median); ${rss}${capped}`,
      );
    }
  }
  return lines;
}
