// One side of a start-up row (bench/README.md, "Start-up, per call and at
// rest"): a server timed from exec to its first answer, a process timed from
// exec to its exit, or a server's resident memory once it has started and
// settled. Every side gets a fresh process (and a server a fresh directory and
// socket path), stopped and reaped before the next one starts.

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { firstAnswer } from './first-answer.js';
import type { Options } from './options.js';
import type { OtlpSink } from './otlp-sink.js';
import { cpuMeter, procStatus } from './proc.js';
import { exited, pinnedCommand, sleep, tail, track } from './processes.js';
import { SNAPSHOT } from './paths.js';
import { cleanEnv, nodeOf, spawnServer, type RunningServer, type ServerSpec } from './servers.js';
import type { ProcessSpec, StartRow } from './workloads.js';

export interface StartRun {
  /** The row's key. */
  row: string;
  /** The side's id (bare, fugue, node -e 0, ...). */
  side: string;
  pair: number;
  /** Whether this side ran first in its pair (the order alternates from pair to pair). */
  first: boolean;
  /** ms (start-up and process rows) or MB (rest-memory). */
  value: number;
  /** Start-up rows: ms from spawn() to the first connect() that succeeded, and the attempts refused before it. */
  connectMs?: number;
  refused?: number;
  /** rest-memory: resident memory in KB once settled, its anonymous and file-backed parts, and how long settling took. */
  rss?: { rssKb: number; anonKb: number; fileKb: number; settled: boolean; settleMs: number };
  /** CPU seconds other processes used while this side was measured, and the wall seconds measured (the pair's noise). */
  foreignS: number;
  wallS: number;
}

/** Resident memory is settled when its samples over the last second differ by less than this share. */
const SETTLED_SHARE = 0.01;
const RSS_SAMPLE_MS = 100;
/** Past this, the last reading is taken and the run says it had not settled. */
const SETTLE_MAX_MS = 10_000;

/**
 * Sample the RSS every 100 ms until a second's worth of samples lie within 1 %
 * of each other (at most 10 s). fugue's RSS still grows for a few hundred ms
 * after its first answer, then stays flat to within a few KB.
 */
async function settledRss(pid: number): Promise<NonNullable<StartRun['rss']>> {
  const t0 = performance.now();
  const window = 1000 / RSS_SAMPLE_MS + 1;
  const samples: number[] = [];
  for (;;) {
    samples.push(procStatus(pid).rssKb);
    const last = samples.slice(-window);
    const settled = last.length === window && Math.max(...last) - Math.min(...last) < SETTLED_SHARE * Math.max(...last);
    if (settled || performance.now() - t0 > SETTLE_MAX_MS) {
      const st = procStatus(pid);
      return { rssKb: st.rssKb, anonKb: st.anonKb, fileKb: st.fileKb, settled, settleMs: Math.round(performance.now() - t0) };
    }
    await sleep(RSS_SAMPLE_MS);
  }
}

/** A server side: its start timed to the first answer, then (rest-memory) its settled RSS; stopped before returning. */
async function serverSide(row: StartRow, spec: ServerSpec, pair: number, first: boolean, opts: Options, sink: OtlpSink): Promise<StartRun> {
  const server = await spawnServer(spec, { otlpEndpoint: sink.endpoint, ...nodeOf(opts) });
  try {
    const meter = cpuMeter(server.logs === undefined ? [server.pid] : [server.pid, server.logs.pid]);
    const a = await firstAnswer(spec, server);
    const cpu = meter.stop();
    const base = { row: row.key, side: spec.id, pair, first, ...cpu };
    if (row.measure.kind !== 'rest-rss') return { ...base, value: a.answerMs, connectMs: a.connectMs, refused: a.refused };
    const rss = await settledRss(server.pid);
    return { ...base, value: rss.rssKb / 1024, rss };
  } catch (err) {
    throw new Error(`${row.key}/${spec.id} #${pair}: ${(err as Error).message}`);
  } finally {
    await server.stop();
  }
}

/**
 * A process side: from just before spawn() to its exit, pinned to the
 * server's core like every measured process; it must exit 0. `server` is the
 * fugue-server it talks to (fuguectl reads FUGUE_SOCKET_PATH; `node -e 0`
 * ignores it).
 */
async function processSide(row: StartRow, proc: ProcessSpec, pair: number, first: boolean, opts: Options, server: RunningServer): Promise<StartRun> {
  const env = { ...cleanEnv(), FUGUE_SOCKET_PATH: server.socket };
  const [cmd, args] = pinnedCommand(0, opts.node?.path ?? process.execPath, proc.args(SNAPSHOT));
  // A process that is gone is counted by cpuMeter through this harness's reaped children.
  const meter = cpuMeter(server.logs === undefined ? [server.pid] : [server.pid, server.logs.pid]);
  const t0 = performance.now();
  const child = track(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  let t1 = NaN;
  child.once('exit', () => (t1 = performance.now()));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await exited(child);
  const cpu = meter.stop();
  await closed;
  if (child.exitCode !== 0) {
    throw new Error(`${row.key}/${proc.id} #${pair}: ${[cmd, ...args].join(' ')} exited ${child.exitCode ?? child.signalCode}, not 0:\n${out()}${err()}`);
  }
  return { row: row.key, side: proc.id, pair, first, value: t1 - t0, ...cpu };
}

/** One side of one pair of `row`. `ctlServer`: the fugue-server the process rows talk to. */
export function measureSide(row: StartRow, side: ServerSpec | ProcessSpec, pair: number, first: boolean, opts: Options, sink: OtlpSink, ctlServer?: RunningServer): Promise<StartRun> {
  if (row.measure.kind === 'process') {
    if (ctlServer === undefined) throw new Error(`${row.key}: no fugue-server to talk to`);
    return processSide(row, side as ProcessSpec, pair, first, opts, ctlServer);
  }
  return serverSide(row, side as ServerSpec, pair, first, opts, sink);
}
