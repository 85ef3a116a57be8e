// The harness's command line: one table of flags, from which both the parser
// and --help are made, so that --help cannot forget a flag. Anything the table
// does not know, a flag without its value, or a value of the wrong shape is a
// UsageError (exit 64, EX_USAGE): a typo must not silently run the 4-minute
// benchmark with defaults. Pure but for the checks of --against (a build is
// there) and --node (a runnable Node of a supported version: node-binary.ts).

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkNodeBinary, MIN_NODE, type NodeBinary } from './node-binary.js';

const MIN_NODE_TEXT = `Node ${MIN_NODE.join('.')}`;

/** What `--only` accepts: the load workloads (fanout makes two rows), the idle test, the paired check and the start-up rows. */
export const ONLY_KEYS = ['echo64', 'echo4k', 'latency', 'churn', 'fanout', 'idle', 'paired', 'startup', 'startup-otlp', 'ctl', 'rest-memory'] as const;

/**
 * fugue's log levels (log.level in docs/configuration.md) that --log-level can
 * add rows for; info is not one of them: it is the default, which the plain
 * fugue rows run at already.
 */
export const EXTRA_LOG_LEVELS = ['fatal', 'error', 'warn', 'debug', 'trace', 'silent'] as const;

export interface Options {
  quick: boolean;
  /** Measured seconds per run. */
  seconds: number;
  /** Warm-up seconds before each measured window (not a flag: 1, or 0.5 with --quick). */
  warmup: number;
  /** Repetitions of each load workload, and pairs of the rest-memory row. */
  reps: number;
  /** Pairs of the startup, startup-otlp and ctl rows. */
  startReps: number;
  /** Repetitions of the idle test (set by --reps too). */
  idleReps: number;
  idleConns: number;
  /** Soft limit on the whole run, in seconds: extra repetitions are skipped past it. */
  budgetS: number;
  /** Workload keys to run; undefined = all. */
  only: Set<string> | undefined;
  cpuProf: boolean;
  pairedReps: number;
  /** A built fugue-server checkout to compare this one with in the paired check (instead of bare). */
  against: string | undefined;
  /** Extra fugue rows in every load workload, one per log level (the plain rows run at fugue's default, info). */
  logLevels: string[];
  /** --node: the node that runs servers, fuguectl and baselines; undefined = the harness's own. */
  node: NodeBinary | undefined;
}

/** A command-line mistake: the message names the flag and what it expects. */
export class UsageError extends Error {
  /** EX_USAGE from sysexits.h. */
  readonly exitCode = 64;
}

interface FlagSpec {
  name: string;
  /** Placeholder of the value in --help; absent for a switch. */
  value?: string;
  meaning: string;
  /** The default, as --help shows it. */
  default: string;
  apply(opts: Options, value: string): void;
}

function positiveNumber(flag: string, value: string, what: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} expects ${what}, a number > 0; got "${value}"`);
  return n;
}

function positiveInteger(flag: string, value: string, what: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} expects ${what}, an integer >= 1; got "${value}"`);
  return n;
}

/** Every flag, in --help order. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: '--quick',
    meaning: 'smoke test: 2 s runs after 0.5 s warm-up, 1 repetition (and 1 of idle and paired), 3 start-up pairs, budget 120 s; checks that the benchmark works, not for numbers',
    default: 'off',
    apply: () => {}, // read before the others: it sets the defaults (defaultOptions)
  },
  {
    name: '--seconds',
    value: 'N',
    meaning: 'measured seconds per run (after the warm-up; a fan-out run measures two windows of it, after a 10 s warm-up but with --quick)',
    default: '3; 2 with --quick',
    apply: (o, v) => void (o.seconds = positiveNumber('--seconds', v, 'the measured seconds per run')),
  },
  {
    name: '--reps',
    value: 'N',
    meaning: 'repetitions of each load workload and of the idle test, budget permitting, and pairs of rest-memory',
    default: '4, idle 2; 1 with --quick',
    apply: (o, v) => void (o.reps = o.idleReps = positiveInteger('--reps', v, 'the number of repetitions')),
  },
  {
    name: '--only',
    value: 'KEY[,KEY...]',
    meaning: `run only these parts: ${ONLY_KEYS.join(', ')}`,
    default: 'all',
    apply: (o, v) => {
      const keys = v.split(',').map((k) => k.trim());
      const bad = keys.filter((k) => !(ONLY_KEYS as readonly string[]).includes(k));
      if (bad.length > 0 || v.trim() === '') {
        throw new UsageError(`--only expects a comma-separated list of ${ONLY_KEYS.join(', ')}; got "${v}"${bad.length > 0 && v.trim() !== '' ? ` (unknown: ${bad.join(', ')})` : ''}`);
      }
      o.only = new Set(keys);
    },
  },
  {
    name: '--start-reps',
    value: 'N',
    meaning: 'alternating pairs of the startup, startup-otlp and ctl rows (not cut by --budget)',
    default: '10; 3 with --quick',
    apply: (o, v) => void (o.startReps = positiveInteger('--start-reps', v, 'the number of pairs')),
  },
  {
    name: '--idle-conns',
    value: 'N',
    meaning: 'clients opened and left idle in the idle test',
    default: '10000',
    apply: (o, v) => void (o.idleConns = positiveInteger('--idle-conns', v, 'the number of idle clients')),
  },
  {
    name: '--budget',
    value: 'S',
    meaning: 'soft limit on the whole run in seconds: extra repetitions are dropped to stay within it (the start-up rows and the paired check come on top)',
    default: '480; 120 with --quick',
    apply: (o, v) => void (o.budgetS = positiveNumber('--budget', v, 'the time budget in seconds')),
  },
  {
    name: '--paired-reps',
    value: 'N',
    meaning: 'repetitions of the same-core paired check (echo 64B and churn)',
    default: '3; 1 with --quick',
    apply: (o, v) => void (o.pairedReps = positiveInteger('--paired-reps', v, 'the number of paired repetitions')),
  },
  {
    name: '--against',
    value: 'DIR',
    meaning: 'the paired check compares this build with the built checkout in DIR (its dist/ and node_modules) instead of with bare; implies the paired check',
    default: 'compare with bare',
    apply: (o, v) => {
      const dir = resolve(v);
      if (!existsSync(join(dir, 'dist/src/cli/fugue-server.js'))) {
        throw new UsageError(`--against expects a built fugue-server checkout; ${dir} has no dist/src/cli/fugue-server.js (build it first: cd ${v} && npm ci && npm run build)`);
      }
      o.against = dir;
    },
  },
  {
    name: '--log-level',
    value: 'LEVEL[,LEVEL...]',
    meaning: `add fugue rows at these log levels to every load workload (${EXTRA_LOG_LEVELS.join(', ')}); the plain fugue rows run at fugue's default, info, as deployed`,
    default: 'none',
    apply: (o, v) => {
      const levels = v.split(',').map((l) => l.trim());
      if (levels.includes('info')) {
        throw new UsageError(`--log-level: info is fugue's default level, which the plain fugue rows already run at; list other levels (${EXTRA_LOG_LEVELS.join(', ')})`);
      }
      const bad = levels.filter((l) => !(EXTRA_LOG_LEVELS as readonly string[]).includes(l));
      if (bad.length > 0 || v.trim() === '') {
        throw new UsageError(`--log-level expects a comma-separated list of ${EXTRA_LOG_LEVELS.join(', ')}; got "${v}"`);
      }
      o.logLevels = [...new Set(levels)];
    },
  },
  {
    name: '--node',
    value: 'PATH',
    meaning: 'run the servers (bare and fugue), fuguectl and node -e 0 with this node binary instead of the one running the harness; the report header names both versions',
    default: 'the harness\'s node',
    apply: (o, v) => {
      const bin = checkNodeBinary(v);
      if ('problem' in bin) throw new UsageError(`--node expects the path of a node executable, ${MIN_NODE_TEXT} or later; ${bin.problem}`);
      o.node = bin;
    },
  },
  {
    name: '--cpu-prof',
    meaning: 'one extra, uncounted echo 64B run of each of bare and fugue under node --cpu-prof; prints their top self-time functions (profiles kept in bench/build/profiles/)',
    default: 'off',
    apply: (o) => void (o.cpuProf = true),
  },
  {
    name: '--help',
    meaning: 'print this help and exit (also -h)',
    default: '',
    apply: () => {}, // handled before parsing (wantsHelp)
  },
];

/** The defaults, which depend on --quick alone. */
export function defaultOptions(quick: boolean): Options {
  return {
    quick,
    seconds: quick ? 2 : 3,
    warmup: quick ? 0.5 : 1,
    reps: quick ? 1 : 4,
    startReps: quick ? 3 : 10,
    idleReps: quick ? 1 : 2,
    idleConns: 10_000,
    budgetS: quick ? 120 : 480,
    only: undefined,
    cpuProf: false,
    pairedReps: quick ? 1 : 3,
    against: undefined,
    logLevels: [],
    node: undefined,
  };
}

/** True when the command line asks for --help (which wins over any other mistake in it). */
export const wantsHelp = (argv: string[]): boolean => argv.some((a) => a === '--help' || a === '-h');

/**
 * Parse the flags after `run.js`. Both `--flag value` and `--flag=value` work;
 * a flag given twice takes its last value. --quick changes the defaults only,
 * so `--quick --reps 2` and `--reps 2 --quick` mean the same.
 * @throws UsageError naming the flag and what it expects.
 */
export function parseOptions(argv: string[]): Options {
  const given: { spec: FlagSpec; value: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = FLAGS.find((f) => f.name === name);
    if (spec === undefined) {
      throw new UsageError(arg.startsWith('-') ? `unknown flag ${name}` : `unexpected argument "${arg}" (every option is a --flag)`);
    }
    if (spec.value === undefined) {
      if (eq > 0) throw new UsageError(`${name} takes no value; got "${arg}"`);
      given.push({ spec, value: '' });
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value !== undefined && value.startsWith('--')) value = undefined;
      else i++;
    }
    if (value === undefined) throw new UsageError(`${name} needs a value: ${spec.name} ${spec.value} (${spec.meaning})`);
    given.push({ spec, value });
  }
  const opts = defaultOptions(given.some((g) => g.spec.name === '--quick'));
  for (const { spec, value } of given) spec.apply(opts, value);
  return opts;
}

/** Words of `text` in lines of at most `width` characters (a longer word gets its own line). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Columns of --help: it should read in an 100-column terminal. */
const HELP_WIDTH = 100;

/** --help: every flag with its meaning and default. */
export function helpText(): string {
  const left = (f: FlagSpec) => `  ${f.name}${f.value === undefined ? '' : ` ${f.value}`}`;
  const indent = Math.max(...FLAGS.map((f) => left(f).length)) + 2;
  const lines = FLAGS.flatMap((f) => {
    const text = wrap(`${f.meaning}${f.default === '' ? '' : ` (default: ${f.default})`}`, HELP_WIDTH - indent);
    return text.map((t, i) => `${(i === 0 ? left(f) : '').padEnd(indent)}${t}`);
  });
  return [
    'usage: npm run bench -- [flags]   or   node dist/bench/run.js [flags]',
    '',
    'Runs fugue-server and bench/bare-server.ts under the same load (request/reply, churn, fan-out',
    'to 1,000 subscribers), alternating, and reports fugue / bare ratios; then start-up, fuguectl',
    'per call and memory at rest against bare Node.',
    'bench/README.md explains every column. Results: bench/results/latest.json.',
    '',
    'flags:',
    ...lines,
    '',
  ].join('\n');
}
