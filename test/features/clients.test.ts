// list_clients (docs/protocol.md, "Extensions"): a snapshot of every open connection.
import test from 'ava';
import { startApp } from '../helpers/app.js';
import { RawClient } from '../helpers/raw-client.js';

test('list_clients lists every open connection in order, with its name, start time and counters; the asker included', async (t) => {
  const { socketPath } = await startApp(t);
  const before = Date.now();
  const a = await RawClient.handshaken(socketPath, 'alpha');
  const raw = await RawClient.connect(socketPath); // not handshaken
  const b = await RawClient.handshaken(socketPath, 'beta');
  a.send({ type: 'echo', id: 1, data: 'x' });
  await a.next();
  b.send({ type: 'list_clients', id: 'l' });
  const reply = await b.next();
  t.is(reply.type, 'clients');
  t.is(reply.id, 'l');
  const clients = reply.clients as Array<Record<string, unknown>>;
  t.deepEqual(clients.map((c) => c.name), ['alpha', null, 'beta']);
  t.deepEqual(clients.map((c) => c.handshaken), [true, false, true]);
  const [ca, , cb] = clients;
  t.like(ca, { messages_in: 2, messages_out: 2 });
  t.true((ca!.bytes_in as number) > 0 && (ca!.bytes_out as number) > 0);
  t.like(cb, { messages_in: 2, messages_out: 1 }, 'its own list_clients counted as received, its reply not yet sent');
  for (const c of clients) {
    t.true(Number.isInteger(c.client_id));
    const at = Date.parse(c.connected_at as string);
    t.regex(c.connected_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.true(at >= before - 1000 && at <= Date.now());
  }
  t.deepEqual(Object.keys(ca!).sort(), ['bytes_in', 'bytes_out', 'client_id', 'connected_at', 'handshaken', 'messages_in', 'messages_out', 'name']);
  // Before the handshake it is refused like every type but connect.
  raw.send({ type: 'list_clients', id: 2 });
  t.like(await raw.next(), { type: 'error', id: 2, code: 'handshake_required' });
  for (const c of [a, b, raw]) c.end();
});
