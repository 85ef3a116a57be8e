// Feature scope and lifecycle (issue 16, point 2) and fan-out (point 3), from
// the public API: each server gives a feature its own scope, hooks run at the
// documented moments, declared names bound the metric labels, and a stream
// publishes one serialisation to every subscriber, each with its own order
// and bound.
import test from 'ava';
import { setTimeout as delay } from 'node:timers/promises';
import { App, FugueServer, type ClientHandle, type Feature, type Stream } from '../../src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { join } from 'node:path';
import { encodeFrame } from '../../src/protocol/index.js';
import { record } from '../helpers/feature.js';
import { LogSink } from '../helpers/log-sink.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/** counter.add -> counter.value {value}: a per-server count, kept in the scope. */
const counterFeature: Feature = {
  name: 'counter',
  sends: ['counter.value'],
  register(scope) {
    let value = 0;
    scope.handle('counter.add', { handle: () => ({ type: 'counter.value', value: ++value }) });
  },
};

async function startApp(t: Parameters<typeof tmpDir>[0], features: Feature[]) {
  const socketPath = join(tmpDir(t), 'f.sock');
  const env = { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_HTTP_PORT: '0' };
  const app = new App({ config: loadConfig({ env }).config, version: '0', env, logDestination: new LogSink(), defaultMetrics: false, features });
  await app.start();
  t.teardown(() => app.destroy());
  return { app, socketPath };
}

test('two Apps in one process with the same feature share no state', async (t) => {
  const a = await startApp(t, [counterFeature]);
  const b = await startApp(t, [counterFeature]);
  const ca = await RawClient.handshaken(a.socketPath);
  const cb = await RawClient.handshaken(b.socketPath);
  for (let i = 1; i <= 3; i++) {
    ca.send({ type: 'counter.add', id: i });
    t.like(await ca.next(), { value: i });
  }
  cb.send({ type: 'counter.add', id: 1 });
  t.like(await cb.next(), { type: 'counter.value', value: 1 }, 'the second server counts from its own scope');
  const metric = async (app: App) => (await app.observability.metrics.render(false)).body.match(/^fugue_messages_received_total\{type="counter\.add"\} (\d+)$/m)?.[1];
  t.is(await metric(a.app), '3');
  t.is(await metric(b.app), '1', 'and its own metrics: events of the other server are not counted');
  ca.end();
  cb.end();
});

test('hooks: connect after `connected`, disconnect with the close event, drain before `shutdown`, close once every client is gone', async (t) => {
  const calls: string[] = [];
  const hooks: Feature = {
    name: 'hooks',
    sends: ['hello', 'bye'],
    register(scope) {
      scope.onConnect((client) => {
        calls.push(`connect ${client.name}`);
        client.send({ type: 'hello' });
      });
      scope.onDisconnect((client, ev) => calls.push(`disconnect ${client.name} ${ev.reason}`));
      scope.onDrain((ev) => {
        calls.push(`drain ${ev.clients}`);
        for (const c of scope.server.clients()) scope.server.client(c.id)?.send({ type: 'bye' });
      });
      scope.onClose(async () => {
        await delay(10);
        calls.push(`close ${scope.server.clientCount()}`);
      });
    },
  };
  const server = await startServer(t, { features: [hooks], shutdownTimeoutMs: 5000 });
  const c = await RawClient.connect(server.socketPath);
  c.send({ type: 'connect', protocol_version: 1, client_name: 'x' });
  t.like(await c.next(), { type: 'connected' });
  t.like(await c.next(), { type: 'hello' }, 'what onConnect sends comes after connected');
  const d = await RawClient.handshaken(server.socketPath, 'y');
  await d.next(); // hello
  d.destroy();
  await waitFor(() => calls.includes('disconnect y client_eof') || calls.includes('disconnect y client_reset'), { what: 'the disconnect hook' });
  const closing = server.close('test');
  t.like(await c.next(), { type: 'bye' }, 'what onDrain sends comes before the shutdown notice');
  t.like(await c.next(), { type: 'shutdown' });
  c.end();
  await closing;
  t.deepEqual(calls.filter((x) => !x.startsWith('disconnect y')), ['connect x', 'connect y', 'drain 1', 'disconnect x client_eof', 'close 0']);
});

test('a hook that throws is reported as feature_failed and harms nothing else', async (t) => {
  const broken: Feature = {
    name: 'broken',
    register(scope) {
      scope.onConnect(() => {
        throw new Error('hook bug');
      });
    },
  };
  const server = await startServer(t, { features: [broken] });
  const notices = record(t, server.view, 'notice');
  const c = await RawClient.handshaken(server.socketPath);
  c.send({ type: 'ping', id: 1 });
  t.like(await c.next(), { type: 'pong', id: 1 });
  t.like(notices.find((n) => n.code === 'feature_failed'), { feature: 'broken', hook: 'onConnect' });
  c.end();
});

test('undeclared reply types and error codes are counted under one fixed label; declared ones as themselves', async (t) => {
  const loose: Feature = {
    name: 'loose',
    errorCodes: ['loose.nope'],
    sends: ['loose.ok'],
    register(scope) {
      scope.handle('loose.ok', { handle: () => ({ type: 'loose.ok' }) });
      scope.handle('loose.any', { handle: (msg) => ({ type: `made.up.${String(msg.n)}` }) });
      scope.handle('loose.fail', { handle: (msg) => ({ type: 'error', code: msg.declared ? 'loose.nope' : `client.chosen.${String(msg.n)}`, message: 'no' }) });
    },
  };
  const { app, socketPath } = await startApp(t, [loose]);
  const c = await RawClient.handshaken(socketPath);
  for (const m of [{ type: 'loose.ok' }, { type: 'loose.any', n: 1 }, { type: 'loose.any', n: 2 }, { type: 'loose.fail', declared: true }, { type: 'loose.fail', n: 3 }]) {
    c.send(m);
    await c.next();
  }
  const body = (await app.observability.metrics.render(false)).body;
  const sample = (series: string) => body.match(new RegExp(`^${series.replace(/[{}".]/g, '\\$&')} (\\d+)$`, 'm'))?.[1];
  t.is(sample('fugue_messages_sent_total{type="loose.ok"}'), '1');
  t.is(sample('fugue_messages_sent_total{type="undeclared"}'), '2');
  t.is(sample('fugue_protocol_errors_total{code="loose.nope"}'), '1');
  t.is(sample('fugue_protocol_errors_total{code="undeclared"}'), '1');
  t.false(/made\.up|client\.chosen/.test(body), 'no undeclared name became a label value');
  c.end();
});

test('a stream serialises a message once for all its subscribers, and each keeps its own order', async (t) => {
  let stream: Stream | undefined;
  const fan: Feature = {
    name: 'fan',
    sends: ['fan.joined', 'fan.item', 'fan.published'],
    streams: ['fan'],
    register(scope) {
      stream = scope.stream('fan');
      scope.handle('fan.join', { handle: (_m, ctx) => ({ type: 'fan.joined', ok: stream!.subscribe(ctx.client) }) });
      scope.handle('fan.publish', {
        handle: (msg) => {
          let serialised = 0;
          // toJSON runs once per serialisation of the message.
          const data = { toJSON: () => (serialised++, msg.n) };
          const r = stream!.publish({ type: 'fan.item', data });
          return { type: 'fan.published', sent: r.sent, serialised };
        },
      });
    },
  };
  const server = await startServer(t, { features: [fan] });
  const subs = await Promise.all(Array.from({ length: 20 }, (_, i) => RawClient.handshaken(server.socketPath, `s${i}`)));
  for (const s of subs) {
    s.send({ type: 'fan.join', id: 'j' });
    t.like(await s.next(), { type: 'fan.joined', ok: true });
  }
  // One subscriber pipelines a ping behind its own publish: its reply order holds around the pushes.
  const first = subs[0]!;
  first.write(Buffer.concat([encodeFrame({ type: 'fan.publish', id: 1, n: 7 }), encodeFrame({ type: 'ping', id: 2 })]));
  const got = [await first.next(), await first.next(), await first.next()];
  t.deepEqual(got.map((m) => m.type), ['fan.item', 'fan.published', 'pong'], 'the push made during its handler, its reply, then the next reply');
  t.like(got[1], { sent: 20, serialised: 1 });
  for (const s of subs.slice(1)) t.deepEqual(await s.next(), { type: 'fan.item', data: 7 });
  for (const s of subs) s.end();
});

/** A stream of `n` pushes to every subscriber; a paused subscriber's policy is `drop`. */
function droppingFeature(): Feature & { stream(): Stream } {
  let stream: Stream | undefined;
  return {
    name: 'drops',
    sends: ['drops.joined', 'drops.item', 'drops.missed', 'drops.done'],
    streams: ['drops'],
    stream: () => stream!,
    register(scope) {
      stream = scope.stream('drops', { onSlow: 'drop', maxBufferedBytes: 64 * 1024 });
      scope.handle('drops.join', { handle: (_m, ctx) => ({ type: 'drops.joined', ok: stream!.subscribe(ctx.client) }) });
      scope.handle('drops.burst', {
        handle: (msg) => {
          let dropped = 0;
          for (let i = 0; i < (msg.n as number); i++) dropped += stream!.publish({ type: 'drops.item', i, pad: 'p'.repeat(1000) }).dropped;
          return { type: 'drops.done', dropped };
        },
      });
    },
  };
}

test('drop policy: a subscriber that stops reading misses messages, alone and counted, and is told how many once it reads again', async (t) => {
  const feature = droppingFeature();
  const { app, socketPath } = await startApp(t, [feature]);
  const stuck = await RawClient.handshaken(socketPath, 'stuck');
  const live = await RawClient.handshaken(socketPath, 'live');
  for (const c of [stuck, live]) {
    c.send({ type: 'drops.join' });
    t.like(await c.next(), { type: 'drops.joined', ok: true });
  }
  stuck.socket.pause();
  const pub = await RawClient.handshaken(socketPath, 'pub');
  let dropped = 0;
  let live_received = 0;
  // Bursts until the stuck one is over the stream's bound; the live one reads everything meanwhile.
  for (let round = 0; round < 200 && dropped === 0; round++) {
    pub.send({ type: 'drops.burst', n: 50 });
    dropped += (await pub.next()).dropped as number;
    for (let i = 0; i < 50; i++) {
      t.is((await live.next()).type, 'drops.item');
      live_received++;
    }
  }
  t.true(dropped > 0, 'the stuck subscriber was skipped');
  t.is(app.server.clientCount(), 3, 'nobody was disconnected');
  // It reads again: everything queued before the pause, then how many it missed, then the stream again.
  stuck.socket.resume();
  const seen: Array<Record<string, unknown>> = [];
  for (;;) {
    const m = await stuck.next();
    seen.push(m);
    if (m.type === 'drops.missed') break;
  }
  const missed = seen.at(-1)!.missed as number;
  t.true(missed > 0);
  const items = seen.filter((m) => m.type === 'drops.item');
  t.is(items.length + missed, live_received, 'what it got plus what it missed is what the live subscriber got');
  t.deepEqual(items.map((m) => m.i), items.map((_, k) => k % 50), 'no reordering');
  pub.send({ type: 'drops.burst', n: 1 });
  t.like(await pub.next(), { dropped: 0 });
  t.like(await stuck.next(), { type: 'drops.item', i: 0 }, 'it gets the stream again');
  const body = (await app.observability.metrics.render(false)).body;
  t.regex(body, /^fugue_stream_pauses_total\{stream="drops"\} 1$/m);
  t.regex(body, new RegExp(`^fugue_stream_dropped_total\\{stream="drops"\\} ${missed}$`, 'm'));
  for (const c of [stuck, live, pub]) c.end();
});

test('a stream name must be declared, and a subscriber leaves its streams when it disconnects', async (t) => {
  const undeclared: Feature = { name: 'u', register: (scope) => void scope.stream('nope') };
  t.throws(() => new FugueServer({ socketPath: '/tmp/unused.sock', version: '0', features: [undeclared] }), { message: /stream "nope" is not declared/ });
  const feature = droppingFeature();
  const server = await startServer(t, { features: [feature] });
  const c = await RawClient.handshaken(server.socketPath);
  c.send({ type: 'drops.join' });
  await c.next();
  t.is(feature.stream().size, 1);
  c.destroy();
  await waitFor(() => feature.stream().size === 0, { what: 'unsubscribed at disconnect' });
  const raw = await RawClient.connect(server.socketPath);
  await waitFor(() => server.clientCount() === 1, { what: 'a client that is not handshaken' });
  const handle = server.view.client(server.view.clients()[0]!.id) as ClientHandle;
  t.false(feature.stream().subscribe(handle), 'only handshaken clients subscribe');
  raw.destroy();
});
