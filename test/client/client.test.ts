// The client distrusts the server (issue 13, point 6): malformed, oversized or
// wrongly typed replies give a typed FugueError and close the connection; they
// never crash the process. A fake server (a real Unix socket) answers.
import test from 'ava';
import { FugueClient } from '../../src/client/client.js';
import { FugueError } from '../../src/errors.js';
import { afterHandshake, frameOf, startFakeServer } from '../helpers/fake-server.js';
import { startServer } from '../helpers/server.js';
import { onceWithin } from '../helpers/wait-for.js';

const badReplies: Array<[string, (id: unknown) => Buffer, RegExp]> = [
  ['text that is not JSON', () => frameOf('hello'), /a payload that is not JSON, got "hello"/],
  ['JSON null', () => frameOf('null'), /a payload that is null, not a JSON object/],
  ['an array', (id) => frameOf(JSON.stringify([{ type: 'pong', id }])), /a payload that is an array, not a JSON object/],
  ['a number', () => frameOf('42'), /a payload that is a number, not a JSON object/],
  ['an empty frame', () => frameOf(''), /an empty frame \(length 0\) where a JSON object was due/],
  ['invalid UTF-8', () => frameOf(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])), /a payload that is not valid UTF-8/],
  ['an object without type', (id) => frameOf(JSON.stringify({ id })), /a message without a string "type"/],
  ['a numeric type', (id) => frameOf(JSON.stringify({ type: 7, id })), /a message without a string "type"/],
  ['an id that is an object', () => frameOf('{"type":"pong","id":{}}'), /a "pong" message whose "id" is not an integer or a string/],
  ['a truncated JSON text', (id) => frameOf(`{"type":"pong","id":${JSON.stringify(id)}`), /a payload that is not JSON/],
  ['a huge non-JSON text, quoted only in part', () => frameOf('x'.repeat(100_000)), /a payload that is not JSON, got "x{80}"\.\.\. \(100000 bytes in all\)/],
];

for (const [name, reply, re] of badReplies) {
  test(`a reply that is ${name} fails the request with FUGUE_ERR_CLIENT_BAD_REPLY and closes the connection`, async (t) => {
    const fake = await startFakeServer(t, afterHandshake((msg, conn) => conn.raw(reply(msg.id))));
    const c = await FugueClient.connect(fake.path, { timeoutMs: 2000 });
    const err = await t.throwsAsync(c.ping(), { instanceOf: FugueError, code: 'FUGUE_ERR_CLIENT_BAD_REPLY' });
    t.regex(err!.message, new RegExp(`^malformed reply from ${fake.path}: ${re.source}`));
    t.regex(err!.message, /the connection was closed\. Check that .* is a fugue-server socket/);
    t.is(err!.exitCode, 76);
    await c.closed();
    // Later requests fail at once with the same error.
    await t.throwsAsync(c.status(), { is: err });
  });
}

test('a handshake reply without a numeric client_id, or with other wrongly typed fields, is a protocol error', async (t) => {
  const replies: Array<[Record<string, unknown>, RegExp]> = [
    [{ type: 'connected', protocol_version: 1, server_version: '1.0.0', client_id: '7' }, /a "connected" message whose "client_id" is not a non-negative integer, got "7"/],
    [{ type: 'connected', protocol_version: 1, server_version: '1.0.0' }, /"client_id" is not a non-negative integer, got no such field/],
    [{ type: 'connected', protocol_version: 1, server_version: 1, client_id: 7 }, /"server_version" is not a string, got 1/],
    [{ type: 'connected', protocol_version: '1', server_version: '1', client_id: 7 }, /"protocol_version" is not an integer/],
    [{ type: 'pong' }, /a "pong" message in reply to connect, where "connected" or "error" was due/],
    [{ type: 'error', code: 5, message: 'x' }, /an? "error" message whose "code" is not a string/],
  ];
  for (const [reply, re] of replies) {
    const fake = await startFakeServer(t, (msg, conn) => conn.send({ ...reply, id: msg?.id }));
    const err = await t.throwsAsync(FugueClient.connect(fake.path, { timeoutMs: 2000 }), { code: 'FUGUE_ERR_CLIENT_BAD_REPLY' }, JSON.stringify(reply));
    t.regex(err!.message, re);
    // The client gave up the connection.
    await onceWithin(fake.connections[0]!, 'close', 2000, 'client closed the connection');
  }
});

test('a well-formed refusal of the handshake is FUGUE_ERR_CLIENT_PROTOCOL with the server\'s code and message', async (t) => {
  const fake = await startFakeServer(t, (msg, conn) => conn.send({ type: 'error', id: msg?.id, code: 'unsupported_version', message: 'upgrade the client' }));
  await t.throwsAsync(FugueClient.connect(fake.path, { timeoutMs: 2000 }), { code: 'FUGUE_ERR_CLIENT_PROTOCOL', message: /handshake refused by .*: unsupported_version: upgrade the client/ });
});

test('a reply frame over maxReplyBytes fails pending requests with FUGUE_ERR_CLIENT_REPLY_TOO_LARGE, without allocating it', async (t) => {
  const fake = await startFakeServer(t, afterHandshake((msg, conn) => {
    if (msg.type === 'ping') conn.raw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7b])); // announces 4 GiB
    else conn.send({ type: 'echo', id: msg.id, data: msg.data });
  }));
  const before = process.memoryUsage().arrayBuffers;
  const c = await FugueClient.connect(fake.path, { timeoutMs: 2000 });
  const pending = c.echo('never answered: the ping reply comes first and fails the connection');
  const err = await t.throwsAsync<FugueError>(c.ping(), { code: 'FUGUE_ERR_CLIENT_REPLY_TOO_LARGE' });
  t.regex(err!.message, new RegExp(`reply from ${fake.path} announces 4294967295 bytes, more than this client accepts \\(maxReplyBytes 33554432\\)`));
  t.true(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024);
  t.is(err!.exitCode, 76);
  await c.closed();
  // The echo sent before the ping got its reply before the bad frame; a request still waiting would have been failed too.
  t.like(await pending, { type: 'echo' });
});

test('maxReplyBytes is honoured exactly: a reply at the limit is read, one byte more is refused', async (t) => {
  const fake = await startFakeServer(t, afterHandshake((msg, conn) => {
    const data = 'x'.repeat(Number(msg.size));
    conn.send({ type: 'echo', id: msg.id, data });
  }));
  const c = await FugueClient.connect(fake.path, { timeoutMs: 2000, maxReplyBytes: 2000 });
  const overhead = JSON.stringify({ type: 'echo', id: 2, data: '' }).length;
  t.like(await c.request({ type: 'size', size: 2000 - overhead }), { type: 'echo' });
  await t.throwsAsync(c.request({ type: 'size', size: 2001 - overhead }), { code: 'FUGUE_ERR_CLIENT_REPLY_TOO_LARGE', message: /announces 2001 bytes.*maxReplyBytes 2000/ });
});

test('a status reply with wrongly typed fields is refused; extra fields and unknown message types pass', async (t) => {
  const status = { type: 'status', server_version: '1', uptime_ms: 5, clients: 1, draining: false };
  let bad = false;
  const fake = await startFakeServer(t, afterHandshake((msg, conn) => {
    conn.send({ type: 'hello_from_the_future', anything: [1] });
    conn.send(bad ? { ...status, id: msg.id, clients: '1' } : { ...status, id: msg.id, extra: { nested: true } });
  }));
  const c = await FugueClient.connect(fake.path, { timeoutMs: 2000 });
  const unsolicited = onceWithin<Record<string, unknown>>(c, 'message', 2000, 'unsolicited message');
  t.like(await c.status(), { type: 'status', clients: 1, extra: { nested: true } });
  t.like(await unsolicited, { type: 'hello_from_the_future' });
  bad = true;
  await t.throwsAsync(c.status(), { code: 'FUGUE_ERR_CLIENT_BAD_REPLY', message: /a "status" message whose "clients" is not a non-negative integer, got "1"/ });
});

test('a reply of the wrong type to ping is refused and closes the connection', async (t) => {
  const fake = await startFakeServer(t, afterHandshake((msg, conn) => conn.send({ type: 'status', id: msg.id, server_version: '1', uptime_ms: 1, clients: 1, draining: false })));
  const c = await FugueClient.connect(fake.path, { timeoutMs: 2000 });
  await t.throwsAsync(c.ping(), { code: 'FUGUE_ERR_CLIENT_BAD_REPLY', message: /a "status" message in reply to ping, where "pong" or "error" was due/ });
  await c.closed();
});

test('a malformed unsolicited frame closes the connection and is reported as protocolError', async (t) => {
  const fake = await startFakeServer(t, afterHandshake(() => undefined));
  const c = await FugueClient.connect(fake.path, { timeoutMs: 2000 });
  const reported = onceWithin<FugueError>(c, 'protocolError', 2000, 'protocolError');
  fake.connections[0]!.write(frameOf('{"type":"shutdown","reason":"bye","timeout_ms":"soon"}'));
  t.regex((await reported).message, /a "shutdown" message whose "timeout_ms" is not a non-negative number, got "soon"/);
  await c.closed();
  await t.throwsAsync(c.ping(), { code: 'FUGUE_ERR_CLIENT_BAD_REPLY' });
});

test('a server that never answers: connect times out with FUGUE_ERR_CLIENT_TIMEOUT and drops the connection', async (t) => {
  const fake = await startFakeServer(t, () => undefined);
  await t.throwsAsync(FugueClient.connect(fake.path, { timeoutMs: 150 }), { code: 'FUGUE_ERR_CLIENT_TIMEOUT', message: /no reply to connect \(id 1\) from .* within 150 ms/ });
  await onceWithin(fake.connections[0]!, 'close', 2000, 'client closed the connection');
});

test('detach() gives up after the timeout when the server never closes its side', async (t) => {
  const fake = await startFakeServer(t, (msg, conn) => { if (msg?.type === 'connect') conn.connected(msg); });
  const c = await FugueClient.connect(fake.path, { timeoutMs: 150 });
  await c.detach();
  t.true(c.socket.destroyed);
});

test('the server closing the connection mid-frame fails the pending request with FUGUE_ERR_CLIENT_CLOSED', async (t) => {
  const fake = await startFakeServer(t, afterHandshake((msg, conn) => {
    conn.raw(frameOf(JSON.stringify({ type: 'pong', id: msg.id })).subarray(0, 7));
    conn.socket.end();
  }));
  const c = await FugueClient.connect(fake.path, { timeoutMs: 2000 });
  await t.throwsAsync(c.ping(), { code: 'FUGUE_ERR_CLIENT_CLOSED', message: /closed the connection before replying/ });
  await t.throwsAsync(c.ping(), { code: 'FUGUE_ERR_CLIENT_CLOSED', message: /the connection to .* is closed; connect again/ });
});

test('against the real server every reply passes the checks', async (t) => {
  const server = await startServer(t);
  const c = await FugueClient.connect(server.socketPath, { clientName: 'checks' });
  t.is(typeof c.connected?.client_id, 'number');
  t.like(await c.ping(), { type: 'pong' });
  t.like(await c.status(), { type: 'status', clients: 1, draining: false });
  t.like(await c.echo({ a: [1, 'b', null] }), { type: 'echo', data: { a: [1, 'b', null] } });
  t.like(await c.request({ type: 'nope' }), { type: 'error', code: 'unknown_type' });
  await c.detach();
});
