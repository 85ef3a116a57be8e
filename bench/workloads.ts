// The load workloads: what the load generator does, which servers run it, what
// the fugue / bare ratio compares, and the targets from the performance issue;
// then the start-up rows (start-up, fuguectl per call, memory at rest), whose
// two sides are timed or measured one after the other instead of under load.

import type { Options } from './options.js';
import { BARE, FUGUE, FUGUE_FANOUT, FUGUE_FANOUT_DISCONNECT, FUGUE_T1, FUGUE_T100, type ServerSpec } from './servers.js';
import { programOf } from './paths.js';

export interface Target {
  text: string;
  ok(ratio: number): boolean;
}

export interface Workload {
  key: string;
  label: string;
  /** loadgen mode and its arguments. */
  args: string[];
  /** In the order they run within a repetition; bare first, every ratio is against it. */
  servers: ServerSpec[];
  /**
   * What the ratio compares: throughput (higher is better) or p99 latency
   * (lower is better) against bare; or, 'self', each server's throughput
   * against its own in the `reference` row's window of the same run.
   */
  compare: 'rate' | 'p99' | 'self';
  /** By server id; a server without one is only reported. */
  targets: Record<string, Target | undefined>;
  /** compare 'self': the row whose window of the same run this one's rate is divided by. */
  reference?: string;
  /** Load generator arguments of one server's runs only, after `args`, by server id. */
  serverArgs?: Record<string, string[]>;
  /** Warm-up in seconds instead of --seconds' companion (not with --quick). */
  warmupS?: number;
  /** The row that the runs' second measured window makes (the fan-out runs: after a subscriber stopped reading). */
  second?: Pick<Workload, 'key' | 'label' | 'compare' | 'targets'>;
}

/**
 * Other processes (a build, a test run) using more than this many cores during
 * a window make it NOISY: its numbers are kept out of the medians when a clean
 * repetition exists.
 */
export const NOISE_CORES = 0.15;

const atLeast = (x: number): Target => ({ text: `>= ${x}x`, ok: (r) => r >= x });
const atMost = (x: number): Target => ({ text: `<= ${x}x`, ok: (r) => r <= x });

/** The fan-out rows' load: 1,000 reading subscribers, 4 publishes of one 1 KiB message in flight. */
const FANOUT_ARGS = ['fanout', '--conns', '1000', '--inflight', '4', '--batch', '1', '--size', '1024'];

export const WORKLOADS: readonly Workload[] = [
  {
    key: 'echo64',
    label: 'echo 64B c=100 w=16',
    args: ['echo', '--conns', '100', '--inflight', '16', '--size', '64'],
    servers: [BARE, FUGUE, FUGUE_T1, FUGUE_T100],
    compare: 'rate',
    // Issue 12: the default config, outcome-aware sampling (errors + slow + 1 %),
    // and full-rate tracing (with < 1 % of spans dropped: see the OTLP lines of the report).
    targets: { fugue: atLeast(1.1), 'fugue+otlp 1%': atLeast(0.95), 'fugue+otlp 100%': atLeast(0.5) },
  },
  {
    key: 'echo4k',
    label: 'echo 4KiB c=100 w=16',
    args: ['echo', '--conns', '100', '--inflight', '16', '--size', '4096'],
    servers: [BARE, FUGUE],
    compare: 'rate',
    targets: { fugue: atLeast(0.9) },
  },
  {
    key: 'latency',
    label: 'echo 64B c=1 w=1',
    args: ['latency', '--size', '64'],
    servers: [BARE, FUGUE],
    compare: 'p99',
    targets: { fugue: atMost(1.0) },
  },
  {
    key: 'churn',
    label: 'connect churn x16',
    args: ['churn', '--parallel', '16'],
    servers: [BARE, FUGUE],
    compare: 'rate',
    targets: { fugue: atLeast(1.0) },
  },
  // Issue 17, item 3: one publisher, 1,000 subscribers, every message to each
  // (bench/fanout-feature.ts; bare: one write per subscriber). 1 KiB messages:
  // a stopped subscriber's backlog passes the drop stream's 256 KiB within
  // about 1.5 s (at 64 B it would take over 10 s). Each run measures two
  // windows: the 1,000 alone (this row), then the same 1,000 once a 1,001st
  // subscriber has subscribed and stopped reading (the second row, against
  // the first window: 'self'). fugue's second window opens once it has dealt
  // with the stopped subscriber (dropped from it, or cut it off), at most 10 s
  // after it subscribed. A 10 s warm-up: fugue's fan-out rate settles after
  // 7-9 s of sustained publishing (docs/performance.md, "Fan-out").
  {
    key: 'fanout',
    label: 'fan-out 1000 subs 1KiB',
    args: [...FANOUT_ARGS, '--stalled', '1'],
    servers: [BARE, FUGUE_FANOUT, FUGUE_FANOUT_DISCONNECT],
    compare: 'rate',
    targets: { fugue: atLeast(1.0) },
    serverArgs: { fugue: ['--stall-wait-s', '10'], 'fugue disconnect': ['--on-slow', 'disconnect', '--stall-wait-s', '10'] },
    warmupS: 10,
    second: { key: 'fanout-stalled', label: 'fan-out 1000 + 1 stalled', compare: 'self', targets: { fugue: atLeast(0.9) } },
  },
];

/** A fugue row at a log level other than its default (--log-level). */
export const fugueAtLevel = (level: string): ServerSpec => ({ id: `fugue log=${level}`, kind: 'fugue', logLevel: level });

/**
 * The workloads of this run: the table, with a row per --log-level level right
 * after the plain fugue row of each. Those rows have no target: they are reported.
 */
export function workloadsFor(opts: Pick<Options, 'logLevels' | 'only'>): Workload[] {
  return WORKLOADS.filter((w) => opts.only === undefined || opts.only.has(w.key)).map((w) => {
    const servers = w.servers.flatMap((s) => (s === FUGUE ? [s, ...opts.logLevels.map(fugueAtLevel)] : [s]));
    return { ...w, servers };
  });
}

/** The rows of the report a workload makes: itself, and the row of its runs' second window, compared with the first. */
export function rowsOf(w: Workload): Workload[] {
  if (w.second === undefined) return [w];
  const { second, ...first } = w;
  return [first, { ...first, ...second, reference: w.key }];
}

/** The workload with this key (the paired check and --cpu-prof reuse echo64 and churn). */
export function workload(key: string): Workload {
  const w = WORKLOADS.find((x) => x.key === key);
  if (w === undefined) throw new Error(`no workload ${key}`);
  return w;
}

/** fugue exporting spans over OTLP/HTTP to the harness's sink at its default ratio (outcome-aware, 1 %). */
export const FUGUE_OTLP: ServerSpec = { id: 'fugue+otlp', kind: 'fugue', tracing: 0.01 };

/** A process run to its end: `args` after the node binary; `root` is where the snapshot's dist/ is. */
export interface ProcessSpec {
  id: string;
  args(root: string): string[];
}

/** What a start-up row measures, for each side of a pair. */
export type StartMeasure =
  /** A server, from just before spawn() to the reply to its first client's `connect` (first-answer.ts), in ms. */
  | { kind: 'first-answer'; base: ServerSpec; subject: ServerSpec }
  /** A process, from just before spawn() to its exit, in ms; a fugue-server at its default configuration runs for it to talk to. */
  | { kind: 'process'; base: ProcessSpec; subject: ProcessSpec }
  /** A server's resident memory once started, answered one client and settled, in MB. */
  | { kind: 'rest-rss'; base: ServerSpec; subject: ServerSpec };

/** A row of the start-up table: pairs of (base, subject), alternating which runs first; ratio = subject / base, lower is better. */
export interface StartRow {
  key: 'startup' | 'startup-otlp' | 'ctl' | 'rest-memory';
  label: string;
  measure: StartMeasure;
  /** Issue 17's target; undefined: reported, no target. */
  target: Target | undefined;
}

export const NODE_E0: ProcessSpec = { id: 'node -e 0', args: () => ['-e', '0'] };
export const CTL_PING: ProcessSpec = { id: 'fuguectl ping', args: (root) => [programOf(root, 'fuguectl'), 'ping'] };

export const START_ROWS: readonly StartRow[] = [
  // Issue 17, items 1, 2 and 5.
  { key: 'startup', label: 'start-up, exec -> first answer', measure: { kind: 'first-answer', base: BARE, subject: FUGUE }, target: atMost(1.3) },
  { key: 'startup-otlp', label: 'start-up, OTLP export on', measure: { kind: 'first-answer', base: BARE, subject: FUGUE_OTLP }, target: undefined },
  { key: 'ctl', label: 'one CLI call, exec -> exit', measure: { kind: 'process', base: NODE_E0, subject: CTL_PING }, target: atMost(1.2) },
  { key: 'rest-memory', label: 'resident memory at rest', measure: { kind: 'rest-rss', base: BARE, subject: FUGUE }, target: undefined },
];

/** The start-up rows of this run (--only). */
export const startRowsFor = (opts: Pick<Options, 'only'>): StartRow[] => START_ROWS.filter((r) => opts.only === undefined || opts.only.has(r.key));
