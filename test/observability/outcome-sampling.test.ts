// Outcome-aware sampling (tracing.sampler "outcome", the default): every
// message whose reply is an error, every slow one, and tracing.sampleRatio of
// the rest are traced; a client's traceparent decides for its own message;
// a message span links only to a connection span that is exported; exemplars
// point only at exported traces. docs/observability.md, "Sampling".
import test from 'ava';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { App, type Feature } from '../../src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSink } from '../helpers/log-sink.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { RawClient } from '../helpers/raw-client.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const SLOW_MS = 300;
// A handler slower than the threshold (the test's threshold is 200 ms, far above any ping even on a loaded machine).
const slowFeature: Feature = { name: 'slow', sends: ['slow'], register: (scope) => scope.handle('slow', { handle: async () => { await delay(SLOW_MS); return { type: 'slow' }; } }) };

async function start(t: Parameters<typeof tmpDir>[0], env: Record<string, string>) {
  const socketPath = join(tmpDir(t), 'f.sock');
  const fullEnv = { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_HTTP_PORT: '0', FUGUE_TRACING_SLOW_THRESHOLD_MS: '200', ...env };
  const { config } = loadConfig({ env: fullEnv });
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const app = new App({ config, version: '0', env: fullEnv, logDestination: new LogSink(), defaultMetrics: false, tracer: provider.getTracer('t'), features: [slowFeature] });
  await app.start();
  t.teardown(() => app.destroy());
  return { socketPath, exporter, baseUrl: `http://127.0.0.1:${app.httpAddress!.port}` };
}

const names = (spans: ReadableSpan[]) => spans.map((s) => s.name).filter((n) => n !== 'fugue.connection').sort();

test('outcome, ratio 0: errors and slow messages are traced, ordinary ones are not; their spans say why', async (t) => {
  const { socketPath, exporter } = await start(t, { FUGUE_TRACING_SAMPLE_RATIO: '0' });
  const c = await RawClient.handshaken(socketPath);
  for (const msg of [{ type: 'ping', id: 1 }, { type: 'echo', id: 2, data: 'x' }, { type: 'nope', id: 3 }, { type: 'echo', id: 4 }, { type: 'slow', id: 5 }, { type: 'ping', id: 6 }]) {
    c.send(msg);
    await c.next();
  }
  c.end();
  await c.closed;
  await waitFor(() => names(exporter.getFinishedSpans()).length >= 3, { what: 'three message spans' });
  const spans = exporter.getFinishedSpans();
  t.deepEqual(names(spans), ['echo', 'slow', 'unknown'], 'the unknown type and the bad echo (errors) and the slow one; no ping, no good echo, no connect');
  t.deepEqual(spans.filter((s) => s.name !== 'fugue.connection').map((s) => s.attributes['fugue.sampling.reason']).sort(), ['error', 'error', 'slow']);
  t.is(spans.filter((s) => s.name === 'fugue.connection').length, 0, 'the connection span was not sampled (ratio 0)...');
  t.true(spans.every((s) => s.links.length === 0), '...so no message span links to it');
});

test('outcome, ratio 1: everything is traced, and message spans link to their (exported) connection span', async (t) => {
  const { socketPath, exporter } = await start(t, { FUGUE_TRACING_SAMPLE_RATIO: '1' });
  const c = await RawClient.handshaken(socketPath);
  c.send({ type: 'ping', id: 1 });
  await c.next();
  c.end();
  await c.closed;
  const conn = await waitFor(() => exporter.getFinishedSpans().find((s) => s.name === 'fugue.connection'), { what: 'the connection span' });
  const ping = exporter.getFinishedSpans().find((s) => s.name === 'ping')!;
  t.is(ping.attributes['fugue.sampling.reason'], 'ratio');
  t.is(ping.links[0]?.context.spanId, conn.spanContext().spanId);
});

test('ratio mode, ratio 0: blind to the outcome, nothing is traced; a client traceparent still decides for its own message', async (t) => {
  const { socketPath, exporter } = await start(t, { FUGUE_TRACING_SAMPLE_RATIO: '0', FUGUE_TRACING_SAMPLER: 'ratio' });
  const c = await RawClient.handshaken(socketPath);
  c.send({ type: 'nope', id: 1 });
  await c.next();
  c.send({ type: 'slow', id: 2 });
  await c.next();
  c.send({ type: 'ping', id: 3, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  await c.next();
  c.end();
  await c.closed;
  const ping = await waitFor(() => exporter.getFinishedSpans().find((s) => s.name === 'ping'), { what: 'the ping span the client asked for' });
  t.is(ping.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  t.is(ping.attributes['fugue.sampling.reason'], 'parent');
  t.deepEqual(names(exporter.getFinishedSpans()), ['ping']);
});

test('outcome: a client traceparent that says "not sampled" is honoured, even for an error', async (t) => {
  const { socketPath, exporter } = await start(t, { FUGUE_TRACING_SAMPLE_RATIO: '0' });
  const c = await RawClient.handshaken(socketPath);
  c.send({ type: 'nope', id: 1, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
  await c.next();
  c.send({ type: 'nope', id: 2 });
  await c.next();
  c.end();
  await c.closed;
  await waitFor(() => names(exporter.getFinishedSpans()).length >= 1, { what: 'the second error traced' });
  const spans = exporter.getFinishedSpans().filter((s) => s.name === 'unknown');
  t.is(spans.length, 1);
  t.is(spans[0]!.attributes['fugue.message.id'], '2');
});

test('exemplars on fugue_message_duration_seconds point only at exported traces', async (t) => {
  const { socketPath, exporter, baseUrl } = await start(t, { FUGUE_TRACING_SAMPLE_RATIO: '0' });
  const c = await RawClient.handshaken(socketPath);
  for (let i = 0; i < 50; i++) {
    c.send({ type: i % 10 === 0 ? 'nope' : 'ping', id: i });
    await c.next();
  }
  c.end();
  await c.closed;
  await waitFor(() => exporter.getFinishedSpans().filter((s) => s.name === 'unknown').length === 5, { what: 'five error spans' });
  const exported = new Set(exporter.getFinishedSpans().map((s) => s.spanContext().traceId));
  const om = await (await fetch(`${baseUrl}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } })).text();
  const exemplarIds = [...om.matchAll(/^fugue_message_duration_seconds_bucket\{[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})"/gm)].map((m) => m[1]!);
  t.true(exemplarIds.length > 0, 'the error messages left exemplars');
  for (const id of exemplarIds) t.true(exported.has(id), `exemplar ${id} is an exported trace`);
  t.notRegex(om, /fugue_message_duration_seconds_bucket\{[^}]*type="ping"[^}]*\} \d+ # /, 'no exemplar on pings: none was traced');
});

test('end to end over OTLP: the real CLI at the default sampler with ratio 0 exports the error spans only', async (t) => {
  const r = await startOtlpReceiver();
  t.teardown(() => r.close());
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_ENDPOINT: r.url, FUGUE_TRACING_SAMPLE_RATIO: '0', FUGUE_TRACING_SLOW_THRESHOLD_MS: '10000' } });
  await s.ready();
  const c = await RawClient.handshaken(sock);
  for (let i = 0; i < 20; i++) {
    c.send(i % 5 === 0 ? { type: 'echo', id: i } : { type: 'ping', id: i });
    await c.next();
  }
  c.end();
  await c.closed;
  s.child.kill('SIGTERM'); // the span flush at exit
  t.is((await s.exited).code, 0);
  await waitFor(() => r.spans.length >= 4, { what: 'four spans over OTLP' });
  t.deepEqual(r.spans.map((x) => x.name), ['echo', 'echo', 'echo', 'echo']);
  t.true(r.spans.every((x) => x.status.code === 2 && x.attributes['fugue.sampling.reason'] === 'error'));
});
