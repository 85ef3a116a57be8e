// Adding a feature (issue 16, "Done when"): the feature is a module of its own
// (notes-feature.ts, public API only), and registering it is one line; the
// pump, the dispatch step, observability and the other features are untouched,
// and it is served, counted and labelled like the core's types.
import test from 'ava';
import { join } from 'node:path';
import { App, DEFAULT_FEATURES } from '../../src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSink } from '../helpers/log-sink.js';
import { RawClient } from '../helpers/raw-client.js';
import { tmpDir } from '../helpers/tmp.js';
import { MAX_NOTE_CHARS, notesFeature } from './notes-feature.js';

test('a feature in its own module, registered with one line, is served, pushed, counted and labelled', async (t) => {
  const socketPath = join(tmpDir(t), 'f.sock');
  const env = { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_HTTP_PORT: '0' };
  const app = new App({
    config: loadConfig({ env }).config,
    version: '0',
    env,
    logDestination: new LogSink(),
    defaultMetrics: false,
    features: [...DEFAULT_FEATURES, notesFeature], // the one registration line
  });
  await app.start();
  t.teardown(() => app.destroy());
  const watcher = await RawClient.handshaken(socketPath, 'w');
  watcher.send({ type: 'notes.watch', id: 1 });
  t.like(await watcher.next(), { type: 'notes.watching', id: 1, notes: [] });
  const writer = await RawClient.handshaken(socketPath, 'writer');
  writer.send({ type: 'notes.add', id: 2, text: 'hello' });
  t.like(await writer.next(), { type: 'notes.added', id: 2 });
  t.like(await watcher.next(), { type: 'notes.note', id: 1, text: 'hello' });
  writer.send({ type: 'notes.add', id: 3, text: 'x'.repeat(MAX_NOTE_CHARS + 1) });
  t.like(await writer.next(), { type: 'error', id: 3, code: 'notes.too_long' });
  writer.send({ type: 'notes.add', id: 4 });
  t.like(await writer.next(), { type: 'error', id: 4, code: 'bad_message' });
  // The default features still work beside it.
  writer.send({ type: 'list_clients', id: 5 });
  t.is(((await writer.next()).clients as unknown[]).length, 2);
  const body = (await app.observability.metrics.render(false)).body;
  for (const series of ['fugue_messages_received_total{type="notes.add"} 3', 'fugue_messages_sent_total{type="notes.note"} 1', 'fugue_protocol_errors_total{code="notes.too_long"} 1', 'fugue_stream_dropped_total{stream="notes"} 0']) {
    t.true(body.split('\n').includes(series), series);
  }
  watcher.end();
  writer.end();
});
