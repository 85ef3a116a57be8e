import test from 'ava';
import { FrameDecoder, FrameEncoder, JsonPayload, parseMessage, parseTraceparent, replyPayload, ReplyShape, type Frameable, type MessageId } from '../../src/protocol/index.js';

const parse = (s: string | Buffer) => parseMessage(typeof s === 'string' ? Buffer.from(s) : s);

test('parses an object with a string type and keeps its fields', (t) => {
  const r = parse('{"type":"echo","id":7,"data":[1]}');
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.message, { type: 'echo', id: 7, data: [1] });
});

test('accepts U+FFFD that the client sent, and parses a frame in the middle of a buffer', (t) => {
  // Validation runs only when decoding produced U+FFFD: a real one must pass it.
  const r = parse('{"type":"echo","data":"\uFFFD \u00e9"}');
  t.true(r.ok);
  if (r.ok) t.is(r.message.data, '\uFFFD \u00e9');
  const buf = Buffer.from('xx{"type":"ping","id":3}yy');
  const mid = parseMessage(buf, 2, buf.length - 2);
  t.true(mid.ok);
  if (mid.ok) t.deepEqual(mid.message, { type: 'ping', id: 3 });
  // Invalid UTF-8 right next to a valid U+FFFD is still refused.
  const mixed = Buffer.concat([Buffer.from('{"type":"echo","data":"\uFFFD'), Buffer.from([0xc3]), Buffer.from('"}')]);
  const m = parseMessage(mixed);
  t.false(m.ok);
  if (!m.ok) t.regex(m.reason, /UTF-8/);
});

const bad: Array<[string, string | Buffer, RegExp]> = [
  ['empty payload', '', /empty frame/],
  ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /UTF-8/],
  ['invalid JSON', '{"type":', /not valid JSON/],
  ['an array', '[1,2]', /an array/],
  ['a string', '"ping"', /a string/],
  ['null', 'null', /null/],
  ['missing type', '{"id":1}', /missing field "type"/],
  ['numeric type', '{"type":5}', /"type" must be a string/],
  ['float id', '{"type":"ping","id":1.5}', /"id" must be an integer or a string/],
  ['object id', '{"type":"ping","id":{}}', /"id" must be/],
];
for (const [name, input, reason] of bad) {
  test(`rejects ${name} as bad_message with a reason`, (t) => {
    const r = parse(input);
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.code, 'bad_message');
      t.regex(r.reason, reason);
    }
  });
}

test('keeps a valid id on a message with a bad type, so the error can carry it', (t) => {
  const r = parse('{"type":5,"id":"abc"}');
  t.false(r.ok);
  if (!r.ok) t.is(r.id, 'abc');
});

test('parses a valid traceparent and tracestate', (t) => {
  const tc = parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'k=v');
  t.deepEqual(tc, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, traceState: 'k=v' });
});

for (const bad of ['', 'garbage', '00-00000000000000000000000000000000-b7ad6b7169203331-01', '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', 42]) {
  test(`ignores the invalid traceparent ${JSON.stringify(bad)}`, (t) => {
    t.is(parseTraceparent(bad), undefined);
  });
}

const IDS: Array<MessageId | undefined> = [undefined, 0, -0, 9, 10, 99, 100, 42, -7, 1234567890, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, '', 'id "with" quotes', 'ü\u0001'];
const encoder = new FrameEncoder();
const framed = (p: Frameable) => new FrameDecoder().push(encoder.encode([new JsonPayload('{"type":"pong"}'), p]))[1]!.toString('utf8');

test('a shaped reply frames exactly what JSON.stringify of the reply object gives', (t) => {
  const shape = new ReplyShape('echo', 'data');
  const values: unknown[] = ['x', 'quote " backslash \\ newline \n é ✓ \u{1F600} \u2028', 0, -1.5e300, null, true, [], {}, [1, { a: [null, 'b'] }], { toJSON: () => 'via toJSON' }, undefined, () => 1];
  for (const id of IDS) {
    for (const value of values) {
      const expected = JSON.stringify(id === undefined ? { type: 'echo', data: value } : { type: 'echo', id, data: value });
      t.is(framed(shape.payload(id, value)), expected, `id ${String(id)}, value ${String(JSON.stringify(value))}`);
    }
  }
  // Fixed fields come between the id and the variable field, serialised once; a shape may have no variable field.
  const connected = new ReplyShape('connected', 'client_id', { protocol_version: 1, server_version: '1.2.3 "q"' });
  const pong = new ReplyShape('pong');
  for (const id of [undefined, 3, 'x']) {
    t.is(framed(connected.payload(id, 17)), JSON.stringify({ type: 'connected', ...(id === undefined ? {} : { id }), protocol_version: 1, server_version: '1.2.3 "q"', client_id: 17 }));
    t.is(framed(pong.payload(id)), JSON.stringify({ type: 'pong', ...(id === undefined ? {} : { id }) }));
  }
  // Too deep for JSON.stringify: the error reaches the caller (the dispatch step answers `internal`).
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  t.throws(() => shape.payload(1, deep), { instanceOf: RangeError });
});

test('replyPayload puts the id right after type, leaves the reply object alone, and otherwise gives JSON.stringify', (t) => {
  const replies: Array<Record<string, unknown> & { type: string }> = [
    { type: 'pong' },
    { type: 'status', server_version: '1', uptime_ms: 3, clients: 1, draining: false },
    { type: 'error', code: 'bad_message', message: 'm "q"' },
    { code: 'x', type: 'odd' }, // type not first
    { type: 'weird "type" ✓', nested: { type: 'inner' } },
    { type: 'has', id: 'its own' }, // the request's id wins
  ];
  for (const reply of replies) {
    const before = JSON.stringify(reply);
    for (const id of IDS) {
      const expected = id === undefined ? JSON.stringify(reply) : JSON.stringify(Object.assign({ type: reply.type, id }, reply, { id }));
      t.is(framed(replyPayload(reply, id)), expected, `${before} id ${String(id)}`);
    }
    t.is(JSON.stringify(reply), before, 'the reply object is unchanged');
  }
});
