// A feature built from outside src/server on the public API alone: topics
// that clients subscribe to, and publishes pushed to every subscriber. It
// checks what the extension API promises (docs/architecture.md, "Adding a
// feature"): handlers push unsolicited messages to their own and other
// clients, in order with replies, under the slow-consumer limit, instrumented
// like replies; per-connection state is dropped when a connection closes.
import test from 'ava';
import { InMemorySpanExporter, SimpleSpanProcessor, BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { join } from 'node:path';
import { App, FugueServer, connectionState, type ClientHandle, type ClientMessage, type Feature } from '../../src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSink } from '../helpers/log-sink.js';
import { RawClient } from '../helpers/raw-client.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/** topic.subscribe {topic} -> topic.subscribed; topic.publish {topic, data} -> topic.published {delivered}; subscribers get topic.message. */
function topicFeature(): Feature & { subscribers(topic: string): number } {
  // The topics of the server this feature was last registered with (its state lives in its scope).
  let current = new Map<string, Set<ClientHandle>>();
  const topicOf = (msg: ClientMessage): string | undefined => (typeof msg.topic === 'string' && msg.topic !== '' ? undefined : 'field "topic" must be a non-empty string');
  return {
    name: 'topic',
    sends: ['topic.subscribed', 'topic.published', 'topic.message'],
    subscribers: (topic) => current.get(topic)?.size ?? 0,
    register(scope) {
      const topics = new Map<string, Set<ClientHandle>>();
      current = topics;
      // Per connection: the topics it subscribed to; on close, it leaves them.
      const subscriptions = connectionState(
        () => new Set<string>(),
        (mine, client) => {
          for (const topic of mine) topics.get(topic)?.delete(client);
        },
      );
      scope.handle('topic.subscribe', {
        validate: topicOf,
        handle(msg, ctx) {
          const topic = msg.topic as string;
          ctx.client.state(subscriptions).add(topic);
          let set = topics.get(topic);
          if (set === undefined) topics.set(topic, (set = new Set()));
          set.add(ctx.client);
          return { type: 'topic.subscribed', topic };
        },
      });
      scope.handle('topic.publish', {
        validate: topicOf,
        handle(msg, ctx) {
          let delivered = 0;
          for (const client of topics.get(msg.topic as string) ?? []) {
            if (client.send({ type: 'topic.message', topic: msg.topic, from: ctx.client.id, data: msg.data })) delivered++;
          }
          return { type: 'topic.published', delivered };
        },
      });
    },
  };
}

async function startWith(t: Parameters<typeof tmpDir>[0], feature: Feature, env: Record<string, string> = {}) {
  const socketPath = join(tmpDir(t), 'f.sock');
  const fullEnv = { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_HTTP_PORT: '0', FUGUE_LOG_LEVEL: 'debug', ...env };
  const { config } = loadConfig({ env: fullEnv });
  const logs = new LogSink();
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const app = new App({ config, version: '0.0.0-test', env: fullEnv, logDestination: logs, defaultMetrics: false, tracer: provider.getTracer('test'), features: [feature] });
  await app.start();
  t.teardown(() => app.destroy());
  return { app, socketPath, logs, exporter, baseUrl: `http://127.0.0.1:${app.httpAddress!.port}` };
}

test('a feature registered from outside src/server: subscribers get pushes, the publisher its reply, in order', async (t) => {
  const feature = topicFeature();
  const { socketPath } = await startWith(t, feature);
  const a = await RawClient.handshaken(socketPath, 'a');
  const b = await RawClient.handshaken(socketPath, 'b');
  for (const c of [a, b]) {
    c.send({ type: 'topic.subscribe', id: 1, topic: 'news' });
    t.like(await c.next(), { type: 'topic.subscribed', id: 1, topic: 'news' });
  }
  // a publishes to a topic it is subscribed to itself: its own push comes before its reply (sent during the handler).
  a.send({ type: 'topic.publish', id: 2, topic: 'news', data: { n: 1 } });
  t.like(await a.next(), { type: 'topic.message', topic: 'news', data: { n: 1 } });
  const reply = await a.next();
  t.like(reply, { type: 'topic.published', id: 2, delivered: 2 });
  const pushed = await b.next();
  t.deepEqual(Object.keys(pushed).sort(), ['data', 'from', 'topic', 'type'], 'unsolicited messages carry no id');
  t.like(pushed, { type: 'topic.message', topic: 'news', data: { n: 1 } });
  t.is(typeof pushed.from, 'number');
  // Replies on b stay in request order around pushes.
  b.send({ type: 'ping', id: 'p' });
  t.like(await b.next(), { type: 'pong', id: 'p' });
  // A bad field is bad_message, as for core types.
  b.send({ type: 'topic.publish', id: 3 });
  t.like(await b.next(), { type: 'error', id: 3, code: 'bad_message' });
  a.end();
  b.end();
});

test('per-connection state is dropped when a connection closes: its subscriptions go with it', async (t) => {
  const feature = topicFeature();
  const { socketPath } = await startWith(t, feature);
  const a = await RawClient.handshaken(socketPath, 'a');
  const b = await RawClient.handshaken(socketPath, 'b');
  for (const c of [a, b]) {
    c.send({ type: 'topic.subscribe', topic: 'x' });
    await c.next();
  }
  t.is(feature.subscribers('x'), 2);
  b.destroy();
  await waitFor(() => feature.subscribers('x') === 1, { what: 'b unsubscribed by its close' });
  a.send({ type: 'topic.publish', id: 9, topic: 'x', data: 1 });
  await a.next(); // its own push
  t.like(await a.next(), { type: 'topic.published', id: 9, delivered: 1 });
  a.end();
});

test('pushes are instrumented like replies: counted by type, a span per push, a debug line', async (t) => {
  const feature = topicFeature();
  const { socketPath, logs, exporter, baseUrl } = await startWith(t, feature, { FUGUE_TRACING_SAMPLE_RATIO: '1' });
  const a = await RawClient.handshaken(socketPath, 'a');
  const b = await RawClient.handshaken(socketPath, 'b');
  b.send({ type: 'topic.subscribe', topic: 'y' });
  await b.next();
  a.send({ type: 'topic.publish', topic: 'y', data: 'hi' });
  await a.next();
  await b.next();
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  t.regex(metrics, /^fugue_messages_sent_total\{type="topic\.message"\} 1$/m);
  t.regex(metrics, /^fugue_messages_received_total\{type="topic\.publish"\} 1$/m);
  const line = await logs.waitFor((l) => l.msg === 'message pushed to client', 'a debug line for the push');
  t.like(line, { type: 'topic.message' });
  const span = await waitFor(() => exporter.getFinishedSpans().find((s) => s.name === 'push topic.message'), { what: 'the push span' });
  t.is(span.attributes['fugue.message.type'], 'topic.message');
  t.is(typeof span.attributes['fugue.source.client.id'], 'number', 'the client whose handler pushed');
  a.end();
  b.end();
});

test('pushes are bounded by the slow-consumer limit: a subscriber that never reads is disconnected, the others are not', async (t) => {
  const feature = topicFeature();
  const { socketPath, app } = await startWith(t, feature, { FUGUE_MAX_FRAME_BYTES: '1024', FUGUE_MAX_BUFFERED_BYTES: '65536' });
  const stuck = await RawClient.handshaken(socketPath, 'stuck');
  stuck.send({ type: 'topic.subscribe', topic: 'z' });
  await stuck.next();
  stuck.socket.pause(); // never reads again
  const pub = await RawClient.handshaken(socketPath, 'pub');
  let delivered = 1;
  const data = 'x'.repeat(900);
  for (let i = 0; i < 10_000 && delivered > 0; i++) {
    pub.send({ type: 'topic.publish', id: i, topic: 'z', data });
    delivered = (await pub.next()).delivered as number;
  }
  t.is(delivered, 0, 'the stuck subscriber was cut off');
  await waitFor(() => feature.subscribers('z') === 0, { what: 'its subscription dropped' });
  t.is(app.server.clientCount(), 1, 'the publisher is still connected');
  pub.send({ type: 'ping', id: 'ok' });
  t.like(await pub.next(), { type: 'pong', id: 'ok' });
  pub.end();
});

test('ServerView: a handler sees a snapshot of the clients and can reach another one by id; send() refuses clients that are not handshaken', async (t) => {
  const seen: unknown[] = [];
  const probe: Feature = {
    name: 'probe',
    register(scope) {
      scope.handle('probe', {
        handle(_msg, ctx) {
          seen.push(ctx.server.clients());
          const other = ctx.server.clients().find((c) => c.id !== ctx.client.id);
          const handle = other === undefined ? undefined : ctx.server.client(other.id);
          return { type: 'probe', other: other?.id ?? null, sent: handle?.send({ type: 'hello' }) ?? null };
        },
      });
    },
  };
  const socketPath = join(tmpDir(t), 'f.sock');
  const server = new FugueServer({ socketPath, version: '0', features: [probe] });
  await server.start();
  t.teardown(() => server.destroy());
  const a = await RawClient.handshaken(socketPath, 'a');
  const raw = await RawClient.connect(socketPath); // connected, not handshaken
  await waitFor(() => server.clientCount() === 2, { what: 'two clients' });
  a.send({ type: 'probe', id: 1 });
  t.like(await a.next(), { type: 'probe', id: 1, sent: false }, 'not handshaken: nothing sent');
  const snapshot = seen[0] as Array<Record<string, unknown>>;
  t.is(snapshot.length, 2);
  t.like(snapshot[0], { name: 'a', handshaken: true, messagesIn: 2 });
  t.like(snapshot[1], { name: undefined, handshaken: false, messagesIn: 0 });
  t.true(typeof snapshot[0]!.connectedAt === 'number' && (snapshot[0]!.connectedAt as number) <= Date.now());
  const b = await RawClient.handshaken(socketPath, 'b');
  raw.destroy();
  await waitFor(() => server.clientCount() === 2, { what: 'raw gone' });
  a.send({ type: 'probe', id: 3 });
  t.like(await a.next(), { type: 'probe', id: 3, sent: true });
  t.like(await b.next(), { type: 'hello' });
  a.end();
  b.end();
});

test('registering a type twice names the feature that owns it', (t) => {
  const err = t.throws(() => new FugueServer({ socketPath: '/tmp/unused.sock', version: '0', features: [{ name: 'clash', register: (scope) => scope.handle('echo', { handle: () => undefined }) }] }));
  t.regex(err!.message, /feature "clash": a handler for message type "echo" is already registered by feature "core"/);
});
