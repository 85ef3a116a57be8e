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
// - Server on core 0, loadgen (and this harness) on core 1, via taskset, so the
//   two sides do not steal each other's CPU.
// - Servers alternate (bare, fugue, bare, fugue, ...) and each pair repeats, the
//   median is reported: slow drifts of the machine (thermal, other tenants) hit
//   both sides instead of whichever ran last.
// - Every server is a fresh process; all children are killed on any exit path.
//
// Flags: --quick (2 s runs, 1 repetition: a smoke test), --seconds N, --reps N,
// --only echo64,latency,...  (workload keys), --cpu-prof (one extra echo 64B
// run of each of bare and fugue under the profiler; prints their top self-time functions), --budget SECONDS.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import { createConnection, createServer as createNetServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCH = join(ROOT, 'bench');
const BUILD = join(BENCH, 'build');
const LOADGEN_SRC = join(BENCH, 'loadgen.c');
const LOADGEN = join(BUILD, 'loadgen');
// A private copy of the compiled servers: `npm run build` (run by others while
// the benchmark runs) deletes dist/, and every run must use the same code anyway.
const SNAPSHOT = join(BUILD, 'snapshot');
const RESULTS = join(BENCH, 'results');
const T_START = performance.now();

// ------------------------------------------------------------------ options

interface Options {
  quick: boolean;
  seconds: number;
  warmup: number;
  reps: number;
  idleReps: number;
  idleConns: number;
  /** Soft limit on the whole run, in seconds: extra repetitions are skipped past it. */
  budgetS: number;
  only: Set<string> | undefined;
  cpuProf: boolean;
  pairedReps: number;
  /** A built fugue-server checkout to compare this one with in the paired check (instead of bare). */
  against: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const opts: Options = {
    quick,
    seconds: quick ? 2 : 3,
    warmup: quick ? 0.5 : 1,
    reps: quick ? 1 : 4,
    idleReps: quick ? 1 : 2,
    idleConns: 10_000,
    budgetS: quick ? 120 : 245,
    only: undefined,
    cpuProf: argv.includes('--cpu-prof'),
    pairedReps: quick ? 1 : 3,
    against: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--seconds' && v !== undefined) opts.seconds = Number(v);
    else if (a === '--reps' && v !== undefined) opts.reps = opts.idleReps = Number(v);
    else if (a === '--budget' && v !== undefined) opts.budgetS = Number(v);
    else if (a === '--idle-conns' && v !== undefined) opts.idleConns = Number(v);
    else if (a === '--only' && v !== undefined) opts.only = new Set(v.split(','));
    else if (a === '--paired-reps' && v !== undefined) opts.pairedReps = Number(v);
    else if (a === '--against' && v !== undefined) opts.against = resolve(v);
    else continue;
    i++;
  }
  return opts;
}

// ------------------------------------------------------------------ processes

// Every child we start, so that no server or loadgen outlives the harness.
const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Keep the last few KB of a stream (for error messages) while draining it so the child never blocks. */
function tail(stream: NodeJS.ReadableStream | null, max = 8192): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-max);
  });
  return () => text;
}

// CPU pinning: server on core 0, loadgen and harness on core 1.
let pinned = false;
function detectPinning(): void {
  if (cpus().length < 2) return;
  const r = spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
  pinned = r.status === 0;
  if (pinned) {
    // The harness (incl. the OTLP sink) shares core 1 with the loadgen, not the server's core.
    spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  }
}

function pinnedCommand(core: number, cmd: string, args: string[]): [string, string[]] {
  return pinned ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
}

// ------------------------------------------------------------------ /proc

function procStatus(pid: number): { rssKb: number; hwmKb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

function procNofile(pid: number): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (first line of /proc/stat). */
function machineBusyS(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / 100; // USER_HZ is 100 on Linux
}

/** utime+stime of a process in seconds (all threads), from /proc/PID/stat; 0 once it is gone. */
function procCpuS(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU used by processes other than ours between start() and stop(), in cores:
 * machine busy time minus the given processes and this harness. The idle test
 * uses it to flag scrapes and drains that other processes disturbed.
 */
function noiseMeter(pids: number[]): { stop(): number } {
  const t0 = performance.now();
  const busy0 = machineBusyS();
  const own0 = pids.map(procCpuS);
  const me0 = process.cpuUsage();
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const me = process.cpuUsage(me0);
      const ours = pids.reduce((a, pid, i) => a + procCpuS(pid) - (own0[i] as number), 0) + (me.user + me.system) / 1e6;
      return wall > 0 ? Math.max(0, (machineBusyS() - busy0 - ours) / wall) : 0;
    },
  };
}

// The machine may be shared (a build or a test run next to us). Before each run,
// wait a little for it to be quiet; the loadgen measures what others used during
// the window anyway, and such runs are flagged NOISY.
let quietWaitS = 0;
const QUIET_WAIT_MAX_RUN_S = 5;
const QUIET_WAIT_MAX_TOTAL_S = 30;
async function waitForQuiet(): Promise<void> {
  const t0 = performance.now();
  while (quietWaitS < QUIET_WAIT_MAX_TOTAL_S && performance.now() - t0 < QUIET_WAIT_MAX_RUN_S * 1000) {
    const b0 = machineBusyS();
    await sleep(250);
    const cores = (machineBusyS() - b0) / 0.25;
    if (cores < 0.3) break;
  }
  quietWaitS += (performance.now() - t0) / 1000;
}

// ------------------------------------------------------------------ build steps

function ensureLoadgen(): void {
  mkdirSync(BUILD, { recursive: true });
  if (existsSync(LOADGEN) && statSync(LOADGEN).mtimeMs > statSync(LOADGEN_SRC).mtimeMs) return;
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', LOADGEN, LOADGEN_SRC], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('compiling bench/loadgen.c failed (is a C compiler installed? apt-get install gcc)');
}

function snapshotServers(): void {
  const entry = join(ROOT, 'dist/src/cli/fugue-server.js');
  if (!existsSync(entry) || !existsSync(join(ROOT, 'dist/bench/bare-server.js'))) {
    // Someone's `npm run build` deleted dist/ after our tsc: compile again.
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('tsc failed; cannot benchmark');
  }
  rmSync(SNAPSHOT, { recursive: true, force: true });
  cpSync(join(ROOT, 'dist/src'), join(SNAPSHOT, 'dist/src'), { recursive: true });
  cpSync(join(ROOT, 'dist/bench/bare-server.js'), join(SNAPSHOT, 'dist/bench/bare-server.js'));
  cpSync(join(ROOT, 'config'), join(SNAPSHOT, 'config'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(SNAPSHOT, 'package.json'));
  // node_modules resolve upwards from the snapshot to the repository's.
}

// ------------------------------------------------------------------ servers

interface ServerSpec {
  id: string;
  kind: 'bare' | 'fugue';
  /** Export spans over OTLP/HTTP to the harness's sink at this sample ratio. */
  tracing?: number;
  /** Where its dist/ is (default: the snapshot of this checkout). */
  root?: string;
}

const BARE: ServerSpec = { id: 'bare', kind: 'bare' };
const FUGUE: ServerSpec = { id: 'fugue', kind: 'fugue' };
const FUGUE_T1: ServerSpec = { id: 'fugue+otlp 1%', kind: 'fugue', tracing: 0.01 };
const FUGUE_T100: ServerSpec = { id: 'fugue+otlp 100%', kind: 'fugue', tracing: 1 };

interface RunningServer {
  pid: number;
  socket: string;
  child: ChildProcess;
  httpPort: number | undefined;
  nofile: number;
  output(): string;
  /** SIGTERM, wait for exit (then SIGKILL); resolves with ms from signal to exit. */
  stop(): Promise<number>;
}

/** A free TCP port on loopback. At log level warn fugue does not log the port it picked for http.port 0. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

let sinkPort = 0;

async function startServer(spec: ServerSpec, extra: { maxClients?: number; httpPort?: number; cpuProfDir?: string } = {}): Promise<RunningServer> {
  // A fresh 0700 directory per run: fugue refuses group/other-writable socket dirs.
  const dir = mkdtempSync(join(tmpdir(), 'fugue-bench-'));
  const socket = join(dir, spec.kind === 'bare' ? 'b.sock' : 'f.sock');
  const env: NodeJS.ProcessEnv = { ...process.env };
  const nodeArgs: string[] = [];
  if (extra.cpuProfDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${extra.cpuProfDir}`);
  if (spec.kind === 'bare') {
    nodeArgs.push(join(spec.root ?? SNAPSHOT, 'dist/bench/bare-server.js'), socket);
  } else {
    nodeArgs.push(join(spec.root ?? SNAPSHOT, 'dist/src/cli/fugue-server.js'));
    // Start from a clean slate: no inherited FUGUE_*/OTEL_* settings.
    for (const k of Object.keys(env)) if (k.startsWith('FUGUE_') || k.startsWith('OTEL_')) delete env[k];
    Object.assign(env, {
      FUGUE_SOCKET_PATH: socket,
      FUGUE_HTTP_PORT: String(extra.httpPort ?? 0),
      // warn: no per-connection info lines (a real deployment would log at info;
      // that cost is not what these workloads are about).
      FUGUE_LOG_LEVEL: 'warn',
      FUGUE_MAX_CLIENTS: String(extra.maxClients ?? 1024),
    });
    if (spec.tracing !== undefined) {
      Object.assign(env, {
        FUGUE_TRACING_EXPORTER: 'otlp',
        FUGUE_TRACING_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
        FUGUE_TRACING_SAMPLE_RATIO: String(spec.tracing),
      });
    }
  }
  // Raise the descriptor limit for the 10k-connection test; without privilege
  // fall back to the hard limit (reported in the output).
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const [cmd, args] = pinnedCommand(0, 'sh', ['-c', script, 'bench-server', process.execPath, ...nodeArgs]);
  const child = track(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const output = () => `${out()}${err()}`.trim();
  const pid = child.pid as number;

  // Ready when fugue's pid file names this process (written after the socket is
  // bound); the bare server writes none, so connect to it.
  const deadline = performance.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${spec.id} exited during start-up (${child.exitCode ?? child.signalCode}):\n${output()}`);
    }
    if (spec.kind === 'fugue') {
      try {
        if (readFileSync(`${socket}.pid`, 'utf8').trim() === String(pid)) break;
      } catch {
        // not written yet
      }
    } else if (existsSync(socket) && (await canConnect(socket))) {
      break;
    }
    if (performance.now() > deadline) {
      killAll();
      throw new Error(`${spec.id} did not become ready within 15 s:\n${output()}`);
    }
    await sleep(20);
  }
  const stop = async (): Promise<number> => {
    const t0 = performance.now();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
    const ms = performance.now() - t0;
    rmSync(dir, { recursive: true, force: true });
    return ms;
  };
  return { pid, socket, child, httpPort: extra.httpPort, nofile: procNofile(pid), output, stop };
}

// ------------------------------------------------------------------ loadgen

interface LoadgenResult {
  mode: string;
  replies: number;
  seconds: number;
  rate: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  errors: number;
  err?: Record<string, number>;
  loadgen_cpu_s: number;
  loadgen_cpu_share: number;
  server_cpu_s: number;
  /** Busy CPU time of the whole machine over the window (all processes). */
  machine_busy_s: number;
  [k: string]: unknown;
}

interface LoadgenHandle {
  pid: number;
  /** Resolves with the JSON after "READY " (idle mode). */
  ready: Promise<Record<string, unknown>>;
  done: Promise<LoadgenResult>;
  send(line: string): void;
}

function startLoadgen(args: string[], timeoutMs: number): LoadgenHandle {
  const [cmd, cargs] = pinnedCommand(1, LOADGEN, args);
  const child = track(spawn(cmd, cargs, { stdio: ['pipe', 'pipe', 'pipe'] }));
  const err = tail(child.stderr);
  let stdout = '';
  let onReady: (v: Record<string, unknown>) => void = () => {};
  let onReadyFail: (e: Error) => void = () => {};
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    onReady = resolve;
    onReadyFail = reject;
  });
  ready.catch(() => {}); // only idle mode awaits it
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    const m = /^READY (.*)$/m.exec(stdout);
    if (m) onReady(JSON.parse(m[1] as string) as Record<string, unknown>);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // 'close', not 'exit': 'exit' can come before the last stdout bytes (the result line) were read.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const done = closed.then(() => {
    clearTimeout(timer);
    const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
    if (line === undefined) {
      const e = new Error(`loadgen ${args.join(' ')} gave no result (exit ${child.exitCode ?? child.signalCode}): ${err()}`);
      onReadyFail(e);
      throw e;
    }
    onReadyFail(new Error(`loadgen ended before READY: ${err()}`));
    if (child.exitCode !== 0) throw new Error(`loadgen ${args.join(' ')} failed (exit ${child.exitCode ?? child.signalCode}): ${err()}`);
    const result = JSON.parse(line) as LoadgenResult;
    if (err().trim() !== '') result.stderr = err().trim();
    return result;
  });
  return { pid: child.pid as number, ready, done, send: (line) => child.stdin?.write(line) };
}

// ------------------------------------------------------------------ OTLP sink

// Accepts OTLP/HTTP exports and only counts them: the cost measured is fugue's
// (span creation, batching, serialisation, HTTP), not a collector's.
const sink = { requests: 0, bytes: 0 };
function startSink(): Promise<HttpServer> {
  const server = createHttpServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        sink.requests++;
        sink.bytes += n;
      }
      // An empty body is a valid (empty) ExportTraceServiceResponse.
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      sinkPort = (server.address() as AddressInfo).port;
      resolve(server);
    }),
  );
}

// ------------------------------------------------------------------ /metrics

function scrape(port: number): Promise<{ ms: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // agent:false: a fresh connection each time, like a Prometheus scrape after idle.
    const req = httpGet({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ ms: performance.now() - t0, bytes: body.length, body: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('scrape timed out')));
  });
}

const seriesCount = (body: string) => body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

function metricValue(body: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}

// ------------------------------------------------------------------ workloads

interface Target {
  text: string;
  ok(ratio: number): boolean;
}

interface Workload {
  key: string;
  label: string;
  args: string[];
  servers: ServerSpec[];
  /** What the ratio compares: throughput (higher is better) or p99 latency (lower is better). */
  compare: 'rate' | 'p99';
  targets: Record<string, Target | undefined>;
}

// Other processes (a build, a test run) using more than this many cores during a
// window make it NOISY: its numbers are kept out of the medians when a clean
// repetition exists.
const NOISE_CORES = 0.15;

const atLeast = (x: number): Target => ({ text: `>= ${x}x`, ok: (r) => r >= x });
const atMost = (x: number): Target => ({ text: `<= ${x}x`, ok: (r) => r <= x });

const WORKLOADS: Workload[] = [
  {
    key: 'echo64',
    label: 'echo 64B c=100 w=16',
    args: ['echo', '--conns', '100', '--inflight', '16', '--size', '64'],
    servers: [BARE, FUGUE, FUGUE_T1, FUGUE_T100],
    compare: 'rate',
    targets: { fugue: atLeast(0.9), 'fugue+otlp 1%': atLeast(0.75), 'fugue+otlp 100%': { text: 'report', ok: () => true } },
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
    targets: { fugue: atMost(1.2) },
  },
  {
    key: 'churn',
    label: 'connect churn x16',
    args: ['churn', '--parallel', '16'],
    servers: [BARE, FUGUE],
    compare: 'rate',
    targets: { fugue: atLeast(0.8) },
  },
];

interface LoadRun {
  workload: string;
  server: string;
  rep: number;
  result: LoadgenResult;
  serverCpuShare: number;
  peakRssMb: number;
  invalid: boolean;
  /** CPU (in cores) used by processes other than server and loadgen during the window. */
  foreignCpu: number;
  noisy: boolean;
  tracing?: { requests: number; bytes: number; spansDropped: number | undefined };
  nofile: number;
}

async function runLoad(w: Workload, spec: ServerSpec, rep: number, opts: Options, cpuProfDir?: string): Promise<LoadRun> {
  const needPort = spec.tracing !== undefined;
  const httpPort = needPort ? await freePort() : undefined;
  const server = await startServer(spec, { ...(httpPort !== undefined ? { httpPort } : {}), ...(cpuProfDir !== undefined ? { cpuProfDir } : {}) });
  const sink0 = { ...sink };
  try {
    const lg = startLoadgen(
      [...w.args, '--socket', server.socket, '--seconds', String(opts.seconds), '--warmup', String(opts.warmup), '--server-pid', String(server.pid)],
      (opts.seconds + opts.warmup + 60) * 1000,
    );
    const result = await lg.done;
    const st = procStatus(server.pid);
    let spansDropped: number | undefined;
    if (httpPort !== undefined) spansDropped = metricValue((await scrape(httpPort)).body, 'fugue_spans_dropped_total');
    const run: LoadRun = {
      workload: w.key,
      server: spec.id,
      rep,
      result,
      serverCpuShare: result.server_cpu_s / result.seconds,
      peakRssMb: st.hwmKb / 1024,
      invalid: result.loadgen_cpu_share >= 0.95,
      foreignCpu: 0,
      noisy: false,
      nofile: server.nofile,
    };
    if (result.machine_busy_s >= 0 && result.server_cpu_s >= 0) {
      run.foreignCpu = Math.max(0, (result.machine_busy_s - result.server_cpu_s - result.loadgen_cpu_s) / result.seconds);
      run.noisy = run.foreignCpu > NOISE_CORES;
    }
    await server.stop(); // before reading the sink: the final flush belongs to this run
    if (spec.tracing !== undefined) run.tracing = { requests: sink.requests - sink0.requests, bytes: sink.bytes - sink0.bytes, spansDropped };
    return run;
  } catch (err) {
    throw new Error(`${w.key}/${spec.id}: ${(err as Error).message}\nserver output:\n${server.output()}`);
  } finally {
    await server.stop();
  }
}

// ------------------------------------------------------------------ same-core paired check
//
// Both servers run at the same time, pinned to the same core, each driven by
// its own load generator on the other core. The scheduler shares the core
// between them every few milliseconds, so whatever slows the machine down
// slows both alike: the ratio of their rates is the ratio of their CPU cost
// per message, and it is far steadier on a shared VM than runs taken one after
// the other (about +-2 % against +-10 % here). The alternating runs above
// remain the primary measurement; this one checks it.

interface PairedRun {
  workload: string;
  rep: number;
  a: string;
  b: string;
  rateA: number;
  rateB: number;
  ratio: number;
  invalid: boolean;
}

async function runPaired(w: Workload, a: ServerSpec, b: ServerSpec, rep: number, opts: Options): Promise<PairedRun> {
  // The start order alternates so that neither server always starts first.
  const [first, second] = rep % 2 === 1 ? [a, b] : [b, a];
  const s1 = await startServer(first);
  const s2 = await startServer(second);
  const [sa, sb] = first === a ? [s1, s2] : [s2, s1];
  try {
    const load = (srv: RunningServer) =>
      startLoadgen(
        [...w.args, '--socket', srv.socket, '--seconds', String(opts.seconds), '--warmup', String(opts.warmup), '--server-pid', String(srv.pid)],
        (opts.seconds + opts.warmup + 60) * 1000,
      ).done;
    const [ra, rb] = await Promise.all([load(sa), load(sb)]);
    return { workload: w.key, rep, a: a.id, b: b.id, rateA: ra.rate, rateB: rb.rate, ratio: rb.rate / ra.rate, invalid: ra.errors + rb.errors > 0 || ra.loadgen_cpu_share + rb.loadgen_cpu_share >= 0.95 };
  } finally {
    await s1.stop();
    await s2.stop();
  }
}

interface IdleRun {
  server: string;
  rep: number;
  conns: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  kbPerConn: number;
  openS: number;
  loadgen: Record<string, unknown>;
  nofile: number;
  metrics?: {
    idle: { medianMs: number; bytes: number; series: number };
    loaded: { medianMs: number; allMs: number[]; bytes: number; series: number };
  };
  drain?: { sigtermToExitMs: number; loadgenDrainMs: number; closedAfterShutdown: number };
  /** Cores used by other processes during the timed scrapes (NOISY above NOISE_CORES). */
  foreignCpu?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
};

async function runIdle(spec: ServerSpec, rep: number, opts: Options): Promise<IdleRun> {
  const httpPort = spec.kind === 'fugue' ? await freePort() : undefined;
  const server = await startServer(spec, { maxClients: 20_000, ...(httpPort !== undefined ? { httpPort } : {}) });
  try {
    if (server.nofile < opts.idleConns + 100) throw new Error(`server descriptor limit ${server.nofile} is too low for ${opts.idleConns} clients`);
    // Baseline RSS first, the same way for both servers: started, settled, no client yet.
    await sleep(500);
    const rssBeforeKb = procStatus(server.pid).rssKb;
    // Then 1000 clients connect and leave (both servers, so memory is comparable),
    // so that every series the 10k clients produce in fugue's /metrics (message
    // types, close reasons, and the minor-GC histogram, which appears after the
    // first scavenge) already exists: the 0-client and 10k-client bodies then
    // differ only by what depends on the number of clients.
    const prime = startLoadgen(['idle', '--conns', '1000', '--socket', server.socket], 30_000);
    await prime.ready;
    prime.send('quit\n');
    await prime.done;
    let idleScrapes: { ms: number; bytes: number; body: string }[] = [];
    if (httpPort !== undefined) {
      // These also warm the scrape path up before the timed scrapes with 10k clients.
      for (let i = 0; i < 3; i++) idleScrapes.push(await scrape(httpPort));
    }
    const lg = startLoadgen(['idle', '--conns', String(opts.idleConns), '--socket', server.socket, '--server-pid', String(server.pid)], 120_000);
    const ready = await lg.ready;
    await sleep(1000); // let allocation settle (lazy buffers, young-generation GC)
    const rssAfterKb = procStatus(server.pid).rssKb;
    const run: IdleRun = {
      server: spec.id,
      rep,
      conns: opts.idleConns,
      rssBeforeKb,
      rssAfterKb,
      kbPerConn: (rssAfterKb - rssBeforeKb) / opts.idleConns,
      openS: Number(ready.open_s),
      loadgen: {},
      nofile: server.nofile,
    };
    if (httpPort !== undefined) {
      const loaded: { ms: number; bytes: number; body: string }[] = [];
      const scrapeNoise = noiseMeter([server.pid, lg.pid]);
      for (let i = 0; i < 5; i++) loaded.push(await scrape(httpPort));
      const scrapesForeign = scrapeNoise.stop();
      const last = loaded[loaded.length - 1] as { bytes: number; body: string };
      const idleLast = idleScrapes[idleScrapes.length - 1] as { bytes: number; body: string };
      run.metrics = {
        idle: { medianMs: median(idleScrapes.map((s) => s.ms)), bytes: idleLast.bytes, series: seriesCount(idleLast.body) },
        loaded: { medianMs: median(loaded.map((s) => s.ms)), allMs: loaded.map((s) => Math.round(s.ms * 100) / 100), bytes: last.bytes, series: seriesCount(last.body) },
      };
      idleScrapes = [];
      run.foreignCpu = scrapesForeign;
      // Graceful drain: the loadgen answers each `shutdown` with `detach`.
      const sigtermToExitMs = await server.stop();
      run.loadgen = (await lg.done) as unknown as Record<string, unknown>;
      run.drain = { sigtermToExitMs, loadgenDrainMs: Number(run.loadgen.drain_ms), closedAfterShutdown: Number(run.loadgen.closed_after_shutdown) };
    } else {
      lg.send('quit\n');
      run.loadgen = (await lg.done) as unknown as Record<string, unknown>;
    }
    return run;
  } catch (err) {
    throw new Error(`idle/${spec.id}: ${(err as Error).message}\nserver output:\n${server.output()}`);
  } finally {
    await server.stop();
  }
}

// ------------------------------------------------------------------ CPU profile

/** Top self-time functions of a .cpuprofile (V8 format). */
function topSelfTime(file: string, n = 15): { fn: string; where: string; ms: number; pct: number }[] {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const nd = byId.get(prof.samples[i] as number);
    const dt = (prof.timeDeltas[i] ?? 0) / 1000;
    if (nd === undefined) continue;
    const cf = nd.callFrame;
    const where = cf.url === '' ? '' : `${cf.url.replace(/^file:\/\//, '').replace(SNAPSHOT + '/', '').replace(ROOT, '').replace(/^.*node_modules\//, '')}:${cf.lineNumber + 1}`;
    const key = `${cf.functionName || '(anonymous)'}\t${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, ms]) => {
      const [fn, where] = key.split('\t') as [string, string];
      return { fn, where, ms: Math.round(ms), pct: Math.round((1000 * ms) / total) / 10 };
    });
}

// ------------------------------------------------------------------ report

const fmtRate = (r: number) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)}M/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)}k/s` : `${r.toFixed(0)}/s`);
const fmtUs = (us: number) => (us >= 10_000 ? `${(us / 1000).toFixed(1)}ms` : us >= 1000 ? `${(us / 1000).toFixed(2)}ms` : `${us.toFixed(0)}us`);
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function table(rows: string[][]): string {
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0] as string[]), sep, ...rows.slice(1).map(line)].join('\n');
}

interface SummaryRow {
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
  ratio: number | undefined;
  ratioOf: 'rate' | 'p99';
  target: string | undefined;
  verdict: string;
}

function summarise(w: Workload, runs: LoadRun[]): SummaryRow[] {
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
      ratio: undefined,
      ratioOf: w.compare,
      target: undefined,
      verdict: '',
    };
    if (spec.kind === 'bare') bare = { rate: row.rate, p99: row.p99_us };
    else if (bare !== undefined) {
      // The median of per-repetition ratios, each against the bare run of the
      // same repetition (minutes apart at most, so slow drifts of the machine
      // cancel out); the ratio of the medians when no clean pair exists.
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

function loadTable(rows: SummaryRow[]): string {
  const out: string[][] = [['workload', 'server', 'reps', 'rate', 'p50', 'p99', 'p99.9', 'srv CPU', 'lg CPU', 'RSS MB', 'ratio', 'target', 'result']];
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
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x${r.ratioOf === 'p99' ? ' p99' : ''}`,
      r.target ?? '',
      r.verdict,
    ]);
  }
  return table(out);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  detectPinning();
  ensureLoadgen();
  snapshotServers();
  mkdirSync(RESULTS, { recursive: true });
  const sinkServer = await startSink();
  const elapsed = () => (performance.now() - T_START) / 1000;

  const workloads = WORKLOADS.filter((w) => opts.only === undefined || opts.only.has(w.key));
  const doIdle = opts.only === undefined || opts.only.has('idle');
  const runs: LoadRun[] = [];
  const idleRuns: IdleRun[] = [];
  const skipped: string[] = [];
  let runCostS = opts.seconds + opts.warmup + 1.5; // refined from measured runs
  const idleCostS = 12;
  const profiles: { server: string; rate: number; file: string; top: ReturnType<typeof topSelfTime> }[] = [];
  const profDir = join(BUILD, 'profiles');

  console.log(
    `fugue-server benchmark: ${opts.quick ? 'QUICK (smoke test) ' : ''}${opts.seconds}s measured after ${opts.warmup}s warm-up, up to ${opts.reps} repetitions, ` +
      `${pinned ? 'server pinned to core 0, loadgen+harness to core 1' : 'NOT PINNED (taskset missing or < 2 cores): numbers are noisier'}; node ${process.version}`,
  );

  for (let wi = 0; wi < workloads.length; wi++) {
    const w = workloads[wi] as Workload;
    for (let rep = 1; rep <= opts.reps; rep++) {
      if (rep > 1) {
        // Extra repetitions only if one more round still leaves time for one
        // round of every remaining workload (and idle) inside the budget.
        const rest = workloads.slice(wi + 1).reduce((a, x) => a + x.servers.length * runCostS, 0) + (doIdle ? 2 * idleCostS : 0);
        if (elapsed() + w.servers.length * runCostS + rest > opts.budgetS) {
          skipped.push(`${w.key} rep ${rep}+`);
          break;
        }
      }
      for (const spec of w.servers) {
        const t0 = performance.now();
        await waitForQuiet();
        const run = await runLoad(w, spec, rep, opts);
        runs.push(run);
        const cost = (performance.now() - t0) / 1000;
        runCostS = Math.max(runCostS * 0.7 + cost * 0.3, cost);
        const r = run.result;
        console.log(
          `  [${elapsed().toFixed(0).padStart(3)}s] ${w.label} / ${spec.id} #${rep}: ${fmtRate(r.rate)} p99 ${fmtUs(r.p99_us)} ` +
            `srv ${pct(run.serverCpuShare)} lg ${pct(r.loadgen_cpu_share)}${r.errors ? ` errors ${r.errors}` : ''}${run.invalid ? ' INVALID' : ''}` +
            `${run.noisy ? ` NOISY (other processes used ${run.foreignCpu.toFixed(2)} cores)` : ''}`,
        );
      }
    }
  }

  if (doIdle) {
    for (let rep = 1; rep <= opts.idleReps; rep++) {
      if (rep > 1 && elapsed() + 2 * idleCostS > opts.budgetS) {
        skipped.push(`idle rep ${rep}+`);
        break;
      }
      for (const spec of [BARE, FUGUE]) {
        await waitForQuiet();
        const run = await runIdle(spec, rep, opts);
        idleRuns.push(run);
        console.log(
          `  [${elapsed().toFixed(0).padStart(3)}s] idle ${opts.idleConns} / ${spec.id} #${rep}: ${run.kbPerConn.toFixed(2)} KB/conn, opened in ${run.openS}s` +
            (run.metrics ? `, /metrics ${run.metrics.loaded.medianMs.toFixed(1)} ms, drain ${run.drain?.sigtermToExitMs.toFixed(0)} ms` : '') +
            ((run.foreignCpu ?? 0) > NOISE_CORES ? ` NOISY scrapes (other processes used ${(run.foreignCpu ?? 0).toFixed(2)} cores)` : ''),
        );
      }
    }
  }
  // Same-core paired check: echo 64 B and churn, fugue against bare (or
  // against another build with --against DIR).
  const pairedRuns: PairedRun[] = [];
  const doPaired = opts.only === undefined || opts.only.has('paired') || opts.against !== undefined;
  const pairBase: ServerSpec = opts.against !== undefined ? { id: 'fugue (--against)', kind: 'fugue', root: opts.against } : BARE;
  if (opts.against !== undefined && !existsSync(join(opts.against, 'dist/src/cli/fugue-server.js'))) {
    throw new Error(`--against ${opts.against}: no dist/src/cli/fugue-server.js there; build that checkout first (npm run build)`);
  }
  if (doPaired) {
    for (const key of ['echo64', 'churn']) {
      const w = WORKLOADS.find((x) => x.key === key) as Workload;
      for (let rep = 1; rep <= opts.pairedReps; rep++) {
        await waitForQuiet();
        const run = await runPaired(w, pairBase, FUGUE, rep, opts);
        pairedRuns.push(run);
        console.log(
          `  [${elapsed().toFixed(0).padStart(3)}s] same core, at once: ${w.label} #${rep}: ${pairBase.id} ${fmtRate(run.rateA)}, fugue ${fmtRate(run.rateB)}: ${run.ratio.toFixed(3)}x${run.invalid ? ' INVALID' : ''}`,
        );
      }
    }
  }

  if (opts.cpuProf) {
    // Extra runs, not part of the results: the profiler itself slows a server
    // down. Both servers are profiled so their top entries can be compared.
    const w = WORKLOADS[0] as Workload;
    for (const spec of [BARE, FUGUE]) {
      const dir = join(profDir, spec.id);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      await waitForQuiet();
      const run = await runLoad(w, spec, 0, opts, dir);
      console.log(`  [${elapsed().toFixed(0).padStart(3)}s] ${w.label} / ${spec.id} under --cpu-prof (not counted): ${fmtRate(run.result.rate)}`);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file !== undefined) profiles.push({ server: spec.id, rate: run.result.rate, file: join(dir, file), top: topSelfTime(join(dir, file)) });
    }
  }
  sinkServer.close();

  // ---- report ----
  const rows = workloads.flatMap((w) => summarise(w, runs));
  if (rows.length > 0) {
    console.log('');
    console.log(loadTable(rows));
  }

  // What the OTLP runs exported, and whether the batch processor kept up.
  for (const spec of [FUGUE_T1, FUGUE_T100]) {
    const tr = runs.filter((r) => r.server === spec.id && r.tracing !== undefined);
    if (tr.length === 0) continue;
    const msgs = tr.reduce((a, r) => a + r.result.replies, 0);
    const mb = tr.reduce((a, r) => a + (r.tracing?.bytes ?? 0), 0) / 1e6;
    const reqs = tr.reduce((a, r) => a + (r.tracing?.requests ?? 0), 0);
    const dropped = tr.reduce((a, r) => a + (r.tracing?.spansDropped ?? 0), 0);
    console.log(`${spec.id}: ${reqs} OTLP requests, ${mb.toFixed(1)} MB exported, ${dropped} spans dropped (fugue_spans_dropped_total) for ${(msgs / 1e6).toFixed(2)}M measured messages in ${tr.length} run(s)`);
  }

  const scale: Record<string, unknown> = {};
  if (idleRuns.length > 0) {
    const kb = (id: string) => median(idleRuns.filter((r) => r.server === id).map((r) => r.kbPerConn));
    const fr = idleRuns.filter((r) => r.server === FUGUE.id);
    // As for the load rows: scrapes disturbed by other processes count only if all were.
    const cleanScrapes = fr.filter((r) => (r.foreignCpu ?? 0) <= NOISE_CORES);
    const scrapeNoisy = cleanScrapes.length === 0;
    const scrapeMs = median((scrapeNoisy ? fr : cleanScrapes).map((r) => r.metrics?.loaded.medianMs ?? NaN));
    const drainMs = median(fr.map((r) => r.drain?.sigtermToExitMs ?? NaN));
    const lgDrainMs = median(fr.map((r) => r.drain?.loadgenDrainMs ?? NaN));
    const drainedAll = fr.every((r) => r.drain?.closedAfterShutdown === r.conns);
    const m0 = fr[fr.length - 1]?.metrics;
    const bareKb = kb(BARE.id);
    const fugueKb = kb(FUGUE.id);
    const idleRows = [
      ['check', 'bare', 'fugue', 'target', 'result'],
      [`idle memory, ${opts.idleConns} clients`, `${bareKb.toFixed(2)} KB/conn`, `${fugueKb.toFixed(2)} KB/conn (${(fugueKb / bareKb).toFixed(2)}x)`, '<= 8 KB/conn', fugueKb <= 8 ? 'PASS' : 'MISS'],
      [`/metrics scrape, ${opts.idleConns} clients`, '', `${scrapeMs.toFixed(1)} ms, ${m0?.loaded.bytes ?? '?'} B, ${m0?.loaded.series ?? '?'} series`, '< 20 ms', `${scrapeMs < 20 ? 'PASS' : 'MISS'}${scrapeNoisy ? ' NOISY' : ''}`],
      ['/metrics scrape, 0 clients (1000 came and left)', '', `${(m0?.idle.medianMs ?? NaN).toFixed(1)} ms, ${m0?.idle.bytes ?? '?'} B, ${m0?.idle.series ?? '?'} series`, 'same size', ''],
      [`drain ${opts.idleConns} clients (SIGTERM->exit)`, '', `${drainMs.toFixed(0)} ms (loadgen: last close ${lgDrainMs.toFixed(0)} ms after 1st shutdown)`, '< 1000 ms', `${drainMs < 1000 ? 'PASS' : 'MISS'}${drainedAll ? '' : ' INCOMPLETE'}`],
    ];
    console.log('');
    console.log(table(idleRows));
    Object.assign(scale, { kbPerConn: { bare: bareKb, fugue: fugueKb }, metricsScrapeMs: scrapeMs, metricsBody: m0, drainMs, loadgenDrainMs: lgDrainMs });
  }

  const pairedSummary: { workload: string; against: string; reps: number; ratio: number; perRep: number[] }[] = [];
  if (pairedRuns.length > 0) {
    const prow: string[][] = [['workload', 'compared with', 'reps', 'fugue / it', 'per repetition']];
    for (const key of ['echo64', 'churn']) {
      const rs = pairedRuns.filter((r) => r.workload === key && !r.invalid);
      if (rs.length === 0) continue;
      const w = WORKLOADS.find((x) => x.key === key) as Workload;
      const ratio = median(rs.map((r) => r.ratio));
      pairedSummary.push({ workload: key, against: pairBase.id, reps: rs.length, ratio, perRep: rs.map((r) => r.ratio) });
      prow.push([w.label, pairBase.id, String(rs.length), `${ratio.toFixed(3)}x`, rs.map((r) => r.ratio.toFixed(3)).join(' ')]);
    }
    console.log('');
    console.log('same-core paired check (both servers on core 0 at the same time, one load generator each on core 1):');
    console.log(table(prow));
  }

  const invalid = rows.filter((r) => r.invalid);
  console.log('');
  if (rows.length > 0) console.log('ratio = fugue / bare from the same run (throughput: higher is better; "p99": latency, lower is better): the median of the repetitions\' ratios, each against the bare run just before it.');
  const noisy = rows.filter((r) => r.noisy);
  if (noisy.length > 0) console.log(`NOISY rows: other processes used > ${NOISE_CORES} cores during every repetition; treat them with care: ${noisy.map((r) => `${r.label}/${r.server}`).join(', ')}`);
  const dropped = runs.filter((r) => r.noisy).length;
  if (dropped > 0) console.log(`${dropped} noisy repetition(s) (other processes competing for CPU) were left out of the medians.`);
  if (invalid.length > 0) console.log(`INVALID rows: the loadgen used >= 95% of its core, so they measured the generator: ${invalid.map((r) => `${r.label}/${r.server}`).join(', ')}`);
  if (quietWaitS > 1) console.log(`waited ${quietWaitS.toFixed(0)} s in total for other processes to quieten down before runs.`);
  if (skipped.length > 0) console.log(`skipped to stay within the ${opts.budgetS}s budget: ${skipped.join(', ')}`);
  const nofile = idleRuns[0]?.nofile ?? runs[0]?.nofile;
  const totalS = elapsed();
  console.log(`total ${totalS.toFixed(0)} s;${nofile === undefined ? '' : ` server RLIMIT_NOFILE ${nofile};`} results in bench/results/latest.json`);

  for (const p of profiles) {
    console.log('');
    console.log(`top self-time in ${p.server} under echo 64B at ${fmtRate(p.rate)} (node --cpu-prof, ${p.file.replace(ROOT, '')}):`);
    console.log(table([['function', 'where', 'self ms', '%'], ...p.top.map((t) => [t.fn, t.where, String(t.ms), `${t.pct}%`])]));
  }

  writeFileSync(
    join(RESULTS, 'latest.json'),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, pinned, serverNofile: nofile },
        options: { ...opts, only: opts.only ? [...opts.only] : undefined },
        totalSeconds: totalS,
        summary: rows,
        paired: pairedSummary,
        pairedRuns,
        scale,
        skipped,
        runs,
        idleRuns,
        ...(profiles.length > 0 ? { profiles } : {}),
      },
      null,
      2,
    )}\n`,
  );
}

main().then(
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
