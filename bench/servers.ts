// Starting and stopping the servers under test: the bare baseline
// (bench/bare-server.ts) and the real fugue-server CLI. Every run gets a fresh
// process, pinned to core 0, in a fresh 0700 directory.
//
// fugue runs as deployed (issue 12): its default configuration, log level
// included (info), with stdout and stderr read by a separate log consumer
// (log-reader.ts). The only settings the harness makes are the ones a run
// needs: its socket, a free HTTP port (scraped after the run), the client
// limit of the idle test, the OTLP rows' exporter, and the extra rows of
// --log-level. The bare server writes nothing; its output goes to the harness.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LogReader } from './log-reader.js';
import { SNAPSHOT, programOf } from './paths.js';
import { procNofile } from './proc.js';
import { exited, killAll, pinnedCommand, sleep, tail, track } from './processes.js';

export interface ServerSpec {
  /** Row label, and the key of the workload's targets. */
  id: string;
  kind: 'bare' | 'fugue';
  /** Export spans over OTLP/HTTP to the harness's sink at this sample ratio. */
  tracing?: number;
  /** Where its dist/ is (default: the snapshot of this checkout). */
  root?: string;
  /** fugue's log.level; absent = its default (info), as deployed. */
  logLevel?: string;
  /** fugue only: the script to run under its root instead of the CLI (the fan-out rows' bench/fanout-server.ts, the real App with one more feature). */
  entry?: string;
  /** fugue only: settings for this row on top of what every run gets (FUGUE_* variables). */
  env?: Readonly<Record<string, string>>;
}

export const BARE: ServerSpec = { id: 'bare', kind: 'bare' };
export const FUGUE: ServerSpec = { id: 'fugue', kind: 'fugue' };
export const FUGUE_T1: ServerSpec = { id: 'fugue+otlp 1%', kind: 'fugue', tracing: 0.01 };
export const FUGUE_T100: ServerSpec = { id: 'fugue+otlp 100%', kind: 'fugue', tracing: 1 };
/** The fan-out rows' fugue: the real App with bench/fanout-feature.ts registered, at its default configuration. */
export const FUGUE_FANOUT: ServerSpec = { id: 'fugue', kind: 'fugue', entry: 'dist/bench/fanout-server.js' };
/**
 * The same, its subscribers on the `disconnect` stream: a subscriber that stops
 * reading is cut off past limits.maxBufferedBytes, here 256 KiB (the drop
 * stream's bound) instead of the default 32 MiB, which a stopped subscriber
 * would take minutes to reach; limits.maxFrameBytes must be at most half of it.
 */
export const FUGUE_FANOUT_DISCONNECT: ServerSpec = {
  id: 'fugue disconnect',
  kind: 'fugue',
  entry: 'dist/bench/fanout-server.js',
  env: { FUGUE_MAX_BUFFERED_BYTES: String(256 * 1024), FUGUE_MAX_FRAME_BYTES: String(64 * 1024) },
};

export interface StartOptions {
  /** limits.maxClients (default 1024, fugue's default). */
  maxClients?: number;
  /** http.port; 0 lets fugue pick one. */
  httpPort?: number;
  /** Run under node --cpu-prof, writing the profile here. */
  cpuProfDir?: string;
  /** The OTLP sink's base URL (required for a spec with `tracing`). */
  otlpEndpoint?: string;
  /** The node binary to run it with (--node); default: the harness's own. */
  node?: string;
  /** The core to pin it to (default 0, the server's core). */
  core?: number;
}

export interface RunningServer {
  pid: number;
  socket: string;
  child: ChildProcess;
  /** fugue's HTTP sidecar port (always set for fugue). */
  httpPort: number | undefined;
  /** fugue's log consumer; undefined for bare. */
  logs: LogReader | undefined;
  /** The RLIMIT_NOFILE the server got. */
  nofile: number;
  /** The tail of its stdout and stderr, for error messages. */
  output(): Promise<string>;
  /** SIGTERM, wait for exit (then SIGKILL); resolves with ms from signal to exit. */
  stop(): Promise<number>;
}

/**
 * A free TCP port on loopback, for fugue's sidecar: the harness scrapes it, and
 * at levels above info fugue does not log the port it would pick for http.port 0.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
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

/** The harness's environment without FUGUE_* and OTEL_* settings: what fugue and fuguectl start from. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('FUGUE_') || k.startsWith('OTEL_')) delete env[k];
  return env;
}

/** The environment fugue runs with: a clean slate, then only what the run needs. */
function fugueEnv(spec: ServerSpec, socket: string, extra: StartOptions): NodeJS.ProcessEnv {
  const env = cleanEnv();
  Object.assign(env, {
    FUGUE_SOCKET_PATH: socket,
    FUGUE_HTTP_PORT: String(extra.httpPort ?? 0),
    FUGUE_MAX_CLIENTS: String(extra.maxClients ?? 1024),
  });
  if (spec.logLevel !== undefined) env.FUGUE_LOG_LEVEL = spec.logLevel;
  if (spec.env !== undefined) Object.assign(env, spec.env);
  if (spec.tracing !== undefined) {
    if (extra.otlpEndpoint === undefined) throw new Error(`${spec.id}: no OTLP sink to export to`);
    Object.assign(env, {
      FUGUE_TRACING_EXPORTER: 'otlp',
      FUGUE_TRACING_ENDPOINT: extra.otlpEndpoint,
      FUGUE_TRACING_SAMPLE_RATIO: String(spec.tracing),
    });
  }
  return env;
}

/** A server process just spawned: not yet known to be ready. */
export interface SpawnedServer extends RunningServer {
  /** performance.now() just before spawn(): where a start-up time begins. */
  spawnedAt: number;
}

/**
 * Spawn a server as every row runs it (fresh 0700 directory, descriptor limit,
 * pinned, fugue with its log consumer) without waiting for it: startServer()
 * waits for readiness, the start-up rows time the first answer themselves.
 */
export async function spawnServer(spec: ServerSpec, extra: StartOptions = {}): Promise<SpawnedServer> {
  // A fresh 0700 directory per run: fugue refuses group/other-writable socket dirs.
  const dir = mkdtempSync(join(tmpdir(), 'fugue-bench-'));
  const socket = join(dir, spec.kind === 'bare' ? 'b.sock' : 'f.sock');
  const nodeArgs: string[] = [];
  if (extra.cpuProfDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${extra.cpuProfDir}`);
  // Raise the descriptor limit for the 10k-connection test; without privilege
  // fall back to the hard limit (reported in the output).
  const ulimit = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null';
  let env: NodeJS.ProcessEnv;
  let logs: LogReader | undefined;
  let wrapper: string[];
  let httpPort: number | undefined;
  if (spec.kind === 'bare') {
    nodeArgs.push(join(spec.root ?? SNAPSHOT, 'dist/bench/bare-server.js'), socket);
    env = { ...process.env };
    wrapper = ['-c', `${ulimit}; exec "$@"`, 'bench-server'];
  } else {
    nodeArgs.push(spec.entry === undefined ? programOf(spec.root ?? SNAPSHOT, 'fugue-server') : join(spec.root ?? SNAPSHOT, spec.entry));
    httpPort = extra.httpPort ?? (await freePort());
    env = fugueEnv(spec, socket, { ...extra, httpPort });
    // The consumer holds the FIFOs open before the server opens them: the
    // shell's redirections then never block, and nothing is lost at start-up.
    logs = await LogReader.start(dir);
    wrapper = ['-c', `out=$1 err=$2; shift 2; ${ulimit}; exec "$@" >"$out" 2>"$err"`, 'bench-server', logs.stdoutPath, logs.stderrPath];
  }
  const [cmd, args] = pinnedCommand(extra.core ?? 0, 'sh', [...wrapper, extra.node ?? process.execPath, ...nodeArgs]);
  const spawnedAt = performance.now();
  const child = track(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const output = async () => `${out()}${err()}${logs === undefined ? '' : await logs.tail()}`.trim();
  const stop = async (): Promise<number> => {
    const t0 = performance.now();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
    const ms = performance.now() - t0;
    // The consumer reads to the end of both streams (the server's last lines
    // are its drain), then exits; it must not take the FIFOs with it unread.
    if (logs !== undefined) await Promise.race([logs.ended, sleep(5000)]);
    rmSync(dir, { recursive: true, force: true });
    return ms;
  };
  const pid = child.pid as number;
  // The limit is read once the shell has raised it and exec'd node (same pid).
  return { pid, socket, child, httpPort, logs, nofile: NaN, output, stop, spawnedAt };
}

/** The tail of a server that exited during start-up, as an error. */
export async function exitedDuringStart(spec: ServerSpec, server: RunningServer): Promise<Error> {
  const { child } = server;
  return new Error(`${spec.id} exited during start-up (${child.exitCode ?? child.signalCode}):\n${await server.output()}`);
}

/** The --node part of StartOptions. */
export const nodeOf = (opts: { node: { path: string } | undefined }): Pick<StartOptions, 'node'> => (opts.node === undefined ? {} : { node: opts.node.path });

/** Spawn a server and wait until it is ready (fugue: its pid file names it; bare: a connect() succeeds), at most 15 s. */
export async function startServer(spec: ServerSpec, extra: StartOptions = {}): Promise<RunningServer> {
  const server = await spawnServer(spec, extra);
  const { child, pid, socket } = server;
  // Ready when fugue's pid file names this process (written after the socket is
  // bound); the bare server writes none, so connect to it.
  const deadline = performance.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw await exitedDuringStart(spec, server);
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
      const text = await server.output();
      killAll();
      throw new Error(`${spec.id} did not become ready within 15 s:\n${text}`);
    }
    await sleep(20);
  }
  server.nofile = procNofile(pid);
  return server;
}
