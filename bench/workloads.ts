// The load workloads: what the load generator does, which servers run it, what
// the fugue / bare ratio compares, and the targets from the performance issue.

import type { Options } from './options.js';
import { BARE, FUGUE, FUGUE_T1, FUGUE_T100, type ServerSpec } from './servers.js';

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
  /** What the ratio compares: throughput (higher is better) or p99 latency (lower is better). */
  compare: 'rate' | 'p99';
  /** By server id; a server without one is only reported. */
  targets: Record<string, Target | undefined>;
}

/**
 * Other processes (a build, a test run) using more than this many cores during
 * a window make it NOISY: its numbers are kept out of the medians when a clean
 * repetition exists.
 */
export const NOISE_CORES = 0.15;

const atLeast = (x: number): Target => ({ text: `>= ${x}x`, ok: (r) => r >= x });
const atMost = (x: number): Target => ({ text: `<= ${x}x`, ok: (r) => r <= x });

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

/** The workload with this key (the paired check and --cpu-prof reuse echo64 and churn). */
export function workload(key: string): Workload {
  const w = WORKLOADS.find((x) => x.key === key);
  if (w === undefined) throw new Error(`no workload ${key}`);
  return w;
}
