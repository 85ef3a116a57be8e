// The benchmark harness behind `npm run bench` (see bench/README.md).
//
// It compares the real fugue-server CLI with bench/bare-server.ts, a minimal
// protocol v1 server, in the same run on the same machine, and reports ratios:
// absolute numbers depend on the machine, the ratio to a bare Node server is
// what fugue's own code (framing, routing, metrics, spans, logs) costs.
//
// - Load comes from bench/loadgen.c (compiled here), a C epoll client that uses
//   far less CPU per message than the servers. It reports its own CPU share;
//   a run where it used >= 95% of its core measured the generator: INVALID.
// - fugue runs as deployed: default configuration (log level info), its stdout
//   and stderr read by a separate log consumer process (bench/logreader.c);
//   --log-level adds rows at other levels.
// - Server on core 0; loadgen, fugue's log consumer and this harness on core 1,
//   via taskset, so the two sides do not steal each other's CPU.
// - Servers alternate (bare, fugue, bare, fugue, ...) and each pair repeats, the
//   median is reported: slow drifts of the machine (thermal, other tenants) hit
//   both sides instead of whichever ran last.
// - Every server is a fresh process; all children are killed on any exit path.
//
// This file is the entry point and the order of things; each step lives in
// its own module (bench/README.md lists them). Flags: --help.

import { performance } from 'node:perf_hooks';
import { ensureHelpers, snapshotServers } from './build.js';
import { helpText, parseOptions, UsageError, wantsHelp, type Options } from './options.js';
import { OtlpSink } from './otlp-sink.js';
import { runAlternating, runIdleTests, runPairedCheck, runProfiles, runStartRows, type Context } from './phases.js';
import { quietWaitedS } from './proc.js';
import { detectPinning, killAll, killChildrenOnExit } from './processes.js';
import { stalledLines, summariseStalled } from './fanout-rows.js';
import { idleTable, loadTable, logTable, notes, otlpLines, pairedTable, profileTable, startTable } from './report.js';
import { writeResults } from './results.js';
import { summarise, summariseIdle, summariseStart } from './summary.js';
import { pairedBaseline, summarisePaired } from './paired.js';
import { warmupOf } from './load-run.js';
import { rowsOf, startRowsFor, workloadsFor, type Workload } from './workloads.js';

const T_START = performance.now();

async function main(opts: Options): Promise<void> {
  killChildrenOnExit();
  const pinned = detectPinning();
  ensureHelpers();
  snapshotServers();
  const sink = new OtlpSink();
  await sink.start();
  const ctx: Context = { opts, sink, elapsed: () => (performance.now() - T_START) / 1000, skipped: [] };

  const workloads = workloadsFor(opts);
  const startRows = startRowsFor(opts);
  // Which Node ran what: --node runs every measured process on another one.
  const nodeText = opts.node === undefined ? `node ${process.version}` : `servers, fuguectl and baselines on node ${opts.node.version} (${opts.node.path}), harness on node ${process.version}`;
  const doIdle = opts.only === undefined || opts.only.has('idle');
  const doPaired = opts.only === undefined || opts.only.has('paired') || opts.against !== undefined;

  console.log(
    `fugue-server benchmark: ${opts.quick ? 'QUICK (smoke test) ' : ''}` +
      // The load figures only when a load phase runs (not for --only startup,ctl ...).
      `${workloads.length > 0 || doIdle || doPaired ? `${opts.seconds}s measured after ${opts.warmup}s warm-up${ownWarmup(workloads, opts)}, up to ${opts.reps} repetitions, ` : ''}` +
      `${startRows.some((r) => r.key !== 'rest-memory') ? `${opts.startReps} start-up pairs, ` : ''}` +
      `${startRows.some((r) => r.key === 'rest-memory') ? `${opts.reps} rest-memory pairs, ` : ''}` +
      `${pinned ? 'server pinned to core 0, loadgen, log reader and harness to core 1' : 'NOT PINNED (taskset missing or < 2 cores): numbers are noisier'}; ${nodeText}`,
  );
  const runs = await runAlternating(ctx, workloads, doIdle);
  const idleRuns = doIdle ? await runIdleTests(ctx) : [];
  const startRuns = await runStartRows(ctx, startRows);
  const pairedRuns = doPaired ? await runPairedCheck(ctx) : [];
  const profiles = opts.cpuProf ? await runProfiles(ctx) : [];
  sink.close();

  const rows = workloads.flatMap(rowsOf).flatMap((w) => summarise(w, runs));
  if (rows.length > 0) console.log(`\n${loadTable(rows)}`);
  for (const line of otlpLines(runs)) console.log(line);
  const stalled = summariseStalled(runs);
  for (const line of stalledLines(stalled)) console.log(line);
  const logs = logTable(runs);
  if (logs !== undefined) console.log(`\n${logs}`);
  const idle = idleRuns.length > 0 ? summariseIdle(idleRuns, opts.idleConns) : undefined;
  if (idle !== undefined) console.log(`\n${idleTable(idle)}`);
  const starts = startRows.flatMap((r) => summariseStart(r, startRuns) ?? []);
  if (starts.length > 0) console.log(`\n${startTable(starts)}`);
  const pairedSummary = summarisePaired(pairedRuns, pairedBaseline(opts).id);
  if (pairedSummary.length > 0) console.log(`\n${pairedTable(pairedSummary)}`);

  const nofile = idleRuns[0]?.nofile ?? runs[0]?.nofile;
  const totalS = ctx.elapsed();
  console.log('');
  for (const line of notes({ rows, runs, starts, node: nodeText, quietWaitS: quietWaitedS(), skipped: ctx.skipped, budgetS: opts.budgetS, totalS, nofile })) console.log(line);
  for (const p of profiles) console.log(`\n${profileTable(p)}`);

  writeResults({ opts, pinned, nofile, totalS, rows, stalled, pairedSummary, pairedRuns, idle, starts, startRuns, skipped: ctx.skipped, runs, idleRuns, profiles });
}

/** The workloads with a warm-up of their own (fan-out: two windows after it), for the header line. */
function ownWarmup(workloads: Workload[], opts: Options): string {
  const own = workloads.filter((w) => warmupOf(w, opts) !== opts.warmup);
  return own.map((w) => ` (${w.key}: ${w.second === undefined ? '' : 'two windows '}after ${warmupOf(w, opts)}s)`).join('');
}

/** Parse the command line; --help and usage errors end here, before anything is built or started. */
function options(argv: string[]): Options {
  if (wantsHelp(argv)) {
    process.stdout.write(helpText());
    process.exit(0);
  }
  try {
    return parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\nrun with --help to see every flag, its meaning and its default\n`);
    process.exit(err.exitCode);
  }
}

main(options(process.argv.slice(2))).then(
  () => {
    killAll();
    process.exit(0);
  },
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    killAll();
    process.exit(1);
  },
);
