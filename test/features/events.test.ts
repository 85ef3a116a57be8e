// The shipped `events` feature (issue 16, point 4) over a real socket, against
// an in-process App: what a subscriber sees, filtering, sequence numbers, a
// subscriber that stops reading, and the messages' errors.
import test from 'ava';
import { join } from 'node:path';
import { App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { EVENT_KINDS, EVENTS_MAX_BUFFERED_BYTES } from '../../src/features/events.js';
import { LogSink } from '../helpers/log-sink.js';
import { RawClient } from '../helpers/raw-client.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

async function start(t: Parameters<typeof tmpDir>[0], env: Record<string, string> = {}) {
  const socketPath = join(tmpDir(t), 'f.sock');
  const base = { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_HTTP_PORT: '0', ...env };
  const app = new App({ config: loadConfig({ env: base }).config, version: '0', env: base, logDestination: new LogSink(), defaultMetrics: false });
  await app.start();
  t.teardown(() => app.destroy());
  return { app, socketPath, base };
}

async function subscribe(socketPath: string, kinds?: string[]) {
  const c = await RawClient.handshaken(socketPath, 'watcher');
  c.send({ type: 'events.subscribe', id: 's', ...(kinds ? { kinds } : {}) });
  const reply = await c.next();
  return { c, reply };
}

test('a subscriber sees clients connect and leave, a reload applied and refused, and the drain, in order with consecutive sequence numbers', async (t) => {
  const { app, socketPath, base } = await start(t);
  const { c: w, reply } = await subscribe(socketPath);
  t.deepEqual(reply, { type: 'events.subscribed', id: 's', kinds: [...EVENT_KINDS], seq: 1 });
  const other = await RawClient.handshaken(socketPath, 'other');
  other.end();
  await other.closed;
  app.reload(() => loadConfig({ env: { ...base, FUGUE_MAX_CLIENTS: '50' } }));
  app.reload(() => {
    throw new Error('bad file');
  });
  const closing = app.close('test');
  const got = [];
  for (;;) {
    const m = await w.next();
    if (m.type === 'shutdown') break;
    got.push(m);
  }
  w.end();
  await closing;
  t.deepEqual(got.map((m) => [m.type, m.seq, m.kind]), [
    ['event', 1, 'client.connected'],
    ['event', 2, 'client.left'],
    ['event', 3, 'config.reloaded'],
    ['event', 4, 'config.refused'],
    ['event', 5, 'drain.started'],
  ]);
  t.like(got[0], { name: 'other' });
  t.like(got[1], { name: 'other', reason: 'client_eof' });
  t.like(got[2], { applied: ['limits.maxClients'], restart_required: [] });
  t.like(got[3], { error: 'bad file' });
  t.like(got[4], { clients: 1 });
  t.true(got.every((m) => !Number.isNaN(Date.parse(m.time as string))), 'each event has its time');
});

test('a filter by kind: only those kinds, with their own sequence; invalid filters are bad_message', async (t) => {
  const { socketPath } = await start(t, { FUGUE_MAX_CLIENTS: '3' });
  const { c: limits, reply } = await subscribe(socketPath, ['limit.enforced']);
  t.like(reply, { kinds: ['limit.enforced'], seq: 1 });
  const { c: all } = await subscribe(socketPath);
  // A third client fills the limit; a fourth is turned away with server_busy.
  const third = await RawClient.handshaken(socketPath, 'third');
  const fourth = await RawClient.connect(socketPath);
  t.like((await fourth.untilClosed())[0], { code: 'server_busy' });
  t.like(await limits.next(), { type: 'event', seq: 1, kind: 'limit.enforced', limit: 'limits.maxClients', reason: 'server_busy', max: 3 });
  // The unfiltered one also saw third connect.
  t.like(await all.next(), { seq: 1, kind: 'client.connected', name: 'third' });
  t.like(await all.next(), { seq: 2, kind: 'limit.enforced' });
  for (const kinds of [[], ['client.connected', 'nope'], 'client.left', [3]]) {
    limits.send({ type: 'events.subscribe', id: 'bad', kinds });
    const r = await limits.next();
    t.like(r, { type: 'error', id: 'bad', code: 'bad_message' }, JSON.stringify(kinds));
    t.regex(r.message as string, /client\.connected, client\.left/);
  }
  // Unsubscribing stops the pushes.
  limits.send({ type: 'events.unsubscribe', id: 'u' });
  t.like(await limits.next(), { type: 'events.unsubscribed', id: 'u' });
  third.end();
  t.like(await all.next(), { kind: 'client.left', name: 'third' });
  limits.send({ type: 'ping', id: 'p' });
  t.like(await limits.next(), { type: 'pong', id: 'p' }, 'nothing pushed to it after unsubscribing');
  for (const c of [limits, all]) c.end();
});

test('a subscriber that stops reading misses events, is told how many, and never holds back another subscriber or the server', async (t) => {
  const { app, socketPath } = await start(t, { FUGUE_MAX_CLIENTS: '4096' });
  const { c: stuck } = await subscribe(socketPath, ['client.connected']);
  const { c: live, reply } = await subscribe(socketPath, ['client.connected']);
  // The same filter, one stream: stuck already got the event of live's connect (seq 1).
  t.like(await stuck.next(), { seq: 1, name: 'watcher' });
  t.is(reply.seq, 2);
  stuck.socket.pause();
  // Clients with long names, so the stuck one's unread events pass the events stream's bound quickly.
  const name = 'n'.repeat(4000);
  let seen = 1;
  let n = 0;
  while (n * name.length < 3 * EVENTS_MAX_BUFFERED_BYTES) {
    const c = await RawClient.handshaken(socketPath, name);
    c.destroy();
    n++;
    const m = await live.next();
    t.is(m.seq, ++seen, 'the live subscriber sees every event, without a gap');
  }
  await waitFor(() => app.server.clientCount() === 2, { what: 'the short-lived clients gone, both subscribers still connected' });
  const metrics = (await app.observability.metrics.render(false)).body;
  const dropped = Number(metrics.match(/^fugue_stream_dropped_total\{stream="events"\} (\d+)$/m)?.[1]);
  t.true(dropped > 0, `events were dropped for the stuck subscriber (${dropped})`);
  t.regex(metrics, /^fugue_stream_pauses_total\{stream="events"\} 1$/m);
  stuck.socket.resume();
  const got: Array<Record<string, unknown>> = [];
  for (;;) {
    const m = await stuck.next();
    got.push(m);
    if (m.type === 'events.missed') break;
  }
  const events = got.filter((m) => m.type === 'event');
  t.is(got.at(-1)!.missed, dropped);
  t.deepEqual(events.map((m) => m.seq), events.map((_, i) => i + 2), 'what it got has no gap before the pause');
  // After it: the stream again, its sequence numbers showing the gap.
  const c = await RawClient.handshaken(socketPath, 'after');
  const next = await stuck.next();
  t.like(next, { type: 'event', kind: 'client.connected', name: 'after', seq: n + 2 });
  t.is((next.seq as number) - (events.at(-1)!.seq as number) - 1, dropped, 'the gap in seq is what it missed');
  c.end();
  await waitFor(() => app.server.clientCount() === 2, { what: 'after gone' });
  for (const s of [stuck, live]) s.end();
});
