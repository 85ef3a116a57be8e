// The lean span path (src/observability/lean-spans.ts): message spans encoded
// by fugue itself into OTLP/protobuf. What any collector reads must be what the
// SDK would have sent: same resource and scope as the SDK's own spans in the
// same request stream, exact timestamps; and a collector that stops answering
// costs dropped, counted spans, never unbounded memory.
import test from 'ava';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { splitMs, unixNanos } from '../../src/observability/lean-spans.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { RawClient } from '../helpers/raw-client.js';
import { scrapeSample } from '../helpers/scrape.js';
import { httpPortOf, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

test('timestamps: exact unix nanoseconds from performance time, as BigInt arithmetic gives them', (t) => {
  const origins = [1_764_547_200_123.456, 1_000.5, 4_102_444_800_000.999_9];
  const times = [0, 0.000_001, 1.5, 123_456.789_012, 86_400_000 * 30 + 0.25, 86_400_000 * 100];
  for (const o of origins) {
    const origin = splitMs(o);
    for (const ms of times) {
      const whole = Math.floor(o);
      const expected = BigInt(whole) * 1_000_000n + BigInt(Math.round((o - whole) * 1e6)) + BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.round((ms - Math.floor(ms)) * 1e6));
      const [lo, hi] = unixNanos(origin, ms);
      t.is((BigInt(hi) << 32n) + BigInt(lo), expected, `origin ${o}, +${ms} ms`);
      t.true(lo >= 0 && lo < 2 ** 32 && Number.isInteger(lo) && Number.isInteger(hi));
    }
  }
});

test('the real CLI over OTLP/protobuf: message spans (lean) carry the resource and scope of the SDK\'s connection spans, and times inside the connection\'s', async (t) => {
  const r = await startOtlpReceiver();
  t.teardown(() => r.close());
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_ENDPOINT: r.url, FUGUE_TRACING_SAMPLE_RATIO: '1', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test,team=core', OTEL_SERVICE_NAME: 'lean-check' } });
  await s.ready();
  const c = await RawClient.handshaken(sock);
  const ids = [0, 7, -7, 1234567890123, Number.MAX_SAFE_INTEGER];
  for (const [i, id] of ids.entries()) {
    c.send({ type: 'echo', id, data: 'x'.repeat(i) });
    await c.next();
  }
  c.send({ type: 'ping', id: 'x'.repeat(1000) }); // a long id: the attribute is cut at 256 characters
  await c.next();
  c.end();
  await c.closed;
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  const conn = await waitFor(() => r.spans.find((x) => x.name === 'fugue.connection'), { what: 'the connection span (SDK)' });
  await waitFor(() => r.spans.filter((x) => x.name === 'echo').length === 5, { what: 'five echo spans (lean)' });
  const messages = r.spans.filter((x) => x.name !== 'fugue.connection');
  for (const m of messages) {
    t.deepEqual(m.resource, conn.resource, `${m.name}: the same resource`);
    t.deepEqual(m.scope, conn.scope, `${m.name}: the same scope`);
    t.is(m.encoding, 'protobuf');
  }
  t.is(conn.resource['service.name'], 'lean-check');
  t.is(conn.resource['team'], 'core');
  t.deepEqual(messages.filter((m) => m.name === 'echo').map((m) => m.attributes['fugue.message.id']), ids.map(String), 'numeric ids written as String() writes them');
  const ping = messages.find((m) => m.name === 'ping')!;
  t.is((ping.attributes['fugue.message.id'] as string).length, 256);
  // Flags as the SDK writes them: sampled, and "is_remote is known" (not remote: no client traceparent).
  for (const m of [conn, ...messages]) t.is(m.flags, 0x101, `${m.name} flags`);
  // Times: each message span within the connection span.
  t.truthy(conn.startNs && conn.endNs);
  for (const m of messages) {
    t.true(m.startNs! <= m.endNs!, `${m.name}: start <= end`);
    t.true(m.startNs! >= conn.startNs! && m.endNs! <= conn.endNs!, `${m.name} within its connection`);
  }
});

test('a collector that accepts but never answers: spans beyond the bounded queue are dropped and counted, memory stays bounded, the server keeps serving', async (t) => {
  t.timeout(90_000);
  const held: Socket[] = [];
  const silent = createServer((sock) => { held.push(sock); sock.on('error', () => {}); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { for (const sk of held) sk.destroy(); silent.close(); });
  const port = (silent.address() as { port: number }).port;
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_ENDPOINT: `http://127.0.0.1:${port}`, FUGUE_TRACING_SAMPLE_RATIO: '1', OTEL_EXPORTER_OTLP_TIMEOUT: '120000' } });
  await s.ready();
  const sidecar = await waitFor(() => httpPortOf(s), { what: 'sidecar port' });
  const metric = (name: string) => scrapeSample(sidecar, name);
  const c = await RawClient.handshaken(sock);
  // 80,000 messages in pipelined bursts: more than the queue holds (2 requests in flight + 8 queued, 4,096 spans each).
  for (let burst = 0; burst < 80; burst++) {
    for (let i = 0; i < 1000; i++) c.send({ type: 'ping', id: i });
    for (let i = 0; i < 1000; i++) await c.next();
  }
  const dropped = await waitFor(async () => { const d = await metric('fugue_spans_dropped_total'); return d > 0 ? d : undefined; }, { what: 'spans dropped and counted' });
  const rssMb = (await metric('process_resident_memory_bytes')) / 1024 / 1024;
  t.log(`LEAN: 80,000 spans to a silent collector: ${dropped} dropped and counted, RSS ${rssMb.toFixed(0)} MB`);
  t.true(dropped >= 80_000 - 10 * 4096 - 4096, `dropped ${dropped}`);
  // Generous: the queue bounds span bodies at about 40 MB at the very most; the server itself uses about 100 MB.
  t.true(rssMb < 400, `RSS ${rssMb} MB`);
  c.send({ type: 'ping', id: 'still' });
  t.like(await c.next(), { type: 'pong', id: 'still' });
  c.end();
});

// 5,000 pipelined pings: more than one lean request (4,096 spans), so one is sealed and sent at once.
async function pingMany(sock: string, n = 5000): Promise<void> {
  const c = await RawClient.handshaken(sock);
  for (let i = 0; i < n; i++) c.send({ type: 'ping', id: i });
  for (let i = 0; i < n; i++) expectPong(await c.next(), i);
  c.end();
  await c.closed;
}
function expectPong(reply: unknown, id: number): void {
  const r = reply as { type?: string; id?: unknown };
  if (r.type !== 'pong' || r.id !== id) throw new Error(`expected pong ${id}, got ${JSON.stringify(reply)}`);
}

test('OTEL_EXPORTER_OTLP_ENDPOINT without a scheme (collector:4318): the server serves and stops cleanly, message spans go to the SDK\'s exporter, which reports it', async (t) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_SAMPLE_RATIO: '1', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', OTEL_EXPORTER_OTLP_TIMEOUT: '1000' } });
  await s.ready();
  await pingMany(sock);
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0, 'a clean exit: nothing thrown by the exporter');
});

test('an OTLP header value with a newline (x-bad=a%0Ab): the requests fail, spans are dropped and counted, the server keeps serving', async (t) => {
  const r = await startOtlpReceiver();
  t.teardown(() => r.close());
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_ENDPOINT: r.url, FUGUE_TRACING_SAMPLE_RATIO: '1', OTEL_EXPORTER_OTLP_HEADERS: 'x-bad=a%0Ab' } });
  await s.ready();
  const sidecar = await waitFor(() => httpPortOf(s), { what: 'sidecar port' });
  await pingMany(sock);
  const dropped = await waitFor(async () => {
    const n = await scrapeSample(sidecar, 'fugue_spans_dropped_total');
    return n >= 4096 ? n : undefined;
  }, { what: 'at least one lean request of 4,096 spans dropped and counted' });
  t.true(dropped >= 4096);
  await pingMany(sock, 10);
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});

test('OTLP headers as the SDK merges them: OTEL_EXPORTER_OTLP_HEADERS, with OTEL_EXPORTER_OTLP_TRACES_HEADERS over them, on the lean requests too', async (t) => {
  const r = await startOtlpReceiver();
  t.teardown(() => r.close());
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_ENDPOINT: r.url, FUGUE_TRACING_SAMPLE_RATIO: '1', OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20secret,x-team=generic', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-team=traces' } });
  await s.ready();
  await pingMany(sock, 3);
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  await waitFor(() => r.spans.filter((x) => x.name === 'ping').length === 3, { what: 'three ping spans (lean)' });
  t.true(r.requests.length >= 2, 'the SDK\'s request (the connection span) and the lean one (the pings)');
  for (const q of r.requests) {
    t.is(q.headers.authorization, 'Bearer secret', `${q.bytes} B request: the generic header`);
    t.is(q.headers['x-team'], 'traces', `${q.bytes} B request: the traces-specific header wins`);
  }
});

