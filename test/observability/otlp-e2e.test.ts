// End to end: the real fugue-server process exports spans over OTLP/HTTP to a
// receiver running inside the test; the decoded spans are checked.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { freePort } from '../helpers/free-port.js';
import { join } from 'node:path';
import { SPAN_FLUSH_MAX_MS } from '../../src/app.js';
import { FugueClient } from '../../src/client/client.js';
import type { LogLine } from '../helpers/log-sink.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { httpPortOf, spawnServer, type Spawned } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const SERVER = 2; // OTLP SpanKind SPAN_KIND_SERVER

/**
 * Longest exit after SIGTERM with an unreachable collector: the span flush is
 * capped at SPAN_FLUSH_MAX_MS (5 s; the exporter retries until then), plus the
 * drain and the exit. Without the cap the exporter's own timeout
 * (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default) and its retries hold the exit;
 * 3 s over the cap leaves a loaded machine room and still tells the two apart.
 */
const EXIT_BOUND_MS = SPAN_FLUSH_MAX_MS + 3000;

async function receiver(t: ExecutionContext): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  t.teardown(() => r.close());
  return r;
}

/** Env for spawnServer: info logs, a private socket, plus `extra`. */
function serverEnv(t: ExecutionContext, extra: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; socketPath: string } {
  const socketPath = join(tmpDir(t), 'f.sock');
  return { socketPath, env: { FUGUE_LOG_LEVEL: 'info', FUGUE_SOCKET_PATH: socketPath, ...extra } };
}

/** SIGTERM, then wait (bounded) for the exit; returns the exit and how long it took. */
async function stop(s: Spawned, timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`server did not exit within ${timeoutMs} ms of SIGTERM; stderr: ${s.stderr}`)), timeoutMs);
  });
  try {
    const exit = await Promise.race([s.exited, deadline]);
    return { ...exit, ms: Date.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

interface Traffic {
  clientId: number;
  /** traceparent ids sent with `status` (sampled flag set). */
  traceId: string;
  parentSpanId: string;
}

/** connect 'e2e', ping, echo, status with a sampled traceparent, detach. */
async function traffic(socketPath: string, extra?: (c: FugueClient) => Promise<void>): Promise<Traffic> {
  const c = await FugueClient.connect(socketPath, { clientName: 'e2e' });
  const traceId = hex(16);
  const parentSpanId = hex(8);
  await c.ping();
  await c.echo({ hello: 'otlp' });
  const status = await c.request({ type: 'status', traceparent: `00-${traceId}-${parentSpanId}-01` });
  if (status.type === 'error') throw new Error(`status failed: ${JSON.stringify(status)}`);
  await extra?.(c);
  await c.detach();
  return { clientId: c.connected!.client_id, traceId, parentSpanId };
}

const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);
const otelProblems = (logs: LogLine[]) =>
  logs.filter((l) => (l.level === 'warn' || l.level === 'error' || l.level === 'fatal') && /opentelemetry|otel|otlp|span|export|trac/i.test(JSON.stringify(l)));

async function fullPipeline(t: ExecutionContext, protocol: 'http/json' | 'http/protobuf'): Promise<void> {
  const r = await receiver(t);
  const { env, socketPath } = serverEnv(t, {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: r.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_SERVICE_NAME: 'fugue-e2e',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
  });
  const s = spawnServer(t, { env });
  await s.ready();
  const tr = await traffic(socketPath);
  const exit = await stop(s);
  t.is(exit.code, 0, `exit ${exit.code ?? exit.signal}; stderr: ${s.stderr}`);
  t.is(s.stderr, '');
  t.deepEqual(otelProblems(s.logs), []);

  // Graceful shutdown flushed everything before the process exited.
  await waitFor(() => named(r.spans, 'fugue.connection').length > 0 && named(r.spans, 'status').length > 0, { what: 'exported spans', timeoutMs: 2000 });
  const contentType = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
  t.true(r.requests.length > 0);
  t.true(r.requests.every((q) => q.path === '/v1/traces' && q.contentType === contentType && q.status === 200), JSON.stringify(r.requests));
  t.true(r.spans.every((sp) => sp.encoding === (protocol === 'http/json' ? 'json' : 'protobuf')));

  const conns = named(r.spans, 'fugue.connection').filter((sp) => sp.attributes['fugue.client.id'] === tr.clientId);
  t.is(conns.length, 1, 'exactly one connection span for the client');
  const conn = conns[0]!;
  t.is(conn.kind, SERVER);
  t.like(conn.attributes, {
    'network.transport': 'unix',
    'server.address': socketPath,
    'fugue.client.id': tr.clientId,
    'fugue.client.name': 'e2e',
    'fugue.close.reason': 'detach',
  });
  // Received: connect, ping, echo, status, detach; sent: connected, pong, echo, status.
  t.like(conn.attributes, { 'fugue.messages.received': 5, 'fugue.messages.sent': 4 });
  for (const k of ['fugue.bytes.received', 'fugue.bytes.sent']) {
    t.is(typeof conn.attributes[k], 'number', k);
    t.true((conn.attributes[k] as number) > 0, k);
  }
  t.not(conn.status.code, 2, 'a detach is not an error');

  const msg: Record<string, ReceivedSpan> = {};
  for (const name of ['connect', 'ping', 'echo', 'status', 'detach']) {
    const found = named(r.spans, name);
    t.is(found.length, 1, `one ${name} span`);
    const sp = found[0]!;
    msg[name] = sp;
    t.is(sp.kind, SERVER, `${name} kind`);
    t.like(sp.attributes, { 'rpc.system.name': 'fugue', 'rpc.method': name, 'fugue.message.outcome': 'ok', 'fugue.client.id': tr.clientId });
    t.is(typeof sp.attributes['fugue.message.size'], 'number');
    t.true(sp.links.some((l) => l.spanId === conn.spanId && l.traceId === conn.traceId), `${name} links to the connection span`);
    t.is(sp.resource['service.name'], 'fugue-e2e');
  }
  t.is(msg.connect!.attributes['fugue.message.id'], '1');
  t.is(msg.ping!.attributes['fugue.message.id'], '2');
  t.false('fugue.message.id' in msg.detach!.attributes, 'detach is sent without an id');
  for (const name of ['connect', 'ping', 'echo', 'detach']) {
    t.is(msg[name]!.parentSpanId, undefined, `${name} is a root span`);
    t.not(msg[name]!.traceId, conn.traceId, `${name} has its own trace`);
  }
  t.not(msg.ping!.traceId, msg.echo!.traceId);
  t.is(msg.status!.traceId, tr.traceId, 'status continues the traceparent trace');
  t.is(msg.status!.parentSpanId, tr.parentSpanId);

  for (const sp of r.spans) {
    t.like(sp.resource, { 'service.name': 'fugue-e2e', 'deployment.environment': 'test' }, `resource of ${sp.name}`);
    t.is(sp.scope.name, 'fugue-server');
  }
  t.is(typeof conn.resource['service.version'], 'string');
}

test.serial('OTEL_* env: OTLP/JSON export of connection and message spans, flushed on SIGTERM', async (t) => {
  await fullPipeline(t, 'http/json');
});

test.serial('OTEL_* env: the same spans over OTLP/protobuf', async (t) => {
  await fullPipeline(t, 'http/protobuf');
});

test.serial('tracing.* config keys (winning over OTEL_*): sampleRatio 0 drops root spans but honours a sampled traceparent', async (t) => {
  const r = await receiver(t);
  const { env, socketPath } = serverEnv(t, {
    FUGUE_TRACING_EXPORTER: 'otlp',
    FUGUE_TRACING_ENDPOINT: r.url,
    FUGUE_TRACING_PROTOCOL: 'http/json',
    FUGUE_TRACING_SAMPLE_RATIO: '0',
    FUGUE_TRACING_SERVICE_NAME: 'from-config',
    // tracing.* keys win over the standard variables.
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_SERVICE_NAME: 'from-env',
    OTEL_TRACES_SAMPLER: 'always_on',
  });
  const s = spawnServer(t, { env });
  await s.ready();
  const unsampledTrace = hex(16);
  const tr = await traffic(socketPath, async (c) => {
    // The parent's "not sampled" flag is honoured too.
    await c.request({ type: 'ping', traceparent: `00-${unsampledTrace}-${hex(8)}-00` });
  });
  const exit = await stop(s);
  t.is(exit.code, 0, `exit ${exit.code ?? exit.signal}; stderr: ${s.stderr}`);
  t.is(s.stderr, '');
  t.deepEqual(otelProblems(s.logs), []);

  const status = await waitFor(() => named(r.spans, 'status')[0], { what: 'status span', timeoutMs: 2000 });
  t.true(r.requests.every((q) => q.contentType === 'application/json' && q.status === 200));
  t.deepEqual(r.spans.map((sp) => sp.name), ['status'], 'only the span with a sampled remote parent is exported');
  t.is(status.traceId, tr.traceId);
  t.is(status.parentSpanId, tr.parentSpanId);
  t.is(status.kind, SERVER);
  // Its connection span was not sampled (ratio 0): no link to a span that is never exported.
  t.is(status.links.length, 0);
  t.false(r.spans.some((sp) => sp.traceId === unsampledTrace));
  t.is(status.resource['service.name'], 'from-config');
});

test.serial('default config exports nothing, even with OTEL_EXPORTER_OTLP_ENDPOINT set, and logs no OpenTelemetry noise', async (t) => {
  const r = await receiver(t);
  const { env, socketPath } = serverEnv(t, { OTEL_EXPORTER_OTLP_ENDPOINT: r.url });
  const s = spawnServer(t, { env });
  await s.ready();
  await traffic(socketPath);
  const exit = await stop(s);
  t.is(exit.code, 0, `exit ${exit.code ?? exit.signal}; stderr: ${s.stderr}`);
  // The process has exited: nothing can arrive any more.
  t.is(r.requests.length, 0);
  t.is(r.spans.length, 0);
  t.is(s.stderr, '');
  t.deepEqual(otelProblems(s.logs), []);
  t.deepEqual(s.logs.filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal'), []);
});

test.serial('an unreachable OTLP endpoint: exit 0 within a few seconds, one warn line about span export', async (t) => {
  const port = await freePort(); // nothing listens there

  const { env, socketPath } = serverEnv(t, {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  });
  const s = spawnServer(t, { env });
  await s.ready();
  await traffic(socketPath);
  const exit = await stop(s);
  t.is(exit.code, 0, `exit ${exit.code ?? exit.signal}; stderr: ${s.stderr}`);
  t.true(exit.ms < EXIT_BOUND_MS, `exited ${exit.ms} ms after SIGTERM`);
  t.is(s.stderr, '');
  const problems = otelProblems(s.logs);
  t.log(`exit after ${exit.ms} ms; otel warn lines: ${JSON.stringify(problems.map((l) => l.msg))}`);
  t.true(problems.length <= 1, JSON.stringify(problems));
  t.true(problems.every((l) => l.level === 'warn'));
});

test.serial('an unreachable OTLP endpoint with a short OTLP timeout: the export failure is logged once and counted', async (t) => {
  const port = await freePort(); // nothing listens there

  const { env, socketPath } = serverEnv(t, {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_TIMEOUT: '1500',
  });
  const s = spawnServer(t, { env });
  await s.ready();
  await traffic(socketPath);
  // The scheduled (1 s) batch fails after the exporter's retries give up (1.5 s).
  await s.waitLog((l) => l.msg.startsWith('span export failed'), 'span export failure log', 8000);
  const httpPort = httpPortOf(s);
  t.truthy(httpPort);
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const dropped = /^fugue_spans_dropped_total(?:\{[^}]*\})? (\d+)/m.exec(metrics);
  t.truthy(dropped, 'fugue_spans_dropped_total is exposed');
  t.true(Number(dropped?.[1]) >= 1, `dropped: ${dropped?.[1]}`);
  // A second batch fails during the shutdown flush: not logged again.
  await traffic(socketPath);
  const exit = await stop(s);
  t.is(exit.code, 0, `exit ${exit.code ?? exit.signal}; stderr: ${s.stderr}`);
  t.true(exit.ms < EXIT_BOUND_MS, `exited ${exit.ms} ms after SIGTERM`);
  t.is(s.stderr, '');
  const problems = otelProblems(s.logs);
  t.log(`exit after ${exit.ms} ms; otel warn lines: ${JSON.stringify(problems.map((l) => [l.msg, l.otel ?? (l.err as { message?: string } | undefined)?.message]))}`);
  t.is(problems.filter((l) => l.msg.startsWith('span export failed')).length, 1, 'logged once, not once per failed batch');
  // One failure, one line: not repeated through the SDK's error handler or the shutdown flush.
  t.is(problems.length, 1, JSON.stringify(problems.map((l) => l.msg)));
  t.true(problems.every((l) => l.level === 'warn'));
});
