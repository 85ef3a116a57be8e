// bench/results/latest.json: every repetition's raw numbers and the summary of
// the last run, for comparing runs and for the figures in docs/performance.md.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { IdleRun } from './idle.js';
import type { LoadRun } from './load-run.js';
import type { Options } from './options.js';
import type { PairedRun, PairedSummary } from './paired.js';
import { RESULTS } from './paths.js';
import type { StalledSummary } from './fanout-rows.js';
import type { Profile } from './profile.js';
import type { StartRun } from './startup.js';
import type { IdleSummary, StartSummary, SummaryRow } from './summary.js';

export interface Results {
  opts: Options;
  pinned: boolean;
  nofile: number | undefined;
  totalS: number;
  rows: SummaryRow[];
  /** fanout-stalled: what became of the stopped subscriber, per server. */
  stalled: StalledSummary[];
  pairedSummary: PairedSummary[];
  pairedRuns: PairedRun[];
  idle: IdleSummary | undefined;
  starts: StartSummary[];
  startRuns: StartRun[];
  skipped: string[];
  runs: LoadRun[];
  idleRuns: IdleRun[];
  profiles: Profile[];
}

export function writeResults(r: Results): string {
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, 'latest.json');
  const scale =
    r.idle === undefined
      ? {}
      : { kbPerConn: { bare: r.idle.bareKb, fugue: r.idle.fugueKb }, metricsScrapeMs: r.idle.scrapeMs, metricsBody: r.idle.metricsBody, drainMs: r.idle.drainMs, loadgenDrainMs: r.idle.loadgenDrainMs };
  const json = {
    date: new Date().toISOString(),
    // node: the harness's; serverNode: what ran the servers, fuguectl and the baselines (--node).
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, serverNode: r.opts.node ?? { path: process.execPath, version: process.version }, pinned: r.pinned, serverNofile: r.nofile },
    options: { ...r.opts, only: r.opts.only ? [...r.opts.only] : undefined },
    totalSeconds: r.totalS,
    summary: r.rows,
    ...(r.stalled.length > 0 ? { fanoutStalled: r.stalled } : {}),
    paired: r.pairedSummary,
    pairedRuns: r.pairedRuns,
    scale,
    startup: r.starts,
    startRuns: r.startRuns,
    skipped: r.skipped,
    runs: r.runs,
    idleRuns: r.idleRuns,
    ...(r.profiles.length > 0 ? { profiles: r.profiles } : {}),
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}
