// The socket serves before observability has loaded (issue 17): what happens
// meanwhile is kept (observability/early.ts) and replayed once it is up,
// "nothing lost or miscounted". The same traffic runs against a server
// observed from the start and against one observed only after the traffic is
// over; their metrics and log lines must be the same.
import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { loadConfig } from '../../src/config/load.js';
import { createObservability, type Observability } from '../../src/observability/index.js';
import { EarlyEvents } from '../../src/observability/early.js';
import { FugueServer } from '../../src/server/server.js';
import { LogSink, type LogLine } from '../helpers/log-sink.js';
import { RawClient } from '../helpers/raw-client.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/** Connects, talks (replies, errors), and leaves: two clients, each closing its own way. */
async function traffic(server: FugueServer): Promise<void> {
  const a = await FugueClient.connect(server.socketPath, { clientName: 'early-a' });
  await a.ping();
  await a.echo('x');
  const b = await RawClient.handshaken(server.socketPath);
  b.send({ type: 'no_such_type' });
  await b.next();
  b.writeFrame('not json');
  await b.next();
  await a.detach();
  b.end();
  await b.closed;
  await waitFor(() => server.view.clientCount() === 0, { what: 'both clients gone on the server side' });
}

/** The fugue_* samples that do not depend on timing (histogram counts yes; sums and buckets no). */
function countedSeries(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('fugue_') && !/_bucket\{|_sum[ {]|uptime|start_time|_log_/.test(l))
    .sort();
}

/** A log line without what differs between two runs (times, the socket file's path and inode). */
function comparable(l: LogLine): object {
  const { time: _t, pid: _p, durationMs: _d, socketPath: _s, ino: _i, dev: _v, ...rest } = l;
  return rest;
}

async function run(t: ExecutionContext, observedFrom: 'start' | 'after the traffic'): Promise<{ series: string[]; lines: object[] }> {
  const socketPath = join(tmpDir(t), 'f.sock');
  const { config } = loadConfig({ env: { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_LOG_LEVEL: 'debug' } });
  const server = new FugueServer({ version: '0.0.0-test', socketPath });
  const logs = new LogSink();
  const observe = () => createObservability({ config, version: '0.0.0-test', logDestination: logs, defaultMetrics: false });
  let obs: Observability;
  let unobserve: () => void;
  if (observedFrom === 'start') {
    obs = await observe();
    unobserve = obs.observe(server.view);
    await server.start();
    await traffic(server);
  } else {
    const early = new EarlyEvents(server.view);
    await server.start();
    early.info({ step: 'kept' }, 'a line logged before observability was up');
    await traffic(server);
    t.is(logs.lines.length, 0, 'nothing written before observability is up');
    obs = await observe();
    unobserve = obs.observe(server.view, early.take(obs.log));
  }
  t.teardown(() => {
    unobserve();
    server.destroy();
  });
  const text = (await obs.metrics.render(false)).body;
  return { series: countedSeries(text), lines: logs.lines.filter((l) => l.step === undefined).map(comparable) };
}

test('connections, messages, errors and closes from before observability was up are counted and logged as if it had been', async (t) => {
  const live = await run(t, 'start');
  const late = await run(t, 'after the traffic');
  t.true(live.series.some((l) => l.startsWith('fugue_messages_received_total{type="ping"} 1')), live.series.join('\n'));
  t.true(live.series.some((l) => l.startsWith('fugue_connections_closed_total{reason="detach"} 1')));
  t.true(live.lines.length >= 2, 'the closes are logged');
  t.deepEqual(late.series, live.series);
  t.deepEqual(late.lines, live.lines);
});

test('a line logged before observability was up is written once it is, in its place', async (t) => {
  const socketPath = join(tmpDir(t), 'f.sock');
  const { config } = loadConfig({ env: { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_LOG_LEVEL: 'debug' } });
  const server = new FugueServer({ version: '0.0.0-test', socketPath });
  const early = new EarlyEvents(server.view);
  early.info({ step: 1 }, 'before the start');
  await server.start();
  t.teardown(() => server.destroy());
  const c = await FugueClient.connect(socketPath);
  await c.detach();
  await waitFor(() => server.view.clientCount() === 0, { what: 'the client gone' });
  early.warn({ step: 2 }, 'after the client');
  const logs = new LogSink();
  const obs = await createObservability({ config, version: '0.0.0-test', logDestination: logs, defaultMetrics: false });
  const unobserve = obs.observe(server.view, early.take(obs.log));
  t.teardown(unobserve);
  early.error({ step: 3 }, 'after observability');
  await logs.waitFor((l) => l.step === 3, 'the line logged after observability');
  const order = logs.lines.map((l) => (l.step !== undefined ? `step ${String(l.step)}` : l.msg));
  t.deepEqual(order.filter((m) => m.startsWith('step')), ['step 1', 'step 2', 'step 3']);
  t.true(order.indexOf('client disconnected') > order.indexOf('step 1'), order.join(', '));
  t.true(order.indexOf('client disconnected') < order.indexOf('step 2'), order.join(', '));
});
