// The benchmark's command line (issue 11, point 7): --help lists every flag the
// parser knows, and anything else is refused with exit 64 before a benchmark
// starts. The CLI cases run the real dist/bench/run.js; none of them gets as
// far as starting a server.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLAGS, ONLY_KEYS, UsageError, defaultOptions, helpText, parseOptions } from '../../bench/options.js';
import { extraRunS, loadArgs } from '../../bench/load-run.js';
import type { RunningServer } from '../../bench/servers.js';
import { START_ROWS, WORKLOADS, rowsOf, startRowsFor, workload, workloadsFor, type Workload } from '../../bench/workloads.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
const runCli = (...args: string[]) => spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 20_000 });

/** --help's entries, each flag's wrapped lines joined into one. */
function helpEntries(): string[] {
  const entries: string[] = [];
  for (const line of helpText().split('\n')) {
    if (line.startsWith('  --')) entries.push(line.trim());
    else if (/^ {4,}\S/.test(line) && entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
  }
  return entries.map((e) => e.replace(/\s+/g, ' '));
}

test('--help lists every flag the parser knows, with its value, meaning and default', (t) => {
  const entries = helpEntries();
  for (const f of FLAGS) {
    const entry = entries.find((e) => e.startsWith(`${f.name}${f.value === undefined ? '' : ` ${f.value}`} `));
    t.truthy(entry, `${f.name} is not in --help`);
    t.true(entry!.includes(f.meaning), f.name);
    if (f.default !== '') t.true(entry!.includes(`(default: ${f.default})`), f.name);
  }
  for (const line of helpText().split('\n')) t.true(line.length <= 100, `too wide: ${line}`);
});

test('every flag in --help is one the parser accepts', (t) => {
  const listed = [...helpText().matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
  t.deepEqual(listed, FLAGS.map((f) => f.name));
});

test('run.js --help prints the help and exits 0 without starting anything', (t) => {
  const r = runCli('--help');
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, helpText());
  t.is(runCli('--seconds', 'abc', '-h').status, 0, '--help wins over a malformed flag');
});

test('unknown flags and stray arguments are refused, naming them', (t) => {
  t.throws(() => parseOptions(['--sconds', '3']), { instanceOf: UsageError, message: /unknown flag --sconds/ });
  t.throws(() => parseOptions(['quick']), { instanceOf: UsageError, message: /unexpected argument "quick"/ });
  t.throws(() => parseOptions(['-q']), { instanceOf: UsageError, message: /unknown flag -q/ });
});

test('a flag without its value is refused, with what it expects', (t) => {
  t.throws(() => parseOptions(['--seconds']), { instanceOf: UsageError, message: /--seconds needs a value: --seconds N/ });
  t.throws(() => parseOptions(['--only', '--quick']), { instanceOf: UsageError, message: /--only needs a value/ });
  t.throws(() => parseOptions(['--quick=1']), { instanceOf: UsageError, message: /--quick takes no value/ });
});

test('malformed values are refused, naming the flag, what it expects and what it got', (t) => {
  t.throws(() => parseOptions(['--seconds', 'abc']), { message: '--seconds expects the measured seconds per run, a number > 0; got "abc"' });
  t.throws(() => parseOptions(['--reps', '0']), { message: '--reps expects the number of repetitions, an integer >= 1; got "0"' });
  t.throws(() => parseOptions(['--reps', '1.5']), { message: /--reps expects .* an integer >= 1; got "1.5"/ });
  t.throws(() => parseOptions(['--budget=-5']), { message: /--budget expects .* a number > 0; got "-5"/ });
  t.throws(() => parseOptions(['--idle-conns', '']), { message: /--idle-conns expects/ });
  t.throws(() => parseOptions(['--paired-reps', 'x']), { message: /--paired-reps expects/ });
  t.throws(() => parseOptions(['--only', 'echo64,ehco4k']), { message: /--only expects a comma-separated list of .*\(unknown: ehco4k\)/ });
  t.throws(() => parseOptions(['--against', '/nonexistent/fugue']), { message: /--against expects a built fugue-server checkout; \/nonexistent\/fugue has no dist\/src\/cli\/fugue-server\.js/ });
});

test('run.js exits 64 on a usage error, with the message and a pointer to --help', (t) => {
  for (const args of [['--bogus'], ['--seconds', 'abc'], ['--reps', '0'], ['--seconds']]) {
    const r = runCli(...args);
    t.is(r.status, 64, args.join(' '));
    t.regex(r.stderr, new RegExp(`^bench: .*${args[0]}`), args.join(' '));
    t.regex(r.stderr, /--help/);
    t.is(r.stdout, '', 'nothing was run');
  }
});

test('values: both --flag value and --flag=value; --quick only changes the defaults, wherever it is', (t) => {
  t.deepEqual(parseOptions([]), defaultOptions(false));
  const a = parseOptions(['--quick', '--reps', '2', '--seconds=1.5', '--only', 'echo64,idle', '--cpu-prof']);
  const b = parseOptions(['--reps=2', '--seconds', '1.5', '--only=echo64,idle', '--cpu-prof', '--quick']);
  t.deepEqual(a, b);
  t.like(a, { quick: true, reps: 2, idleReps: 2, seconds: 1.5, warmup: 0.5, budgetS: 120, pairedReps: 1, cpuProf: true });
  t.deepEqual([...(a.only ?? [])], ['echo64', 'idle']);
});

test('--only knows every workload, the idle test, the paired check and every start-up row', (t) => {
  t.deepEqual([...ONLY_KEYS].sort(), [...WORKLOADS.map((w) => w.key), ...START_ROWS.map((r) => r.key), 'idle', 'paired'].sort());
});

// Issue 17, items 1, 2 and 5: the start-up, fuguectl and memory-at-rest rows.
test('--only picks start-up rows alone; without --only every start-up row runs', (t) => {
  const o = parseOptions(['--only', 'startup,ctl,rest-memory']);
  t.deepEqual(startRowsFor(o).map((r) => r.key), ['startup', 'ctl', 'rest-memory']);
  t.deepEqual(workloadsFor(o), [], 'no load workload');
  t.deepEqual(startRowsFor(parseOptions([])).map((r) => r.key), ['startup', 'startup-otlp', 'ctl', 'rest-memory']);
  t.deepEqual(startRowsFor(parseOptions(['--only', 'echo64'])), [], 'a load workload alone runs no start-up row');
  t.throws(() => parseOptions(['--only', 'start-up']), { message: /--only expects .*\(unknown: start-up\)/ });
});

test('--start-reps sets the pairs of the start-up rows: 10 by default, 3 with --quick; at least 1', (t) => {
  t.is(parseOptions([]).startReps, 10);
  t.is(parseOptions(['--quick']).startReps, 3);
  t.is(parseOptions(['--start-reps=12', '--quick']).startReps, 12);
  t.is(parseOptions(['--reps', '2']).startReps, 10, '--reps does not change it');
  t.throws(() => parseOptions(['--start-reps', '0']), { instanceOf: UsageError, message: '--start-reps expects the number of pairs, an integer >= 1; got "0"' });
  t.throws(() => parseOptions(['--start-reps', 'ten']), { instanceOf: UsageError, message: /--start-reps expects .*got "ten"/ });
});

test('--node takes a runnable node binary and records its version; absent, the harness\'s own node runs everything', (t) => {
  t.is(parseOptions([]).node, undefined);
  t.deepEqual(parseOptions(['--node', process.execPath]).node, { path: process.execPath, version: process.version });
  t.deepEqual(parseOptions([`--node=${process.execPath}`, '--quick']).node?.version, process.version);
});

test('--node refuses what is not a node binary of a supported version, saying what it found and what to give', (t) => {
  const dir = mkdtempSync('/tmp/fg-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string, mode = 0o755) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, mode);
    return path;
  };
  const refused = (value: string, message: RegExp) => t.throws(() => parseOptions(['--node', value]), { instanceOf: UsageError, message }, value);
  refused(join(dir, 'missing'), new RegExp(`^--node expects the path of a node executable, Node 20\\.19 or later; ${join(dir, 'missing')} does not exist$`));
  refused('node-no-such-name', /node-no-such-name does not exist \(a bare name is not looked up on PATH: give its path, e\.g\. --node "\$\(command -v node-no-such-name\)"\)/);
  refused(dir, new RegExp(`${dir} is not a file; give the path of a node executable`));
  refused(script('not-executable', 'echo v22.0.0', 0o644), /not-executable is not executable by this user; check its permissions/);
  refused(script('silent', 'exit 0'), /silent -p process\.version did not print a Node version \(exit 0\)/);
  refused(script('failing', 'echo boom >&2; exit 3'), /failing -p process\.version did not print a Node version \(exit 3: boom\)/);
  refused(script('old-node', 'echo v20.18.1'), /old-node is Node v20\.18\.1; fugue-server needs 20\.19 or later \(package\.json engines\), so give a newer node/);
  t.like(parseOptions(['--node', script('new-node', 'echo v20.19.0')]).node, { version: 'v20.19.0' }, 'the oldest supported version is accepted');
});

test('run.js exits 64 on a --node that is not a node binary, before starting anything', (t) => {
  const r = runCli('--node', '/nonexistent/node', '--only', 'startup');
  t.is(r.status, 64);
  t.regex(r.stderr, /^bench: --node expects the path of a node executable, Node 20\.19 or later; \/nonexistent\/node does not exist/);
  t.is(r.stdout, '', 'nothing was run');
});

test('--log-level adds rows at other levels; info (the plain rows\' level) and unknown levels are refused', (t) => {
  t.deepEqual(parseOptions(['--log-level', 'warn,debug,warn']).logLevels, ['warn', 'debug']);
  t.deepEqual(parseOptions([]).logLevels, []);
  t.throws(() => parseOptions(['--log-level', 'info']), { message: /--log-level: info is fugue's default level, which the plain fugue rows already run at/ });
  t.throws(() => parseOptions(['--log-level', 'warn,verbose']), { message: /--log-level expects a comma-separated list of fatal, error, warn, debug, trace, silent; got "warn,verbose"/ });
  const churn = workloadsFor({ only: new Set(['churn']), logLevels: ['warn', 'debug'] });
  t.deepEqual(churn.map((w) => w.servers.map((s) => `${s.id}:${s.logLevel ?? 'default'}`)), [['bare:default', 'fugue:default', 'fugue log=warn:warn', 'fugue log=debug:debug']]);
  t.is(churn[0]?.targets['fugue log=warn'], undefined, 'extra rows are reported, not judged');
});

// Issue 17, item 3: the fan-out rows.
test('--only fanout runs the fan-out workload, whose runs make two rows: the 1,000 alone, then with a stopped subscriber', (t) => {
  const w = workloadsFor(parseOptions(['--only', 'fanout']));
  t.deepEqual(w.map((x) => x.key), ['fanout']);
  t.deepEqual(w.flatMap(rowsOf).map((x) => [x.key, x.compare, x.reference ?? '']), [['fanout', 'rate', ''], ['fanout-stalled', 'self', 'fanout']]);
  t.deepEqual(startRowsFor(parseOptions(['--only', 'fanout'])), [], 'no start-up row');
  t.deepEqual(workloadsFor(parseOptions([])).map((x) => x.key), ['echo64', 'echo4k', 'latency', 'churn', 'fanout'], 'it runs by default, last of the load workloads');
  t.throws(() => parseOptions(['--only', 'fanout-stalled']), { instanceOf: UsageError, message: /--only expects .*fanout, idle.*\(unknown: fanout-stalled\)/ });
});

test('the fan-out rows: fugue runs through bench/fanout-server.js; the targets are fugue >= 1x bare, then >= 0.9x of its own first window', (t) => {
  const [fanout, stalled] = rowsOf(workload('fanout')) as [Workload, Workload];
  t.deepEqual(fanout.servers.map((s) => [s.id, s.entry ?? 'cli']), [['bare', 'cli'], ['fugue', 'dist/bench/fanout-server.js'], ['fugue disconnect', 'dist/bench/fanout-server.js']]);
  t.is(fanout.targets.fugue?.text, '>= 1x');
  t.is(stalled.targets.fugue?.text, '>= 0.9x');
  t.true(stalled.targets.fugue?.ok(0.9) && !stalled.targets.fugue?.ok(0.89));
  t.is(stalled.targets.bare, undefined, 'bare is reported: it has no bound');
  t.is(stalled.targets['fugue disconnect'], undefined, 'the disconnect variant runs with lowered limits: reported');
  for (const id of Object.keys(fanout.serverArgs ?? {})) t.true(fanout.servers.some((s) => s.id === id), `serverArgs of ${id}, a server of the row`);
  t.like(fanout.servers.find((s) => s.id === 'fugue disconnect')?.env, { FUGUE_MAX_BUFFERED_BYTES: '262144', FUGUE_MAX_FRAME_BYTES: '65536' });
});

test('the fan-out load generator arguments: one stalled subscriber; fugue waits for the drop, the disconnect variant asks for its stream; a 10 s warm-up but with --quick', (t) => {
  const w = workload('fanout');
  const server = { socket: '/tmp/fg-x/s.sock', pid: 4242, logs: undefined } as unknown as RunningServer;
  const args = (id: string, argv: string[] = []) => loadArgs(w, server, parseOptions(argv), id).args;
  t.deepEqual(args('bare'), [...w.args, '--socket', '/tmp/fg-x/s.sock', '--seconds', '3', '--warmup', '10', '--server-pid', '4242']);
  t.deepEqual(w.args.slice(-2), ['--stalled', '1']);
  t.deepEqual(args('fugue').slice(w.args.length, w.args.length + 2), ['--stall-wait-s', '10']);
  t.deepEqual(args('fugue disconnect').slice(w.args.length, w.args.length + 4), ['--on-slow', 'disconnect', '--stall-wait-s', '10']);
  t.deepEqual(args('bare', ['--quick']).slice(-4), ['--warmup', '0.5', '--server-pid', '4242'], '--quick keeps its short warm-up');
  const echo = loadArgs(workload('echo64'), server, parseOptions([]), 'fugue').args;
  t.is(echo[echo.indexOf('--warmup') + 1], '1', 'the other workloads keep --warmup 1');
  t.is(extraRunS(w, parseOptions([])), 9 + 3 + 2, 'the budget counts the longer warm-up and the second window');
});

test('--log-level adds no rows to the fan-out rows (their fugue is the bench entry, not the CLI)', (t) => {
  const w = workloadsFor({ only: new Set(['fanout', 'churn']), logLevels: ['warn'] });
  t.deepEqual(w.map((x) => x.servers.map((s) => s.id)), [['bare', 'fugue', 'fugue log=warn'], ['bare', 'fugue', 'fugue disconnect']]);
});
