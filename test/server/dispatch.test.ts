// The dispatch step on its own: no socket, a plain object as the connection.
import test from 'ava';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { FrameDecoder, FrameEncoder, replyPayload, type Frameable } from '../../src/protocol/index.js';
import type { ClientHandle } from '../../src/server/client.js';
import { Dispatcher, type DispatchTarget } from '../../src/server/dispatch.js';
import type { CloseReason, MessageEvent } from '../../src/server/events.js';
import { CORE_HANDLERS, HandlerTable, type MessageHandler } from '../../src/server/handlers.js';
import { Handshake } from '../../src/server/handshake.js';
import type { ServerView } from '../../src/server/view.js';

const server: ServerView = {
  version: '9.9.9',
  socketPath: '/nowhere',
  catalog: { messageTypes: [], sentTypes: [], errorCodes: [], streams: [] },
  uptimeMs: () => 1234.5,
  clientCount: () => 3,
  isDraining: () => false,
  clients: () => [],
  client: () => undefined,
  traffic: () => ({ bytesIn: 0, bytesOut: 0 }),
};

// Message events are built only while someone observes fugue:message.
const observe = () => {};
subscribe('fugue:message', observe);

/** A connection made of plain fields: what the dispatcher queued, as JSON. */
function fakeConnection(handshaken = true) {
  const queued: Array<{ json: unknown }> = [];
  const encoder = new FrameEncoder();
  const ctx: DispatchTarget & { closeReason?: CloseReason; name?: string } = {
    clientId: 7,
    handshaken,
    context: { client: undefined as unknown as ClientHandle, server },
    completeHandshake(name) {
      (ctx as { handshaken: boolean }).handshaken = true;
      ctx.name = name;
    },
    closeAfterReply(reason) {
      ctx.closeReason = reason;
    },
    enqueue(payload: Frameable) {
      const [frame] = new FrameDecoder().push(encoder.encode([payload]));
      queued.push({ json: JSON.parse(frame!.toString('utf8')) });
    },
  };
  return { ctx, queued };
}

/** The core types and `extra`, as a server's table holds them. */
function table(extra: Record<string, MessageHandler> = {}): HandlerTable {
  const t = new HandlerTable();
  for (const [type, handler] of CORE_HANDLERS) t.register(type, handler, 'core');
  for (const [type, handler] of Object.entries(extra)) t.register(type, handler, 'test');
  return t;
}

const dispatcherOf = (extra: Record<string, MessageHandler> = {}) => new Dispatcher(table(extra), new Handshake('9.9.9'), server);
const dispatcher = dispatcherOf();
const run = (ctx: DispatchTarget, text: string) => {
  const buf = Buffer.from(`xx${text}yy`); // frames are handed over in place, inside a larger buffer
  return dispatcher.dispatch(ctx, buf, 2, buf.length - 2) as MessageEvent;
};

test('a handled message: its reply queued with the request id, and one event with its facts', (t) => {
  const { ctx, queued } = fakeConnection();
  const ev = run(ctx, '{"type":"echo","id":5,"data":[1,"é"],"traceparent":"tp"}');
  t.deepEqual(queued, [{ json: { type: 'echo', id: 5, data: [1, 'é'] } }]);
  t.like(ev, { server, clientId: 7, type: 'echo', known: true, id: 5, replyType: 'echo', bytes: Buffer.byteLength('{"type":"echo","id":5,"data":[1,"é"],"traceparent":"tp"}'), errorCode: undefined, error: undefined, traceparent: 'tp', startMs: 0, endMs: 0 });
});

test('the handshake gate, unknown types, bad frames and bad fields become the documented errors, with the id kept', (t) => {
  const cases: Array<[boolean, string, Record<string, unknown>, Partial<MessageEvent>]> = [
    [false, '{"type":"ping","id":"a"}', { type: 'error', id: 'a', code: 'handshake_required' }, { type: 'ping', known: true, errorCode: 'handshake_required' }],
    [false, '{"type":"nope","id":1}', { type: 'error', id: 1, code: 'handshake_required' }, { type: 'nope', known: false }],
    [true, '{"type":"nope","id":1}', { type: 'error', id: 1, code: 'unknown_type' }, { known: false, errorCode: 'unknown_type' }],
    [true, '{"type":5,"id":2}', { type: 'error', id: 2, code: 'bad_message' }, { type: '', known: false, id: 2, errorCode: 'bad_message' }],
    [true, 'not json', { type: 'error', code: 'bad_message' }, { type: '', errorCode: 'bad_message' }],
    [true, '{"type":"echo","id":3}', { type: 'error', id: 3, code: 'bad_message' }, { type: 'echo', known: true, errorCode: 'bad_message' }],
  ];
  for (const [handshaken, text, reply, event] of cases) {
    const { ctx, queued } = fakeConnection(handshaken);
    const ev = run(ctx, text);
    t.like(queued[0]?.json, reply, text);
    t.like(ev, event, text);
  }
  const { ctx, queued } = fakeConnection(true);
  run(ctx, '{"type":"nope"}');
  t.regex((queued[0]!.json as { message: string }).message, /known types: connect, detach, ping, echo, status/);
});

test('connect completes the handshake; a wrong version closes after the reply; detach replies nothing', (t) => {
  const a = fakeConnection(false);
  run(a.ctx, '{"type":"connect","protocol_version":1,"client_name":"n"}');
  t.deepEqual(a.queued[0]!.json, { type: 'connected', protocol_version: 1, server_version: '9.9.9', client_id: 7 });
  t.true(a.ctx.handshaken);
  t.is(a.ctx.name, 'n');
  const b = fakeConnection(false);
  run(b.ctx, '{"type":"connect","protocol_version":2}');
  t.like(b.queued[0]!.json, { type: 'error', code: 'unsupported_version', supported: [1] });
  t.is(b.ctx.closeReason, 'protocol_error');
  const c = fakeConnection(true);
  const ev = run(c.ctx, '{"type":"detach","id":1}');
  t.deepEqual(c.queued, []);
  t.is(c.ctx.closeReason, 'detach');
  t.is(ev.errorCode, undefined);
});

test('a throwing, a rejecting and an unserialisable handler: internal, the error on the event, nothing escapes', async (t) => {
  const boom = new Error('boom');
  const d = dispatcherOf({
    throws: { handle: () => { throw boom; } },
    rejects: { handle: async () => { throw boom; } },
    deep: { handle: () => { let d: unknown = 1; for (let i = 0; i < 100_000; i++) d = [d]; return { type: 'deep', d }; } },
    slow: { handle: async () => ({ type: 'slow' }) },
  });
  for (const type of ['throws', 'rejects']) {
    const { ctx, queued } = fakeConnection();
    const buf = Buffer.from(`{"type":"${type}","id":1}`);
    const ev = (await d.dispatch(ctx, buf, 0, buf.length)) as MessageEvent;
    t.like(queued[0]!.json, { type: 'error', id: 1, code: 'internal' }, type);
    t.is(ev.error, boom, type);
    t.is(ev.errorCode, 'internal');
  }
  const { ctx, queued } = fakeConnection();
  const buf = Buffer.from('{"type":"deep","id":2}');
  const ev = d.dispatch(ctx, buf, 0, buf.length) as MessageEvent;
  t.like(queued[0]!.json, { type: 'error', id: 2, code: 'internal' });
  t.regex((queued[0]!.json as { message: string }).message, /could not be encoded/);
  t.is(ev.errorCode, 'internal');
  t.is(ev.error, undefined, 'the client\'s data caused it: counted, not a handler failure');
  // An async handler: a promise of the event, its reply queued when it settles.
  const slow = fakeConnection();
  const sbuf = Buffer.from('{"type":"slow","id":3}');
  const p = d.dispatch(slow.ctx, sbuf, 0, sbuf.length);
  t.true(p instanceof Promise);
  t.deepEqual(slow.queued, []);
  t.like(await p, { type: 'slow', known: true, id: 3 });
  t.deepEqual(slow.queued[0]!.json, { type: 'slow', id: 3 });
});

test('core serialisers give exactly what the generic serialiser gives (the fast path is invisible)', (t) => {
  const echo = table().get('echo')!;
  const enc = new FrameEncoder();
  const text = (p: Frameable) => new FrameDecoder().push(enc.encode([p]))[0]!.toString('utf8');
  for (const id of [undefined, 0, 12, -3, 'x"y']) {
    for (const data of [null, 'é', { a: [1, 2] }, 1.5, undefined]) {
      const reply = { type: 'echo', data };
      t.is(text(echo.serialize!(reply, id)), JSON.stringify(id === undefined ? reply : { type: 'echo', id, data }));
    }
  }
  const connect = new Handshake('unused');
  for (const version of ['1.0.0', '2.0.0-rc "q"', '1.0.0']) {
    for (const id of [undefined, 3, 'c']) {
      const reply = { type: 'connected', protocol_version: 1, server_version: version, client_id: 42 };
      t.is(text(new Handshake(version).serialize(reply, id)), text(replyPayload(reply, id)), `${version} ${String(id)}`);
    }
  }
  const err = { type: 'error', code: 'already_connected', message: 'm' };
  t.is(text(connect.serialize(err, 5)), text(replyPayload(err, 5)), 'its error replies take the generic path');
});

test('the source of a push is the client whose handler is running, only while it runs', (t) => {
  let during: number | undefined;
  const d = dispatcherOf({ who: { handle: () => { during = d.activeClientId; return undefined; } } });
  const { ctx } = fakeConnection();
  const buf = Buffer.from('{"type":"who"}');
  d.dispatch(ctx, buf, 0, buf.length);
  t.is(during, 7);
  t.is(d.activeClientId, undefined);
});

test.serial('an event nobody observes is not built: the reply is queued all the same', (t) => {
  unsubscribe('fugue:message', observe);
  t.teardown(() => subscribe('fugue:message', observe));
  const { ctx, queued } = fakeConnection();
  t.is(run(ctx, '{"type":"ping","id":1}') as MessageEvent | undefined, undefined);
  t.deepEqual(queued, [{ json: { type: 'pong', id: 1 } }]);
});
