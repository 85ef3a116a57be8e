// The five phases of a benchmark run, in the order run.ts calls them: the
// alternating load runs (within the time budget), the idle test, the start-up
// rows, the same-core paired check and the --cpu-prof runs. Each prints a line per repetition as
// it goes, so a long run shows its progress and its spread.

import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fmtRate, fmtSi, fmtUs, pct } from './format.js';
import { runIdle, type IdleRun } from './idle.js';
import { extraRunS, runLoad, type LoadRun } from './load-run.js';
import { total } from './log-reader.js';
import type { Options } from './options.js';
import type { OtlpSink } from './otlp-sink.js';
import { PAIRED_KEYS, pairedBaseline, runPaired, type PairedRun } from './paired.js';
import { PROFILES } from './paths.js';
import { waitForQuiet } from './proc.js';
import { topSelfTime, type Profile } from './profile.js';
import { BARE, FUGUE, nodeOf, startServer, type RunningServer } from './servers.js';
import { measureSide, type StartRun } from './startup.js';
import { fanoutText } from './fanout-rows.js';
import { NOISE_CORES, workload, type StartRow, type Workload } from './workloads.js';

/** What every phase needs: the options, the OTLP sink, the clock and the list of what the budget cut. */
export interface Context {
  opts: Options;
  sink: OtlpSink;
  /** Seconds since the harness started. */
  elapsed(): number;
  /** Repetitions dropped to stay within --budget, e.g. "churn rep 3+". */
  skipped: string[];
}

/** Estimated seconds of one idle repetition (start, 10k clients, scrapes, drain). */
const IDLE_COST_S = 12;

const stamp = (ctx: Context) => `  [${ctx.elapsed().toFixed(0).padStart(3)}s]`;

/**
 * Every workload, repetition by repetition, its servers alternating (bare,
 * fugue, ...). Repetition 1 of everything always runs; a further repetition
 * only if one more round still leaves time for one round of every remaining
 * workload (and the idle test) inside the budget. A run gives one LoadRun
 * per measured window (the fan-out runs: two).
 */
export async function runAlternating(ctx: Context, workloads: Workload[], doIdle: boolean): Promise<LoadRun[]> {
  const { opts } = ctx;
  const runs: LoadRun[] = [];
  let runCostS = opts.seconds + opts.warmup + 1.5; // refined from measured runs
  for (let wi = 0; wi < workloads.length; wi++) {
    const w = workloads[wi] as Workload;
    for (let rep = 1; rep <= opts.reps; rep++) {
      if (rep > 1) {
        const round = (x: Workload) => x.servers.length * (runCostS + extraRunS(x, opts));
        const rest = workloads.slice(wi + 1).reduce((a, x) => a + round(x), 0) + (doIdle ? 2 * IDLE_COST_S : 0);
        if (ctx.elapsed() + round(w) + rest > opts.budgetS) {
          ctx.skipped.push(`${w.key} rep ${rep}+`);
          break;
        }
      }
      for (const spec of w.servers) {
        const t0 = performance.now();
        await waitForQuiet();
        const windows = await runLoad(w, spec, rep, opts, ctx.sink);
        runs.push(...windows);
        // What a plain run costs (one window, the usual warm-up): the estimate for every workload.
        const cost = (performance.now() - t0) / 1000 - extraRunS(w, opts);
        runCostS = Math.max(runCostS * 0.7 + cost * 0.3, cost);
        for (const run of windows) {
          const r = run.result;
          console.log(
            `${stamp(ctx)} ${rowLabel(w, run)} / ${spec.id} #${rep}: ${fmtRate(r.rate)} p99 ${fmtUs(r.p99_us)} ` +
              `srv ${pct(run.serverCpuShare)} lg ${pct(r.loadgen_cpu_share)}` +
              `${run.logs ? ` log ${fmtSi(total(run.logs.window).lines / r.seconds)} lines/s (reader ${pct(run.logs.readerCpuShare)})` : ''}` +
              `${run.fanout ? ` ${fanoutText(run)}` : ''}` +
              `${r.errors ? ` errors ${r.errors}` : ''}${run.invalid ? ' INVALID' : ''}` +
              `${run.noisy ? ` NOISY (other processes used ${run.foreignCpu.toFixed(2)} cores)` : ''}`,
          );
        }
      }
    }
  }
  return runs;
}

/** The label of the row a window belongs to. */
const rowLabel = (w: Workload, run: LoadRun): string => (run.workload === w.second?.key ? w.second.label : w.label);

/** The idle test, bare then fugue, repeated while the budget allows. */
export async function runIdleTests(ctx: Context): Promise<IdleRun[]> {
  const { opts } = ctx;
  const idleRuns: IdleRun[] = [];
  for (let rep = 1; rep <= opts.idleReps; rep++) {
    if (rep > 1 && ctx.elapsed() + 2 * IDLE_COST_S > opts.budgetS) {
      ctx.skipped.push(`idle rep ${rep}+`);
      break;
    }
    for (const spec of [BARE, FUGUE]) {
      await waitForQuiet();
      const run = await runIdle(spec, rep, opts);
      idleRuns.push(run);
      console.log(
        `${stamp(ctx)} idle ${opts.idleConns} / ${spec.id} #${rep}: ${run.kbPerConn.toFixed(2)} KB/conn, opened in ${run.openS}s` +
          (run.metrics ? `, /metrics ${run.metrics.loaded.medianMs.toFixed(1)} ms, drain ${run.drain?.sigtermToExitMs.toFixed(0)} ms` : '') +
          ((run.foreignCpu ?? 0) > NOISE_CORES ? ` NOISY scrapes (other processes used ${(run.foreignCpu ?? 0).toFixed(2)} cores)` : ''),
      );
    }
  }
  return idleRuns;
}

const fmtStart = (row: StartRow, v: number) => (row.measure.kind === 'rest-rss' ? `${v.toFixed(1)} MB` : `${v.toFixed(0)} ms`);

/**
 * The start-up rows: pairs of (base, subject), which runs first alternating
 * from pair to pair, after one uncounted pair that brings the files into the
 * page cache. Not cut by the budget. The process row (ctl) talks to one
 * fugue-server at its default configuration, started for the row and pinned
 * to core 1, so that core 0 is the measured process's alone.
 */
export async function runStartRows(ctx: Context, rows: StartRow[]): Promise<StartRun[]> {
  const { opts } = ctx;
  const runs: StartRun[] = [];
  for (const row of rows) {
    const pairs = row.key === 'rest-memory' ? opts.reps : opts.startReps;
    let ctlServer: RunningServer | undefined;
    try {
      if (row.measure.kind === 'process') ctlServer = await startServer(FUGUE, { core: 1, ...nodeOf(opts) });
      const { base, subject } = row.measure;
      for (let pair = 0; pair <= pairs; pair++) {
        await waitForQuiet();
        const order = pair % 2 === 1 ? [base, subject] : [subject, base];
        const got: StartRun[] = [];
        for (const [i, side] of order.entries()) got.push(await measureSide(row, side, pair, i === 0, opts, ctx.sink, ctlServer));
        const [b, s] = [got.find((r) => r.side === base.id), got.find((r) => r.side === subject.id)] as [StartRun, StartRun];
        const foreign = (b.foreignS + s.foreignS) / (b.wallS + s.wallS);
        console.log(
          `${stamp(ctx)} ${row.label} ${pair === 0 ? 'warm-up (not counted)' : `#${pair}`}: ${base.id} ${fmtStart(row, b.value)}, ${subject.id} ${fmtStart(row, s.value)}: ` +
            `${(s.value / b.value).toFixed(2)}x${row.measure.kind !== 'rest-rss' && foreign > NOISE_CORES ? ` NOISY (other processes used ${foreign.toFixed(2)} cores)` : ''}`,
        );
        if (pair > 0) runs.push(...got);
      }
    } finally {
      await ctlServer?.stop();
    }
  }
  return runs;
}

/** Same-core paired check: echo 64 B and churn, fugue against bare (or against another build with --against DIR). Not cut by the budget. */
export async function runPairedCheck(ctx: Context): Promise<PairedRun[]> {
  const { opts } = ctx;
  const base = pairedBaseline(opts);
  const runs: PairedRun[] = [];
  for (const key of PAIRED_KEYS) {
    const w = workload(key);
    for (let rep = 1; rep <= opts.pairedReps; rep++) {
      await waitForQuiet();
      const run = await runPaired(w, base, FUGUE, rep, opts, ctx.sink);
      runs.push(run);
      console.log(
        `${stamp(ctx)} same core, at once: ${w.label} #${rep}: ${base.id} ${fmtRate(run.rateA)}, fugue ${fmtRate(run.rateB)}: ${run.ratio.toFixed(3)}x${run.invalid ? ' INVALID' : ''}`,
      );
    }
  }
  return runs;
}

/**
 * --cpu-prof: extra runs, not part of the results (the profiler itself slows a
 * server down). Both servers are profiled so their top entries can be compared.
 */
export async function runProfiles(ctx: Context): Promise<Profile[]> {
  const w = workload('echo64');
  const profiles: Profile[] = [];
  for (const spec of [BARE, FUGUE]) {
    const dir = join(PROFILES, spec.id);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await waitForQuiet();
    const [run] = (await runLoad(w, spec, 0, ctx.opts, ctx.sink, dir)) as [LoadRun];
    console.log(`${stamp(ctx)} ${w.label} / ${spec.id} under --cpu-prof (not counted): ${fmtRate(run.result.rate)}`);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file !== undefined) profiles.push({ server: spec.id, rate: run.result.rate, file: join(dir, file), top: topSelfTime(join(dir, file)) });
  }
  return profiles;
}
