// A log reader that stops reading (a paused pager, a stuck shipper, a blocked
// journald) never stops service: the real CLI writes its stdout into a real
// FIFO whose reader the test pauses. docs/reliability.md, promise 10.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { FugueClient } from '../../src/client/client.js';
import type { LogLine } from '../helpers/log-sink.js';
import { spawnServer, type Spawned } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { onceWithin, waitFor } from '../helpers/wait-for.js';
import { scrapeSample } from '../helpers/scrape.js';

const BUFFER = 16_384; // log.maxBufferedBytes, its minimum

interface FifoReader {
  /** Write end, for the child's stdout. */
  writeFd: number;
  lines: LogLine[];
  pause(): void;
  resume(): void;
  /** Resolves when the writer closed (the server exited) and everything was read. */
  ended: Promise<void>;
}

function fifoReader(t: ExecutionContext, dir: string): FifoReader {
  const path = join(dir, 'stdout.fifo');
  t.is(spawnSync('mkfifo', ['-m', '600', path]).status, 0, 'mkfifo');
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY);
  const sock = new Socket({ fd: readFd, readable: true, writable: false });
  const lines: LogLine[] = [];
  let partial = '';
  sock.on('data', (d: Buffer) => {
    const parts = (partial + d.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim() !== '') lines.push(JSON.parse(p) as LogLine);
  });
  const ended = new Promise<void>((resolve) => sock.once('end', () => resolve()));
  t.teardown(() => sock.destroy());
  return { writeFd, lines, pause: () => sock.pause(), resume: () => sock.resume(), ended };
}

async function startWithFifo(t: ExecutionContext, env: Record<string, string> = {}): Promise<{ s: Spawned; reader: FifoReader; sock: string; port: number }> {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const reader = fifoReader(t, dir);
  const s = spawnServer(t, { stdoutFd: reader.writeFd, env: { FUGUE_SOCKET_PATH: sock, FUGUE_LOG_MAX_BUFFERED_BYTES: String(BUFFER), ...env } });
  closeSync(reader.writeFd); // the child holds its copy
  await waitFor(() => reader.lines.some((l) => l.msg === 'server listening'), { what: 'server listening on the FIFO', timeoutMs: 10_000 });
  const port = await waitFor(() => reader.lines.find((l) => l.msg === 'http sidecar listening')?.port as number | undefined, { what: 'sidecar port' });
  return { s, reader, sock, port };
}

/** Connect, ping and leave, `n` times: each costs the server two log lines. */
async function churn(sock: string, port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const c = await FugueClient.connect(sock, { timeoutMs: 3000 });
    if ((await c.ping()).type !== 'pong') throw new Error('no pong');
    await c.detach();
    if (i % 50 === 0) {
      const h = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (h.status !== 200) throw new Error(`healthz ${h.status}`);
    }
  }
}

test('a stalled log reader: clients and probes are served, lost lines are bounded and counted, one line sums them up when it reads again, and every later line arrives', async (t) => {
  t.timeout(60_000);
  const { s, reader, sock, port } = await startWithFifo(t);
  reader.pause();
  await churn(sock, port, 800); // throws if a reply or a probe is late (one log line per connection at info)
  const dropped = await scrapeSample(port, 'fugue_log_lines_dropped_total', 2000);
  t.true(dropped > 0, `lines dropped while stalled: ${dropped}`);
  t.true((await scrapeSample(port, 'fugue_log_buffered_bytes', 2000)) <= BUFFER, 'the backlog stays within log.maxBufferedBytes');
  t.log(`LOGSTALL: 800 connections while the reader was stalled; ${dropped} lines dropped, ${await scrapeSample(port, 'fugue_log_lines_written_total', 2000)} written`);

  reader.resume();
  const summary = await waitFor(() => reader.lines.find((l) => l.msg.startsWith('log output stalled')), { what: 'the stall summary', timeoutMs: 5000 });
  t.is(summary.droppedLines, dropped, 'the summary counts exactly what the metric counted');
  t.true((summary.droppedBytes as number) > 0);

  // Lines logged before a controlled exit reach a reader that reads.
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  await reader.ended;
  const tail = reader.lines.map((l) => l.msg);
  t.true(tail.includes('drain finished'));
  t.is(tail.at(-1), 'fugue-server stopped');
});

test('SIGTERM while the log reader is stalled: the drain completes and the process exits, without waiting for the reader', async (t) => {
  t.timeout(60_000);
  const { s, reader, sock, port } = await startWithFifo(t, { FUGUE_SHUTDOWN_TIMEOUT_MS: '3000' });
  reader.pause();
  await churn(sock, port, 800);
  t.true((await scrapeSample(port, 'fugue_log_lines_dropped_total', 2000)) > 0, 'the reader is really stalled');
  const stay = await FugueClient.connect(sock);
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const notice = await onceWithin<Record<string, unknown>>(stay, 'message', 10_000, 'the shutdown notice');
  t.is(notice.type, 'shutdown', 'clients are still told while the log is stuck');
  await stay.detach();
  const exit = await s.exited;
  const ms = Date.now() - t0;
  t.is(exit.code, 0);
  t.false(existsSync(sock));
  // Bounded by the drain (the client left at once) plus the exit's log flush
  // bound (2 s). A server that waited for the stalled reader would not exit at
  // all; 15 s is generous for a loaded machine.
  t.true(ms < 15_000, `exited ${ms} ms after SIGTERM`);
  t.log(`LOGSTALL: exit with a stalled reader took ${ms} ms`);
  reader.resume();
  await reader.ended;
});
