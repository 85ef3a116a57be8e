// Spans through a real in-memory exporter (no SDK globals: a private provider is injected).
import test from 'ava';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { FugueClient } from '../../src/client/client.js';
import { startApp } from '../helpers/app.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait-for.js';

function tracerFixture() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, tracer: provider.getTracer('test') };
}
const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);

test('one connection span per connection, ended once, with client, transport and close attributes', async (t) => {
  const { exporter, tracer } = tracerFixture();
  const { socketPath } = await startApp(t, { tracer });
  const c = await FugueClient.connect(socketPath, { clientName: 'span-test' });
  await c.ping();
  await c.echo('abc');
  await c.detach();
  const conn = await waitFor(() => byName(exporter.getFinishedSpans(), 'fugue.connection')[0], { what: 'connection span' });
  t.is(byName(exporter.getFinishedSpans(), 'fugue.connection').length, 1);
  t.is(conn.kind, SpanKind.SERVER);
  t.like(conn.attributes, {
    'network.transport': 'unix',
    'server.address': socketPath,
    'fugue.client.id': c.connected!.client_id,
    'fugue.client.name': 'span-test',
    'fugue.close.reason': 'detach',
    'fugue.messages.received': 4,
    'fugue.messages.sent': 3,
  });
  t.true((conn.attributes['fugue.bytes.received'] as number) > 0);
  t.not(conn.status.code, SpanStatusCode.ERROR);
});

test('message spans: SERVER kind, named by type, own trace, linked to the connection span', async (t) => {
  const { exporter, tracer } = tracerFixture();
  const { socketPath } = await startApp(t, { tracer });
  const c = await FugueClient.connect(socketPath);
  await c.echo({ big: 'x'.repeat(100) });
  await c.detach();
  const conn = await waitFor(() => byName(exporter.getFinishedSpans(), 'fugue.connection')[0], { what: 'connection span' });
  const echo = byName(exporter.getFinishedSpans(), 'echo')[0]!;
  t.is(echo.kind, SpanKind.SERVER);
  t.is(echo.parentSpanContext, undefined, 'root of its own trace');
  t.not(echo.spanContext().traceId, conn.spanContext().traceId);
  t.is(echo.links.length, 1);
  t.is(echo.links[0]!.context.spanId, conn.spanContext().spanId);
  t.is(echo.links[0]!.context.traceId, conn.spanContext().traceId);
  t.like(echo.attributes, { 'rpc.system.name': 'fugue', 'rpc.method': 'echo', 'network.transport': 'unix', 'fugue.message.id': '2', 'fugue.message.outcome': 'ok' });
  t.true((echo.attributes['fugue.message.size'] as number) > 100);
  t.truthy(byName(exporter.getFinishedSpans(), 'connect')[0]);
});

test('a message with traceparent continues that trace as a child of the remote span, still linked', async (t) => {
  const { exporter, tracer } = tracerFixture();
  const { socketPath } = await startApp(t, { tracer });
  const c = await FugueClient.connect(socketPath);
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';
  await c.request({ type: 'ping', traceparent: `00-${traceId}-${spanId}-01`, tracestate: 'vendor=1' });
  await c.request({ type: 'status', traceparent: 'not-a-traceparent' });
  await c.detach();
  const ping = await waitFor(() => byName(exporter.getFinishedSpans(), 'ping')[0], { what: 'ping span' });
  t.is(ping.spanContext().traceId, traceId);
  t.is(ping.parentSpanContext?.spanId, spanId);
  t.is(ping.links.length, 1);
  const status = byName(exporter.getFinishedSpans(), 'status')[0]!;
  t.not(status.spanContext().traceId, traceId, 'an invalid traceparent is ignored');
  t.is(status.parentSpanContext, undefined);
});

test('protocol errors set status ERROR and error.type; unknown types are named "unknown"', async (t) => {
  const { exporter, tracer } = tracerFixture();
  const { socketPath } = await startApp(t, { tracer });
  const c = await RawClient.handshaken(socketPath);
  c.send({ type: 'client-chosen-type-123', id: 7 });
  await c.next();
  c.writeFrame('{bad json');
  await c.next();
  c.end();
  await c.closed;
  const unknown = await waitFor(() => byName(exporter.getFinishedSpans(), 'unknown')[0], { what: 'unknown span' });
  t.is(unknown.status.code, SpanStatusCode.ERROR);
  t.like(unknown.attributes, { 'error.type': 'unknown_type', 'fugue.message.outcome': 'error', 'fugue.message.id': '7' });
  const invalid = byName(exporter.getFinishedSpans(), 'invalid')[0]!;
  t.like(invalid.attributes, { 'error.type': 'bad_message' });
  t.false(exporter.getFinishedSpans().some((s) => s.name.includes('client-chosen')));
});

test('an abnormal close ends the connection span with status ERROR', async (t) => {
  const { exporter, tracer } = tracerFixture();
  const { socketPath } = await startApp(t, { tracer });
  const c = await RawClient.connect(socketPath);
  c.send({ type: 'connect', protocol_version: 99 });
  await c.untilClosed();
  const conn = await waitFor(() => byName(exporter.getFinishedSpans(), 'fugue.connection')[0], { what: 'connection span' });
  t.is(conn.status.code, SpanStatusCode.ERROR);
  t.is(conn.attributes['fugue.close.reason'], 'protocol_error');
});

test('tracing.messageParent=connection makes message spans children of the connection span', async (t) => {
  const { exporter, tracer } = tracerFixture();
  const { socketPath } = await startApp(t, { tracer, env: { FUGUE_TRACING_MESSAGE_PARENT: 'connection' } });
  const c = await FugueClient.connect(socketPath);
  await c.ping();
  await c.detach();
  const conn = await waitFor(() => byName(exporter.getFinishedSpans(), 'fugue.connection')[0], { what: 'connection span' });
  const ping = byName(exporter.getFinishedSpans(), 'ping')[0]!;
  t.is(ping.parentSpanContext?.spanId, conn.spanContext().spanId);
  t.is(ping.spanContext().traceId, conn.spanContext().traceId);
  t.is(ping.links.length, 0);
});
