// Crash safety of the real fugue-server process under heavy traffic:
// - kill -9 mid-traffic, then a restart at the same path serves at once;
// - a graceful SIGTERM mid-traffic drops nothing, and the server's per-client
//   log counts agree exactly with what every client sent and received.

import test from 'ava';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Lite, type Msg } from '../helpers/lite-client.js';
import { httpPortOf, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const CLIENTS = 20;
/** Requests in flight per client: pipelined, bounded so memory is too. */
const WINDOW = 256;

/**
 * A client pipelining echo requests with ids 1, 2, 3...: WINDOW in flight, each
 * reply sends the next until `stop()`. Replies must come back exactly once, in
 * order, with the data sent; anything else is recorded in `errors`.
 */
class Pipeliner {
  readonly c: Lite;
  readonly clientId: number;
  readonly index: number;
  sent = 0;
  answered = 0;
  sending = true;
  errors: string[] = [];
  /** Set when the shutdown notice arrives. */
  notice: Msg | undefined;
  sentBeforeNotice = -1;
  answeredBeforeNotice = -1;
  /** Requests sent after the notice, and the status reply among their answers. */
  sentAfterNotice = 0;
  statusAfterNotice: Msg | undefined;
  onNotice: (p: Pipeliner) => void = () => {};
  #statusId = -1;

  constructor(c: Lite, clientId: number, index: number) {
    this.c = c;
    this.clientId = clientId;
    this.index = index;
    c.onMessage = (m) => this.#onMessage(m);
  }

  static dataFor(index: number, id: number): { c: number; n: number; s: string } {
    return { c: index, n: id, s: `${index}:${id}` };
  }

  start(): void {
    for (let k = 0; k < WINDOW; k++) this.sendEcho();
  }

  sendEcho(): void {
    const id = ++this.sent;
    this.c.send({ type: 'echo', id, data: Pipeliner.dataFor(this.index, id) });
  }

  sendStatus(): void {
    const id = ++this.sent;
    this.#statusId = id;
    this.c.send({ type: 'status', id });
  }

  #fail(text: string): void {
    if (this.errors.length < 10) this.errors.push(`client ${this.index}: ${text}`);
  }

  #onMessage(m: Msg): void {
    if (m.type === 'shutdown' && m.id === undefined) {
      if (this.notice !== undefined) this.#fail('a second shutdown notice');
      this.notice = m;
      this.sending = false;
      this.sentBeforeNotice = this.sent;
      this.answeredBeforeNotice = this.answered;
      this.onNotice(this);
      return;
    }
    // Replies come in request order: the next one must answer id answered + 1.
    const want = this.answered + 1;
    if (m.id !== want || want > this.sent) {
      this.#fail(`got ${JSON.stringify(m).slice(0, 200)}, want the reply to id ${want} (sent ${this.sent})`);
      return;
    }
    this.answered++;
    if (want === this.#statusId) {
      this.statusAfterNotice = m;
      if (m.type !== 'status') this.#fail(`id ${want}: got ${m.type}, want status`);
    } else {
      const d = m.data as { c?: unknown; n?: unknown; s?: unknown } | undefined;
      const e = Pipeliner.dataFor(this.index, want);
      if (m.type !== 'echo' || d?.c !== e.c || d.n !== e.n || d.s !== e.s) this.#fail(`id ${want}: wrong reply ${JSON.stringify(m).slice(0, 200)}`);
    }
    if (this.sending) this.sendEcho();
  }
}

async function pipeliners(sock: string): Promise<Pipeliner[]> {
  return Promise.all(Array.from({ length: CLIENTS }, async (_v, i) => {
    const { c, clientId } = await Lite.handshaken(sock, `load-${i}`);
    return new Pipeliner(c, clientId, i);
  }));
}

const total = (ps: Pipeliner[], f: (p: Pipeliner) => number): number => ps.reduce((a, p) => a + f(p), 0);

test.serial('kill -9 during heavy traffic: a restart at the same path serves again at once', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const env = { FUGUE_SOCKET_PATH: sock, FUGUE_LOG_LEVEL: 'info' };
  const a = spawnServer(t, { env });
  await a.ready();
  const ps = await pipeliners(sock);
  for (const p of ps) p.start();
  // Heavy traffic is flowing: every client has had many replies.
  await waitFor(() => ps.every((p) => p.answered >= 1000), { what: '1000 replies on every client', timeoutMs: 20_000 });

  a.child.kill('SIGKILL');
  t.deepEqual(await a.exited, { code: null, signal: 'SIGKILL' });
  await Promise.all(ps.map((p) => p.c.closed));
  const answered = total(ps, (p) => p.answered);
  const sent = total(ps, (p) => p.sent);
  t.deepEqual(ps.flatMap((p) => p.errors), [], 'every reply received before the crash was whole, in order and correct');
  t.true(ps.every((p) => p.notice === undefined), 'no shutdown notice: the server had no chance');
  // Only kill -9 leaves the socket behind.
  t.true(existsSync(sock) && lstatSync(sock).isSocket(), 'the dead server left its socket file');

  // Restart at the same path; time from spawn to the first pong, trying to
  // connect as fast as the failures come back.
  const t0 = performance.now();
  const wallSpawn = Date.now();
  const b = spawnServer(t, { env });
  let attempts = 0;
  const pong = await waitFor(async () => {
    attempts++;
    try {
      const { c } = await Lite.handshaken(sock, 'after-crash');
      const reply = await new Promise<Msg>((resolve) => {
        c.onMessage = resolve;
        c.send({ type: 'ping', id: 'first' });
      });
      c.send({ type: 'detach' });
      await c.closed;
      return reply;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // The stale socket refuses until the new server replaces it; ENOENT between unlink and link.
      if (code === 'ECONNREFUSED' || code === 'ENOENT') return undefined;
      throw err;
    }
  }, { what: 'a pong from the restarted server', timeoutMs: 15_000, intervalMs: 2 });
  const restartMs = performance.now() - t0;
  t.deepEqual(pong, { type: 'pong', id: 'first' });
  await b.waitLog((l) => l.msg.startsWith('removed stale socket'), 'the stale socket was detected and replaced');
  t.is(readFileSync(`${sock}.pid`, 'utf8').trim(), String(b.child.pid), 'the pid file names the new server');

  // The new server carries the same load.
  const again = await pipeliners(sock);
  for (const p of again) p.start();
  await waitFor(() => again.every((p) => p.answered >= 200), { what: '200 replies on every client after the restart', timeoutMs: 20_000 });
  for (const p of again) p.onNotice = (q) => q.c.send({ type: 'detach' });
  b.child.kill('SIGTERM');
  await Promise.all(again.map((p) => p.c.closed));
  t.deepEqual(await b.exited, { code: 0, signal: null });
  t.deepEqual(again.flatMap((p) => p.errors), []);
  t.true(again.every((p) => p.answered === p.sent), 'after the restart, everything sent was answered');
  t.false(existsSync(sock), 'socket removed on the clean stop');

  const listening = b.logs.find((l) => l.msg === 'server listening');
  t.log(`CRASH: restart to first pong ${restartMs.toFixed(0)} ms`);
  t.log(`  of which spawn to 'server listening' (process start, config, OpenTelemetry, bind) ${Date.parse(String(listening?.time)) - wallSpawn} ms`);
  t.log(`  killed with ${sent} requests sent, ${answered} answered, ${sent - answered} in flight; ${attempts} connect attempts until the first pong`);
});

test.serial('SIGTERM during heavy traffic: every request is answered exactly once, and the server logs agree with the clients', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_LOG_LEVEL: 'info', FUGUE_SHUTDOWN_TIMEOUT_MS: '30000' } });
  await s.ready();
  const port = await waitFor(() => httpPortOf(s), { what: 'sidecar port in the logs' });
  const ps = await pipeliners(sock);

  // On the notice: stop the flood, send a few more requests (they must be answered
  // too: the server serves until the client leaves), then detach at once, without
  // waiting for the replies still owed: detach means "send what you owe, then close".
  const AFTER = 5;
  for (const p of ps) {
    p.onNotice = (q) => {
      for (let k = 0; k < AFTER; k++) q.sendEcho();
      q.sendStatus();
      q.sentAfterNotice = q.sent - q.sentBeforeNotice;
      q.c.send({ type: 'detach' });
    };
  }
  for (const p of ps) p.start();
  await waitFor(() => ps.every((p) => p.answered >= 1000), { what: '1000 replies on every client', timeoutMs: 20_000 });

  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.regex(metrics, new RegExp(`^fugue_active_clients ${CLIENTS}$`, 'm'), 'the sidecar counts the clients');

  const tTerm = performance.now();
  s.child.kill('SIGTERM');
  await Promise.all(ps.map((p) => p.c.closed));
  const closedMs = performance.now() - tTerm;
  t.deepEqual(await s.exited, { code: 0, signal: null });
  t.false(existsSync(sock));

  t.deepEqual(ps.flatMap((p) => p.errors), [], 'every reply exactly once, in order, with the right data');
  for (const p of ps) {
    t.like(p.notice, { type: 'shutdown', reason: 'received SIGTERM', timeout_ms: 30000 }, `client ${p.index} got the notice`);
    t.true(p.answered >= p.sentBeforeNotice, `client ${p.index}: all ${p.sentBeforeNotice} requests sent before the notice were answered (got ${p.answered})`);
    t.is(p.answered, p.sent, `client ${p.index}: the ${p.sentAfterNotice} requests sent after the notice were answered too`);
    t.like(p.statusAfterNotice, { type: 'status', draining: true }, `client ${p.index}: status during the drain`);
    t.true(p.c.peerEnded && p.c.error === undefined, `client ${p.index}: the server closed cleanly (FIN after the last reply)`);
  }
  const drained = s.logs.find((l) => l.msg === 'drain finished');
  t.like(drained, { left: CLIENTS, forced: 0 });

  // The server's accounting, one 'client disconnected' line per client, agrees exactly.
  const lines = s.logs.filter((l) => l.msg === 'client disconnected');
  t.is(lines.length, CLIENTS);
  for (const p of ps) {
    const line = lines.find((l) => l.clientId === p.clientId);
    t.like(line, {
      reason: 'detach',
      clientName: `load-${p.index}`,
      // connect + every request + detach
      messagesIn: p.c.framesSent,
      // connected + every reply + shutdown
      messagesOut: p.c.framesReceived,
      bytesIn: p.c.socket.bytesWritten,
      bytesOut: p.c.socket.bytesRead,
    }, `client ${p.index} (client_id ${p.clientId}): server log agrees`);
    t.is(p.c.framesSent, 1 + p.sent + 1);
    t.is(p.c.framesReceived, 1 + p.answered + 1);
  }

  const beforeNotice = total(ps, (p) => p.sentBeforeNotice);
  const inFlight = total(ps, (p) => p.sentBeforeNotice - p.answeredBeforeNotice);
  t.log(`SHUTDOWN-UNDER-LOAD: ${beforeNotice} requests before notice, all answered; logs agree`);
  t.log(`  ${inFlight} of them in flight when the notices arrived; ${total(ps, (p) => p.sentAfterNotice)} sent after the notices, all answered; SIGTERM to all closed ${closedMs.toFixed(0)} ms; drain ${String(drained?.durationMs)} ms`);
});
