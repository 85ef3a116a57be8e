// Metrics from the instance's own registry, after real traffic.
import test from 'ava';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { FugueClient } from '../../src/client/client.js';
import { encodeFrame } from '../../src/protocol/index.js';
import { ServerMetrics } from '../../src/observability/metrics.js';
import { startApp } from '../helpers/app.js';
import { featureOf } from '../helpers/feature.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait-for.js';

/** The value of one sample line in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1).split(' ')[0]);
}

test('counts clients, messages by type, protocol errors, closes and bytes', async (t) => {
  const { app, socketPath } = await startApp(t);
  const m = app.observability.metrics;
  const a = await FugueClient.connect(socketPath);
  const b = await RawClient.handshaken(socketPath);
  await a.ping();
  await a.echo('x');
  b.send({ type: 'ping' });
  await b.next();
  let text = (await m.render(false)).body;
  t.is(sample(text, 'fugue_active_clients'), 2);
  t.is(sample(text, 'fugue_connections_accepted_total'), 2);
  t.is(sample(text, 'fugue_messages_received_total{type="ping"}'), 2);
  t.is(sample(text, 'fugue_messages_received_total{type="connect"}'), 2);
  t.is(sample(text, 'fugue_messages_sent_total{type="pong"}'), 2);
  b.send({ type: 'x'.repeat(50) });
  await b.next();
  b.writeFrame('nope');
  await b.next();
  await a.detach();
  b.end();
  await b.closed;
  await waitFor(async () => sample((await m.render(false)).body, 'fugue_active_clients') === 0, { what: 'no active clients' });
  text = (await m.render(false)).body;
  t.is(sample(text, 'fugue_messages_received_total{type="unknown"}'), 1);
  t.is(sample(text, 'fugue_messages_received_total{type="invalid"}'), 1);
  t.is(sample(text, 'fugue_protocol_errors_total{code="unknown_type"}'), 1);
  t.is(sample(text, 'fugue_protocol_errors_total{code="bad_message"}'), 1);
  t.is(sample(text, 'fugue_connections_closed_total{reason="detach"}'), 1);
  t.is(sample(text, 'fugue_connections_closed_total{reason="client_eof"}'), 1);
  t.is(sample(text, 'fugue_connection_duration_seconds_count'), 2);
  t.true(sample(text, 'fugue_received_bytes_total')! > 0);
  t.true(sample(text, 'fugue_sent_bytes_total')! > 0);
  t.false(text.includes('xxxxx'), 'a client-chosen string never becomes a label value');
  t.regex(text, /fugue_build_info\{version="0\.0\.0-test",node_version="v\d+/);
  t.is(sample(text, 'fugue_max_clients'), 1024);
  t.is(sample(text, 'fugue_draining'), 0);
  t.is(sample(text, 'fugue_socket_listening'), 1);
  t.is(sample(text, 'fugue_connections_rejected_total{reason="server_busy"}'), 0);
});

test('rejections are counted by reason', async (t) => {
  const { app, socketPath } = await startApp(t, { env: { FUGUE_MAX_CLIENTS: '1' } });
  const a = await RawClient.handshaken(socketPath);
  const b = await RawClient.connect(socketPath);
  await b.untilClosed();
  t.is(sample((await app.observability.metrics.render(false)).body, 'fugue_connections_rejected_total{reason="server_busy"}'), 1);
  a.destroy();
});

test('Prometheus text keeps _total on counters even after an OpenMetrics scrape', async (t) => {
  const { app } = await startApp(t);
  const m = app.observability.metrics;
  const om = await m.render(true);
  t.regex(om.contentType, /application\/openmetrics-text/);
  t.regex(om.body, /# TYPE fugue_accept_errors counter/);
  t.true(om.body.trimEnd().endsWith('# EOF'));
  const text = await m.render(false);
  t.regex(text.contentType, /text\/plain; version=0\.0\.4/);
  t.regex(text.body, /# TYPE fugue_accept_errors_total counter/);
  t.regex(text.body, /# TYPE fugue_messages_received_total counter/);
});

test('OpenMetrics scrapes carry exemplars with the trace id of sampled message spans', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('t');
  const { app, socketPath } = await startApp(t, { tracer });
  const c = await FugueClient.connect(socketPath);
  await c.ping();
  await c.detach();
  const span = exporter.getFinishedSpans().find((s) => s.name === 'ping')!;
  const om = (await app.observability.metrics.render(true)).body;
  const line = om.split('\n').find((l) => l.startsWith('fugue_message_duration_seconds_bucket{') && l.includes('type="ping"') && l.includes(' # {'));
  t.truthy(line, 'a ping bucket line with an exemplar');
  t.true(line!.includes(`trace_id="${span.spanContext().traceId}"`));
  t.false((await app.observability.metrics.render(false)).body.includes('trace_id'), 'no exemplars in Prometheus text');
});

test('a message lasts from the read that delivered it to the write of its reply, also behind an async handler', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('t');
  const slowFeature = featureOf('slow', { slow: { handle: () => new Promise((resolve) => setTimeout(() => resolve({ type: 'slow' }), 60)) } }, { sends: ['slow'] });
  const { app, socketPath } = await startApp(t, { tracer, features: [slowFeature] });
  const c = await RawClient.handshaken(socketPath);
  // One write, one read on the server: the two pings queue behind the slow one.
  c.write(Buffer.concat([{ type: 'slow', id: 1 }, { type: 'ping', id: 2 }, { type: 'ping', id: 3 }].map((m) => encodeFrame(m))));
  t.deepEqual([(await c.next()).id, (await c.next()).id, (await c.next()).id], [1, 2, 3]);
  const text = (await app.observability.metrics.render(false)).body;
  t.is(sample(text, 'fugue_message_duration_seconds_count{type="slow"}'), 1);
  t.true(sample(text, 'fugue_message_duration_seconds_sum{type="slow"}')! >= 0.05, 'the slow message includes its handler');
  t.is(sample(text, 'fugue_message_duration_seconds_count{type="ping"}'), 2);
  t.is(sample(text, 'fugue_messages_received_total{type="ping"}'), 2);
  const slow = exporter.getFinishedSpans().find((s) => s.name === 'slow')!;
  const ms = (s: typeof slow) => (s.endTime[0] - s.startTime[0]) * 1000 + (s.endTime[1] - s.startTime[1]) / 1e6;
  t.true(ms(slow) >= 50, `slow span lasted ${ms(slow)} ms`);
  t.is(exporter.getFinishedSpans().filter((s) => s.name === 'ping').length, 2, 'both ping spans ended');
  c.destroy();
});

test('a graceful drain records when it began in fugue_drain_start_time_seconds (FugueDrainStuck measures from it)', async (t) => {
  const { app, socketPath } = await startApp(t);
  const m = app.observability.metrics;
  t.is(sample((await m.render(false)).body, 'fugue_drain_start_time_seconds'), 0);
  const c = await RawClient.handshaken(socketPath);
  const before = Date.now() / 1000;
  const closing = app.close('test drain');
  await waitFor(async () => sample((await m.render(false)).body, 'fugue_draining') === 1, { what: 'fugue_draining 1' });
  const started = sample((await m.render(false)).body, 'fugue_drain_start_time_seconds')!;
  t.true(started >= before - 0.001 && started <= Date.now() / 1000, `drain start ${started} within the test's clock (${before})`);
  c.destroy();
  await closing;
  const text = (await m.render(false)).body;
  t.is(sample(text, 'fugue_draining'), 0);
  t.is(sample(text, 'fugue_drain_start_time_seconds'), started, 'the start time stays after the drain');
});

test('two metric instances in one process do not collide', (t) => {
  const a = new ServerMetrics({ version: '1', maxClients: 1, shutdownTimeoutMs: 1 });
  const b = new ServerMetrics({ version: '2', maxClients: 2, shutdownTimeoutMs: 1 });
  a.accepted.n++;
  t.not(a.registry, b.registry);
  return Promise.all([a.render(false), b.render(false)]).then(([ra, rb]) => {
    t.is(sample(ra.body, 'fugue_connections_accepted_total'), 1);
    t.is(sample(rb.body, 'fugue_connections_accepted_total'), 0);
  });
});

// process_open_fds is Linux-only (prom-client registers it only there).
(process.platform === 'linux' ? test : test.skip)('process_open_fds counts this process\'s open fds, as a listing of /proc/self/fd does', async (t) => {
  const { openSync, closeSync, readdirSync } = await import('node:fs');
  const m = new ServerMetrics({ version: '1', maxClients: 1, shutdownTimeoutMs: 1 });
  const opened = Array.from({ length: 50 }, () => openSync('/dev/null', 'r'));
  try {
    const listed = readdirSync('/proc/self/fd').length - 1;
    const text = (await m.render(false)).body;
    t.is(sample(text, 'process_open_fds'), listed, 'the scraped count equals the listing (stat size on Linux 6.2+, the listing before)');
    t.true(listed >= 50);
    t.is(text.match(/^# TYPE process_open_fds /gm)?.length, 1, 'one family: prom-client\'s own collector was replaced, not doubled');
  } finally {
    for (const fd of opened) closeSync(fd);
  }
});
