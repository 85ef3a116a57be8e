// From repetitions to rows: medians, and the fugue / bare ratio of each row.
//
// The ratio is the median of per-repetition ratios, each fugue repetition
// against the bare run just before it (seconds apart, so slow drifts of the
// machine cancel out); a single disturbed pair is discarded by the median.
// Repetitions that other processes disturbed (NOISY) are left out when a clean
// one exists. A 'self' row (fanout-stalled) divides each run's rate by the
// same run's in the reference row's window instead.

import type { IdleRun } from './idle.js';
import type { LoadRun } from './load-run.js';
import { total } from './log-reader.js';
import { BARE, FUGUE } from './servers.js';
import type { StartRun } from './startup.js';
import { median } from './stats.js';
import { NOISE_CORES, type StartRow, type Workload } from './workloads.js';

export interface SummaryRow {
  workload: string;
  label: string;
  server: string;
  reps: number;
  rate: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  serverCpu: number;
  loadgenCpu: number;
  peakRssMb: number;
  errors: number;
  invalid: boolean;
  /** Every repetition had other processes competing for CPU. */
  noisy: boolean;
  /** fugue: log lines (stdout + stderr) per second of the measured window, as its consumer read them. */
  logLinesPerS: number | undefined;
  /** fugue: their bytes per second. */
  logBytesPerS: number | undefined;
  ratio: number | undefined;
  ratioOf: 'rate' | 'p99' | 'self';
  target: string | undefined;
  verdict: string;
}

function logRates(rs: LoadRun[]): Pick<SummaryRow, 'logLinesPerS' | 'logBytesPerS'> {
  const logged = rs.flatMap((r) => (r.logs === undefined ? [] : [{ t: total(r.logs.window), s: r.result.seconds }]));
  if (logged.length === 0) return { logLinesPerS: undefined, logBytesPerS: undefined };
  return { logLinesPerS: median(logged.map((x) => x.t.lines / x.s)), logBytesPerS: median(logged.map((x) => x.t.bytes / x.s)) };
}

export function summarise(w: Workload, runs: LoadRun[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  let bare: { rate: number; p99: number } | undefined;
  const metric = (r: LoadRun) => (w.compare === 'rate' ? r.result.rate : r.result.p99_us);
  const bareRuns = runs.filter((r) => r.workload === w.key && r.server === BARE.id);
  for (const spec of w.servers) {
    const all = runs.filter((r) => r.workload === w.key && r.server === spec.id);
    if (all.length === 0) continue;
    const clean = all.filter((r) => !r.noisy);
    const rs = clean.length > 0 ? clean : all;
    const m = (f: (r: LoadRun) => number) => median(rs.map(f));
    const row: SummaryRow = {
      workload: w.key,
      label: w.label,
      server: spec.id,
      reps: rs.length,
      rate: m((r) => r.result.rate),
      p50_us: m((r) => r.result.p50_us),
      p99_us: m((r) => r.result.p99_us),
      p999_us: m((r) => r.result.p999_us),
      serverCpu: m((r) => r.serverCpuShare),
      loadgenCpu: m((r) => r.result.loadgen_cpu_share),
      peakRssMb: m((r) => r.peakRssMb),
      errors: rs.reduce((a, r) => a + r.result.errors, 0),
      invalid: rs.some((r) => r.invalid),
      noisy: clean.length === 0,
      ...logRates(rs),
      ratio: undefined,
      ratioOf: w.compare,
      target: undefined,
      verdict: '',
    };
    if (w.compare === 'self') selfRatio(w, spec.id, row, rs, runs);
    else if (spec.kind === 'bare') bare = { rate: row.rate, p99: row.p99_us };
    else if (bare !== undefined) {
      // The ratio of the medians when no clean pair exists.
      const pairs = rs.flatMap((r) => {
        const b = bareRuns.find((x) => x.rep === r.rep && !x.noisy);
        return b === undefined || r.noisy ? [] : [metric(r) / metric(b)];
      });
      row.ratio = pairs.length > 0 ? median(pairs) : w.compare === 'rate' ? row.rate / bare.rate : row.p99_us / bare.p99;
      const t = w.targets[spec.id];
      if (t !== undefined) {
        row.target = t.text;
        row.verdict = t.text === 'report' ? '-' : t.ok(row.ratio) ? 'PASS' : 'MISS';
      }
    }
    if (row.errors > 0) row.verdict = `${row.verdict} ERRORS`.trim();
    if (row.invalid) row.verdict = `${row.verdict} INVALID`.trim();
    if (row.noisy) row.verdict = `${row.verdict} NOISY`.trim();
    rows.push(row);
  }
  return rows;
}

/** A 'self' row: each run's rate over the same run's in the reference row's window; then its target. */
function selfRatio(w: Workload, id: string, row: SummaryRow, rs: LoadRun[], runs: LoadRun[]): void {
  const refs = runs.filter((r) => r.workload === w.reference && r.server === id);
  if (refs.length === 0) return;
  const pairs = rs.flatMap((r) => {
    const b = refs.find((x) => x.rep === r.rep && !x.noisy);
    return b === undefined || r.noisy ? [] : [r.result.rate / b.result.rate];
  });
  row.ratio = pairs.length > 0 ? median(pairs) : row.rate / median(refs.map((r) => r.result.rate));
  const t = w.targets[id];
  row.target = t?.text ?? 'report';
  row.verdict = t === undefined ? '-' : t.ok(row.ratio) ? 'PASS' : 'MISS';
}

export interface IdleSummary {
  conns: number;
  bareKb: number;
  fugueKb: number;
  /** Median of the runs' median scrape times with all clients connected. */
  scrapeMs: number;
  /** Every run's timed scrapes were disturbed by other processes. */
  scrapeNoisy: boolean;
  /** The last run's /metrics bodies (0 clients, then all clients). */
  metricsBody: IdleRun['metrics'];
  drainMs: number;
  loadgenDrainMs: number;
  /** Every client of every run got `shutdown` and was closed. */
  drainedAll: boolean;
}

export function summariseIdle(idleRuns: IdleRun[], conns: number): IdleSummary {
  const kb = (id: string) => median(idleRuns.filter((r) => r.server === id).map((r) => r.kbPerConn));
  const fr = idleRuns.filter((r) => r.server === FUGUE.id);
  // As for the load rows: scrapes disturbed by other processes count only if all were.
  const cleanScrapes = fr.filter((r) => (r.foreignCpu ?? 0) <= NOISE_CORES);
  const scrapeNoisy = cleanScrapes.length === 0;
  return {
    conns,
    bareKb: kb(BARE.id),
    fugueKb: kb(FUGUE.id),
    scrapeMs: median((scrapeNoisy ? fr : cleanScrapes).map((r) => r.metrics?.loaded.medianMs ?? NaN)),
    scrapeNoisy,
    metricsBody: fr[fr.length - 1]?.metrics,
    drainMs: median(fr.map((r) => r.drain?.sigtermToExitMs ?? NaN)),
    loadgenDrainMs: median(fr.map((r) => r.drain?.loadgenDrainMs ?? NaN)),
    drainedAll: fr.every((r) => r.drain?.closedAfterShutdown === r.conns),
  };
}

export interface StartSummary {
  row: string;
  label: string;
  base: string;
  subject: string;
  unit: 'ms' | 'MB';
  /** Pairs the figures come from: the clean ones when any pair is clean. */
  pairs: number;
  baseMedian: number;
  subjectMedian: number;
  /** Median of the per-pair ratios subject / base (lower is better). */
  ratio: number;
  perPair: number[];
  /** Start-up rows: medians of the ms to the first connect() that succeeded (the socket accepting). */
  connectMs?: { base: number; subject: number };
  /** Start-up rows: the median ms from one connect() attempt to the next, as polled: the resolution of a start-up time. */
  pollMs?: number;
  /** rest-memory: medians of the anonymous part of the RSS, in MB. */
  anonMb?: { base: number; subject: number };
  target: string | undefined;
  verdict: string;
  /** Every pair was disturbed by other processes (more than NOISE_CORES over the pair). */
  noisy: boolean;
}

/**
 * A start-up row from its runs. A pair is noisy when other processes used more
 * than NOISE_CORES over its two measured spans together (one span alone, 100 ms
 * at 10 ms ticks, is too coarse); memory is not timed, so rest-memory pairs
 * never are.
 */
export function summariseStart(row: StartRow, runs: StartRun[]): StartSummary | undefined {
  const { base, subject } = row.measure;
  const mine = runs.filter((r) => r.row === row.key);
  const pairs = [...new Set(mine.map((r) => r.pair))].flatMap((p) => {
    const b = mine.find((r) => r.pair === p && r.side === base.id);
    const s = mine.find((r) => r.pair === p && r.side === subject.id);
    if (b === undefined || s === undefined) return [];
    const noisy = row.measure.kind !== 'rest-rss' && (b.foreignS + s.foreignS) / (b.wallS + s.wallS) > NOISE_CORES;
    return [{ b, s, noisy }];
  });
  if (pairs.length === 0) return undefined;
  const clean = pairs.filter((p) => !p.noisy);
  const used = clean.length > 0 ? clean : pairs;
  const med = (f: (p: (typeof used)[number]) => number) => median(used.map(f));
  const perPair = used.map((p) => p.s.value / p.b.value);
  const ratio = median(perPair);
  const sum: StartSummary = {
    row: row.key,
    label: row.label,
    base: base.id,
    subject: subject.id,
    unit: row.measure.kind === 'rest-rss' ? 'MB' : 'ms',
    pairs: used.length,
    baseMedian: med((p) => p.b.value),
    subjectMedian: med((p) => p.s.value),
    ratio,
    perPair,
    target: row.target?.text,
    verdict: row.target === undefined ? '-' : row.target.ok(ratio) ? 'PASS' : 'MISS',
    noisy: clean.length === 0,
  };
  if (row.measure.kind === 'first-answer') {
    sum.connectMs = { base: med((p) => p.b.connectMs ?? NaN), subject: med((p) => p.s.connectMs ?? NaN) };
    sum.pollMs = median(used.flatMap((p) => [p.b, p.s]).map((r) => (r.connectMs ?? NaN) / ((r.refused ?? 0) + 1)));
  }
  if (row.measure.kind === 'rest-rss') sum.anonMb = { base: med((p) => (p.b.rss?.anonKb ?? NaN) / 1024), subject: med((p) => (p.s.rss?.anonKb ?? NaN) / 1024) };
  if (sum.noisy) sum.verdict = `${sum.verdict} NOISY`;
  return sum;
}
