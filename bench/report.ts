// The text report printed at the end of a run: the load table, what the OTLP
// rows exported, the idle checks, the start-up rows, the paired check, notes about disturbed or
// skipped repetitions, and the --cpu-prof tables. bench/README.md explains
// every column.

import { POLL_MS } from './first-answer.js';
import { fmtRate, fmtSi, fmtUs, pct, table } from './format.js';
import { total } from './log-reader.js';
import type { LoadRun, LogRun } from './load-run.js';
import type { PairedSummary } from './paired.js';
import { ROOT } from './paths.js';
import type { Profile } from './profile.js';
import { FUGUE_T1, FUGUE_T100 } from './servers.js';
import type { IdleSummary, StartSummary, SummaryRow } from './summary.js';
import { NOISE_CORES, workload } from './workloads.js';

export function loadTable(rows: SummaryRow[]): string {
  const out: string[][] = [['workload', 'server', 'reps', 'rate', 'p50', 'p99', 'p99.9', 'srv CPU', 'lg CPU', 'RSS MB', 'log/s', 'log B/s', 'ratio', 'target', 'result']];
  for (const r of rows) {
    out.push([
      r.label,
      r.server,
      String(r.reps),
      fmtRate(r.rate),
      fmtUs(r.p50_us),
      fmtUs(r.p99_us),
      fmtUs(r.p999_us),
      pct(r.serverCpu),
      pct(r.loadgenCpu),
      r.peakRssMb.toFixed(0),
      r.logLinesPerS === undefined ? '' : fmtSi(r.logLinesPerS),
      r.logBytesPerS === undefined ? '' : fmtSi(r.logBytesPerS),
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x${r.ratioOf === 'rate' ? '' : ` ${r.ratioOf}`}`,
      r.target ?? '',
      r.verdict,
    ]);
  }
  return table(out);
}

/** What the OTLP runs exported, and whether the batch processor kept up. */
export function otlpLines(runs: LoadRun[]): string[] {
  return [FUGUE_T1, FUGUE_T100].flatMap((spec) => {
    const tr = runs.filter((r) => r.server === spec.id && r.tracing !== undefined);
    if (tr.length === 0) return [];
    const msgs = tr.reduce((a, r) => a + r.result.replies, 0);
    const mb = tr.reduce((a, r) => a + (r.tracing?.bytes ?? 0), 0) / 1e6;
    const reqs = tr.reduce((a, r) => a + (r.tracing?.requests ?? 0), 0);
    const dropped = tr.reduce((a, r) => a + (r.tracing?.spansDropped ?? 0), 0);
    const share = msgs > 0 ? (dropped / msgs) * 100 : 0;
    return [`${spec.id}: ${reqs} OTLP requests, ${mb.toFixed(1)} MB exported, ${dropped} spans dropped (fugue_spans_dropped_total) for ${(msgs / 1e6).toFixed(2)}M measured messages in ${tr.length} run(s): ${share.toFixed(2)} % dropped${spec.tracing === 1 ? ` (target < 1 %: ${share < 1 ? 'met' : 'MISS'})` : ''}`];
  });
}

/**
 * Per fugue row kind (fugue, fugue log=warn, ...), over all its runs: what its
 * log consumer read in the measured windows and over the whole runs (start-up
 * to exit), whether fugue's own counters (fugue_log_lines_written_total,
 * fugue_log_written_bytes_total) agree with what was read, the lines fugue
 * dropped (fugue_log_lines_dropped_total) and the consumer's peak CPU.
 */
export function logTable(runs: LoadRun[]): string | undefined {
  const ids = [...new Set(runs.filter((r) => r.logs !== undefined).map((r) => r.server))];
  if (ids.length === 0) return undefined;
  const rows: string[][] = [['log output of', 'log.level', 'runs', 'window lines', 'window MB', 'run lines', 'run MB', 'on stderr', 'fugue counters', 'dropped', 'reader CPU']];
  const disagreements: string[] = [];
  for (const id of ids) {
    const rs = runs.filter((r) => r.server === id && r.logs !== undefined);
    const sum = (f: (l: LogRun) => number) => rs.reduce((a, r) => a + f(r.logs as LogRun), 0);
    const checked = rs.filter((r) => r.logs?.agree !== undefined);
    const off = checked.filter((r) => r.logs?.agree === false);
    for (const r of off) {
      const l = r.logs as LogRun;
      disagreements.push(`${r.workload}/${r.server} #${r.rep}: read ${l.readAtScrape.lines} lines ${l.readAtScrape.bytes} B, fugue counted ${l.counters.linesWritten} lines ${l.counters.bytesWritten} B`);
    }
    rows.push([
      id,
      rs[0]?.logs?.level ?? '?',
      String(rs.length),
      fmtSi(sum((l) => total(l.window).lines)),
      (sum((l) => total(l.window).bytes) / 1e6).toFixed(1),
      fmtSi(sum((l) => total(l.whole).lines)),
      (sum((l) => total(l.whole).bytes) / 1e6).toFixed(1),
      String(sum((l) => l.whole.stderr.lines)),
      checked.length === 0 ? 'not in build' : `${off.length === 0 ? 'agree' : 'DISAGREE'} ${checked.length - off.length}/${checked.length}`,
      String(sum((l) => l.counters.linesDropped ?? 0)),
      `<= ${pct(Math.max(...rs.map((r) => r.logs?.readerCpuShare ?? 0)))}`,
    ]);
  }
  const text = [table(rows)];
  if (disagreements.length > 0) text.push(`log counters that disagree with the consumer: ${disagreements.join('; ')}`);
  return text.join('\n');
}

export function idleTable(s: IdleSummary): string {
  const m0 = s.metricsBody;
  return table([
    ['check', 'bare', 'fugue', 'target', 'result'],
    [`idle memory, ${s.conns} clients`, `${s.bareKb.toFixed(2)} KB/conn`, `${s.fugueKb.toFixed(2)} KB/conn (${(s.fugueKb / s.bareKb).toFixed(2)}x)`, '<= 8 KB/conn', s.fugueKb <= 8 ? 'PASS' : 'MISS'],
    [`/metrics scrape, ${s.conns} clients`, '', `${s.scrapeMs.toFixed(1)} ms, ${m0?.loaded.bytes ?? '?'} B, ${m0?.loaded.series ?? '?'} series`, '< 20 ms', `${s.scrapeMs < 20 ? 'PASS' : 'MISS'}${s.scrapeNoisy ? ' NOISY' : ''}`],
    ['/metrics scrape, 0 clients (1000 came and left)', '', `${(m0?.idle.medianMs ?? NaN).toFixed(1)} ms, ${m0?.idle.bytes ?? '?'} B, ${m0?.idle.series ?? '?'} series`, 'same size', ''],
    [`drain ${s.conns} clients (SIGTERM->exit)`, '', `${s.drainMs.toFixed(0)} ms (loadgen: last close ${s.loadgenDrainMs.toFixed(0)} ms after 1st shutdown)`, '< 1000 ms', `${s.drainMs < 1000 ? 'PASS' : 'MISS'}${s.drainedAll ? '' : ' INCOMPLETE'}`],
  ]);
}

/**
 * The start-up rows: medians of each side, the median of the per-pair ratios
 * and their spread; then, per row, what else the runs showed (when the socket
 * first accepted a connection; the anonymous part of the resident memory).
 */
export function startTable(sums: StartSummary[]): string {
  const v = (s: StartSummary, x: number) => (s.unit === 'MB' ? `${x.toFixed(1)} MB` : `${x.toFixed(0)} ms`);
  const rows: string[][] = [['start-up, per call, at rest', 'baseline', 'subject', 'pairs', 'baseline', 'subject', 'ratio', 'spread', 'target', 'result']];
  const notes: string[] = [];
  for (const s of sums) {
    const spread = `${Math.min(...s.perPair).toFixed(2)}-${Math.max(...s.perPair).toFixed(2)}x`;
    rows.push([s.label, s.base, s.subject, String(s.pairs), v(s, s.baseMedian), v(s, s.subjectMedian), `${s.ratio.toFixed(2)}x`, spread, s.target ?? 'report', s.verdict]);
    if (s.connectMs) {
      notes.push(`${s.row}: first connect() accepted at ${s.connectMs.base.toFixed(0)} ms (${s.base}) and ${s.connectMs.subject.toFixed(0)} ms (${s.subject}), medians; one connect() attempt every ${s.pollMs?.toFixed(1)} ms (the resolution)`);
    }
    if (s.anonMb) notes.push(`${s.row}: of which anonymous (heaps, stacks; the rest is the node binary's and libraries' file pages) ${s.anonMb.base.toFixed(1)} MB (${s.base}) and ${s.anonMb.subject.toFixed(1)} MB (${s.subject})`);
  }
  return [table(rows), ...notes].join('\n');
}

export function pairedTable(summaries: PairedSummary[]): string {
  const rows: string[][] = [['workload', 'compared with', 'reps', 'fugue / it', 'per repetition']];
  for (const s of summaries) rows.push([workload(s.workload).label, s.against, String(s.reps), `${s.ratio.toFixed(3)}x`, s.perRep.map((r) => r.toFixed(3)).join(' ')]);
  return ['same-core paired check (both servers on core 0 at the same time, one load generator each on core 1):', table(rows)].join('\n');
}

/** Notes under the tables: how to read the ratio, and what was disturbed, left out or skipped. */
export function notes(x: { rows: SummaryRow[]; runs: LoadRun[]; starts: StartSummary[]; node: string; quietWaitS: number; skipped: string[]; budgetS: number; totalS: number; nofile: number | undefined }): string[] {
  const lines: string[] = [];
  if (x.rows.length > 0) {
    lines.push('ratio = fugue / bare from the same run (throughput: higher is better; "p99": latency, lower is better): the median of the repetitions\' ratios, each against the bare run just before it.');
    if (x.rows.some((r) => r.workload.startsWith('fanout'))) {
      lines.push(
        'fan-out rows: rate = messages delivered per second to all reading subscribers together; p50/p99 = from a publish request queued to a message of it read by one of 10 subscribers that read at once (the others read every 10 ms); ' +
          'fugue runs as bench/fanout-server.js (the real App with bench/fanout-feature.ts). Each run measures the 1,000 alone (the first row), then again once a 1,001st subscriber has stopped reading (the second); ' +
          '"self" = the second window against the first of the same run. RSS MB: VmRSS as the first window closed; for the second, the peak.',
      );
    }
    lines.push('fugue runs at its default configuration, log.level info (rows "log=LEVEL": that level), its stdout and stderr read by a separate consumer process on core 1; log/s, log B/s: the lines and bytes it read per second of the measured window.');
  }
  const noisy = x.rows.filter((r) => r.noisy);
  if (noisy.length > 0) lines.push(`NOISY rows: other processes used > ${NOISE_CORES} cores during every repetition; treat them with care: ${noisy.map((r) => `${r.label}/${r.server}`).join(', ')}`);
  const dropped = x.runs.filter((r) => r.noisy).length;
  if (dropped > 0) lines.push(`${dropped} noisy repetition(s) (other processes competing for CPU) were left out of the medians.`);
  const invalid = x.rows.filter((r) => r.invalid);
  if (invalid.length > 0) lines.push(`INVALID rows: the loadgen used >= 95% of its core, so they measured the generator: ${invalid.map((r) => `${r.label}/${r.server}`).join(', ')}`);
  if (x.quietWaitS > 1) lines.push(`waited ${x.quietWaitS.toFixed(0)} s in total for other processes to quieten down before runs.`);
  if (x.starts.length > 0) {
    lines.push(`start-up rows: ${x.node}; ratio = subject / baseline, lower is better: the median of per-pair ratios, the order within a pair alternating; a start is from just before spawn() to the reply to a first connect (polled every ${POLL_MS} ms), a call from spawn() to exit.`);
  }
  const noisyStarts = x.starts.filter((s) => s.noisy);
  if (noisyStarts.length > 0) lines.push(`NOISY start-up rows: other processes used > ${NOISE_CORES} cores during every pair: ${noisyStarts.map((s) => s.row).join(', ')}`);
  if (x.skipped.length > 0) lines.push(`skipped to stay within the ${x.budgetS}s budget: ${x.skipped.join(', ')}`);
  lines.push(`total ${x.totalS.toFixed(0)} s;${x.nofile === undefined ? '' : ` server RLIMIT_NOFILE ${x.nofile};`} results in bench/results/latest.json`);
  return lines;
}

export function profileTable(p: Profile): string {
  return [
    `top self-time in ${p.server} under echo 64B at ${fmtRate(p.rate)} (node --cpu-prof, ${p.file.replace(ROOT, '')}):`,
    table([['function', 'where', 'self ms', '%'], ...p.top.map((t) => [t.fn, t.where, String(t.ms), `${t.pct}%`])]),
  ].join('\n');
}
