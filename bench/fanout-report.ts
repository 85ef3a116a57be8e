// The fan-out rows (issue 17, item 3): what a run says about its subscribers,
// beyond the rate, and what became of the stopped subscriber of the
// fanout-stalled row: fugue's own counters for it (dropped, paused, cut
// off), the publishes' results, and, for bare, which keeps everything, the
// memory that costs.

import type { LoadgenResult } from './loadgen.js';
import type { LoadRun } from './load-run.js';
import { metricSample } from './scrape.js';
import { median } from './stats.js';

/** Bytes of one bench.msg frame beyond its payload: header, JSON around it, a seq of up to 6 digits. */
const FRAME_OVERHEAD = 4 + 37 + 6;

/** What one fan-out run says about its subscribers (from the load generator and, for fugue, /metrics). */
export interface FanoutRun {
  /** Subscribers that never read. */
  stalled: number;
  /** The slow policy the subscribers asked for (fugue's streams; bare has none). */
  onSlow: string;
  /** Payload bytes of each message. */
  size: number;
  /** Messages published over the whole run (bench.publish answered x messages per publish). */
  messages: number;
  /** Deliveries the server skipped, as its bench.published replies summed them (PublishResult.dropped): whole run, window. */
  dropped: number;
  droppedWindow: number;
  /** bench.missed received by the reading subscribers: one of them fell behind (the generator's fault in these rows). */
  missedNotices: number;
  /** Fewest and most messages one reading subscriber got in the window. */
  subMin: number;
  subMax: number;
  /** Stalled subscribers the server hung up on, and when the first was (ms from publishing's start). */
  cut: number;
  cutMs: number | undefined;
  /** When a publish first reported a drop, ms from publishing's start. */
  firstDropMs: number | undefined;
  /** The warm-up ran out (10 s) before the server had dropped from or cut off the stalled subscriber. */
  waitCapped: boolean;
  /** fugue's counters after the run (undefined for bare). */
  metrics?: { dropped?: number; pauses?: number; slowConsumerClosed?: number };
}

const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);

/** The fan-out part of a load generator result, with fugue's /metrics body when there is one. */
export function fanoutOf(result: LoadgenResult, body: string | undefined): FanoutRun {
  const warmupMs = num(result.warmup_s) * 1000;
  const sinceStart = (v: unknown) => (typeof v === 'number' ? warmupMs + v : undefined);
  const run: FanoutRun = {
    stalled: num(result.stalled),
    onSlow: String(result.on_slow),
    size: num(result.size),
    messages: num(result.published) * num(result.batch),
    dropped: num(result.pub_dropped),
    droppedWindow: num(result.pub_dropped_window),
    missedNotices: num(result.missed_notices),
    subMin: num(result.sub_min),
    subMax: num(result.sub_max),
    cut: num(result.stalled_cut),
    cutMs: sinceStart(result.stalled_cut_ms),
    firstDropMs: sinceStart(result.first_drop_ms),
    waitCapped: result.stall_wait_capped === true,
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
export const readerFellBehind = (f: FanoutRun): boolean => f.missedNotices > 0 || (f.stalled === 0 && f.dropped > 0);

/** The progress line's fan-out part. */
export function fanoutText(run: LoadRun): string {
  const f = run.fanout;
  if (f === undefined) return '';
  const parts = [`per subscriber ${f.subMin}-${f.subMax}`];
  if (f.stalled > 0 || f.dropped > 0) parts.push(`dropped ${f.dropped}`);
  if (f.cut > 0) parts.push(`stalled cut off at ${((f.cutMs ?? NaN) / 1000).toFixed(1)} s`);
  else if (f.firstDropMs !== undefined) parts.push(`first drop at ${(f.firstDropMs / 1000).toFixed(1)} s`);
  if (f.waitCapped) parts.push('not dealt with by the end of the warm-up');
  return parts.join(', ');
}

/** What became of the stopped subscriber, for one server of the fanout-stalled row. */
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
  /** Medians, ms from publishing's start. */
  firstDropMs: number | undefined;
  cutMs: number | undefined;
  capped: number;
  /** Median bytes published to the stopped subscriber over a run: what an unbounded server holds for it. */
  owedMb: number;
  /** Median peak RSS with it, and in the reference (fanout) runs of the same server. */
  rssMb: number;
  rssAloneMb: number;
  /** Reading subscribers told they missed messages, summed. */
  missedNotices: number;
}

const sumOf = (xs: Array<number | undefined>): number | undefined => (xs.some((x) => x === undefined) ? undefined : xs.reduce((a: number, x) => a + (x as number), 0));
const medianOf = (xs: Array<number | undefined>): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length === 0 ? undefined : median(v);
};

/** Per server of the fanout-stalled row; `aloneOf` maps its server to the fanout row's (fugue disconnect -> fugue). */
export function summariseStalled(runs: LoadRun[], aloneOf: Record<string, string>): StalledSummary[] {
  const stalledRuns = runs.filter((r) => r.workload === 'fanout-stalled' && r.fanout !== undefined);
  return [...new Set(stalledRuns.map((r) => r.server))].map((server) => {
    const rs = stalledRuns.filter((r) => r.server === server);
    const fs = rs.map((r) => r.fanout as FanoutRun);
    const alone = runs.filter((r) => r.workload === 'fanout' && r.server === (aloneOf[server] ?? server));
    return {
      server,
      runs: rs.length,
      onSlow: fs[0]?.onSlow ?? '?',
      dropped: fs.reduce((a, f) => a + f.dropped, 0),
      droppedMetric: sumOf(fs.map((f) => f.metrics?.dropped)),
      pauses: sumOf(fs.map((f) => f.metrics?.pauses)),
      cutRuns: fs.filter((f) => f.cut > 0).length,
      slowConsumerClosed: sumOf(fs.map((f) => f.metrics?.slowConsumerClosed)),
      firstDropMs: medianOf(fs.map((f) => f.firstDropMs)),
      cutMs: medianOf(fs.map((f) => f.cutMs)),
      capped: fs.filter((f) => f.waitCapped).length,
      owedMb: median(fs.map((f) => (f.messages * (f.size + FRAME_OVERHEAD)) / 1e6)),
      rssMb: median(rs.map((r) => r.peakRssMb)),
      rssAloneMb: median(alone.map((r) => r.peakRssMb)),
      missedNotices: fs.reduce((a, f) => a + f.missedNotices, 0),
    };
  });
}

const s = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
const count = (n: number | undefined) => (n === undefined ? 'not counted' : n.toLocaleString('en-US'));

/** The lines under the load table: what happened to the stopped subscriber, per server. */
export function stalledLines(sums: StalledSummary[]): string[] {
  if (sums.length === 0) return [];
  const lines = ['the stopped subscriber of "fan-out 1000 + 1 stalled" (ratio there: the others\' rate against the same server\'s without it, same repetition):'];
  for (const x of sums) {
    const rss = `peak RSS ${x.rssMb.toFixed(0)} MB against ${x.rssAloneMb.toFixed(0)} MB without it`;
    const others = x.missedNotices > 0 ? `; ${x.missedNotices} bench.missed to reading subscribers (the load generator fell behind)` : '';
    const capped = x.capped > 0 ? `; in ${x.capped} run(s) not yet dealt with when the window opened (10 s)` : '';
    if (x.server === 'bare') {
      lines.push(`  bare (no bound): kept every message for it, ${x.owedMb.toFixed(1)} MB owed by the end of a run (median), ${rss}${others}`);
    } else if (x.onSlow === 'disconnect') {
      lines.push(
        `  ${x.server}: cut off in ${x.cutRuns} of ${x.runs} runs, ${s(x.cutMs)} after publishing began (median); ` +
          `fugue_connections_closed_total{reason="slow_consumer"} ${count(x.slowConsumerClosed)}; ${rss}${others}${capped}`,
      );
    } else {
      lines.push(
        `  ${x.server} (drop, 256 KiB): ${count(x.droppedMetric)} messages dropped for it over ${x.runs} runs (fugue_stream_dropped_total{stream="bench"}; ` +
          `the publishes' results: ${count(x.dropped)}), ${count(x.pauses)} pause(s) (fugue_stream_pauses_total), the first drop ${s(x.firstDropMs)} after publishing began (median); ${rss}${others}${capped}`,
      );
    }
  }
  return lines;
}
