// The protocol model (protocol-model.ts) against hand-written cases from
// docs/protocol.md: if the model is wrong, the fuzz that relies on it is too.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { checkServerFrame, ConnectionModel, mismatch, PROTOCOL_V1, serverTypes, withMessages, type Expect, type Prediction, type ProtocolSpec } from './protocol-model.js';

const PROTOCOL_MD = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/** The rows of the first table under `## heading`, as arrays of cells. */
function table(heading: string): string[][] {
  const section = PROTOCOL_MD.split(`\n## ${heading}\n`)[1];
  if (section === undefined) throw new Error(`docs/protocol.md has no section "${heading}"`);
  const rows = section.split('\n## ')[0]!.split('\n').filter((l) => l.startsWith('|')).slice(2); // header and separator
  return rows.map((r) => r.split('|').slice(1, -1).map((c) => c.trim()));
}
const code = (cell: string) => /^`([^`]+)`/.exec(cell)?.[1];

const frame = (payload: string | Buffer, length?: number): Buffer => {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length ?? body.length);
  return Buffer.concat([h, body]);
};
const json = (o: object) => frame(JSON.stringify(o));

/** A model already past the handshake. */
function handshaken(spec: ProtocolSpec = PROTOCOL_V1): ConnectionModel {
  const m = new ConnectionModel(spec);
  m.push(json({ type: 'connect', protocol_version: 1 }));
  return m;
}
const one = (m: ConnectionModel, bytes: Buffer): Prediction => {
  const p = m.push(bytes);
  if (p.length !== 1) throw new Error(`expected one prediction, got ${JSON.stringify(p)}`);
  return p[0]!;
};
const errorOf = (codes: string[], id?: string | number): Prediction => ({ expect: { kind: 'error', codes, id }, closes: false });

// --- the spec is the document's ------------------------------------------------

test('PROTOCOL_V1 has exactly the client types of docs/protocol.md, each with its documented reply', (t) => {
  const documented = Object.fromEntries(table('Client to server').map(([type, , reply]) => [code(type!), code(reply!) ?? null]));
  const modelled = Object.fromEntries(Object.entries(PROTOCOL_V1.messages).map(([type, m]) => [type, m.reply ?? null]));
  t.deepEqual(modelled, documented);
});

test('the server types the model accepts are those of docs/protocol.md, "Server to client"', (t) => {
  t.deepEqual([...serverTypes(PROTOCOL_V1)].sort(), table('Server to client').map(([type]) => code(type!)).sort());
});

test('PROTOCOL_V1 has exactly the error codes of docs/protocol.md', (t) => {
  t.deepEqual([...PROTOCOL_V1.errorCodes].sort(), table('Error codes').map(([c]) => code(c!)).sort());
});

// --- every error code the model can predict -----------------------------------

for (const [what, payload] of [
  ['an empty payload (L == 0)', Buffer.alloc(0)],
  ['a payload that is not UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
  ['a payload that is not JSON', '{"type":"ping",}'],
  ['a JSON array', '[{"type":"ping"}]'],
  ['a JSON string', '"ping"'],
  ['a JSON number', '42'],
  ['JSON null', 'null'],
  ['an object without type', '{"id":7}'],
  ['an object whose type is not a string', '{"type":["ping"]}'],
  ['a byte-order mark before the object', '\ufeff{"type":"ping"}'],
] as const) {
  test(`bad_message for ${what}; the connection stays open`, (t) => {
    const m = handshaken();
    const p = one(m, frame(payload));
    t.deepEqual(p.expect?.kind === 'error' ? p.expect.codes : p.expect, ['bad_message']);
    t.false(p.closes);
    t.false(m.closed);
  });
}

test('an id that is not an integer or a string gets bad_message without an id', (t) => {
  const m = handshaken();
  for (const id of [1.5, {}, [], null, true, 2 ** 53]) t.deepEqual(one(m, json({ type: 'ping', id })), errorOf(['bad_message']), JSON.stringify(id));
});

test('a valid id on an object with a bad type is kept on the bad_message', (t) => {
  t.deepEqual(one(handshaken(), frame('{"type":5,"id":"abc"}')), errorOf(['bad_message'], 'abc'));
});

test('before connect, any other type, known or not, gets handshake_required with its id; the connection stays open', (t) => {
  const m = new ConnectionModel();
  t.deepEqual(one(m, json({ type: 'ping', id: 1 })), errorOf(['handshake_required'], 1));
  t.deepEqual(one(m, json({ type: 'no-such-type', id: 'u' })), errorOf(['handshake_required'], 'u'));
  t.deepEqual(one(m, json({ type: 'detach' })), errorOf(['handshake_required']), 'not even detach');
  t.false(m.handshaken);
  t.false(m.closed);
});

test('connect with protocol_version 1 passes the gate: connected carries the id, then other types are served', (t) => {
  const m = new ConnectionModel();
  t.deepEqual(one(m, json({ type: 'connect', protocol_version: 1, client_name: 'n', id: 'h' })), { expect: { kind: 'reply', request: 'connect', type: 'connected', id: 'h' }, closes: false });
  t.true(m.handshaken);
  t.deepEqual(one(m, json({ type: 'ping', id: 2 })), { expect: { kind: 'reply', request: 'ping', type: 'pong', id: 2 }, closes: false });
});

test('a second connect gets already_connected; with bad fields as well, either bad_message or already_connected', (t) => {
  const m = handshaken();
  t.deepEqual(one(m, json({ type: 'connect', protocol_version: 1, id: 5 })), errorOf(['already_connected'], 5));
  t.deepEqual(one(m, json({ type: 'connect', protocol_version: 2 })), errorOf(['already_connected']), 'no version check once connected');
  t.deepEqual(one(m, json({ type: 'connect', protocol_version: '1' })), errorOf(['bad_message', 'already_connected']));
  t.false(m.closed);
});

test('connect with a missing or wrongly typed field gets bad_message and stays unconnected', (t) => {
  for (const msg of [{ type: 'connect' }, { type: 'connect', protocol_version: '1' }, { type: 'connect', protocol_version: 1.5 }, { type: 'connect', protocol_version: 1, client_name: 42 }]) {
    const m = new ConnectionModel();
    t.deepEqual(one(m, json(msg)), errorOf(['bad_message']), JSON.stringify(msg));
    t.false(m.handshaken);
  }
});

test('JSON numbers are read as JSON reads them: protocol_version 1.0 and 1e0 are 1, id 1.0 is the integer 1', (t) => {
  t.like(one(new ConnectionModel(), frame('{"type":"connect","protocol_version":1.0}')).expect, { type: 'connected' });
  t.like(one(new ConnectionModel(), frame('{"type":"connect","protocol_version":1e0}')).expect, { type: 'connected' });
  t.like(one(handshaken(), frame('{"type":"ping","id":1.0}')).expect, { type: 'pong', id: 1 });
});

test('unsupported_version for another integer version, with the id, and the connection closes', (t) => {
  for (const v of [0, 2, -1, 1000]) {
    const m = new ConnectionModel();
    t.deepEqual(one(m, json({ type: 'connect', protocol_version: v, id: 9 })), { expect: { kind: 'error', codes: ['unsupported_version'], id: 9 }, closes: true });
    t.true(m.closed);
    t.deepEqual(m.push(json({ type: 'connect', protocol_version: 1 })), [], 'nothing is judged after the close');
  }
});

test('unknown_type after the handshake, with the id; prototype names are not types', (t) => {
  const m = handshaken();
  for (const type of ['frobnicate', 'constructor', '__proto__', 'toString', 'PING', 'pong', '']) t.deepEqual(one(m, json({ type, id: 3 })), errorOf(['unknown_type'], 3), type);
});

test('echo: the reply carries the id and the JSON of data; without data, bad_message', (t) => {
  const m = handshaken();
  t.deepEqual(one(m, json({ type: 'echo', id: 'e', data: { a: [1, 'é'] } })).expect, { kind: 'reply', request: 'echo', type: 'echo', id: 'e', echo: { field: 'data', json: '{"a":[1,"é"]}' } });
  t.like(one(m, json({ type: 'echo', data: null })).expect, { echo: { field: 'data', json: 'null' } });
  t.deepEqual(one(m, json({ type: 'echo', id: 4 })), errorOf(['bad_message'], 4));
});

test('echo data too deeply nested to encode gets internal (docs/protocol.md, internal)', (t) => {
  const m = handshaken();
  t.deepEqual(one(m, frame(`{"type":"echo","id":1,"data":${'['.repeat(200_000)}${']'.repeat(200_000)}}`)), errorOf(['internal'], 1));
});

test('extra fields, traceparent of any shape included, are ignored', (t) => {
  const m = handshaken();
  t.like(one(m, json({ type: 'status', id: 's', traceparent: 42, tracestate: {}, x: [1] })).expect, { type: 'status', id: 's' });
});

test('detach gets no reply and closes the connection', (t) => {
  const m = handshaken();
  t.deepEqual(one(m, json({ type: 'detach', id: 1 })), { expect: undefined, closes: true });
  t.true(m.closed);
});

// --- framing -------------------------------------------------------------------

test('split frames: the same predictions wherever the stream is cut, and none for a frame not yet complete', (t) => {
  const frames = [json({ type: 'connect', protocol_version: 1, id: 0 }), json({ type: 'ping', id: 1 }), frame(''), json({ type: 'echo', id: 2, data: 'x' }), json({ type: 'nope', id: 3 })];
  const stream = Buffer.concat(frames);
  const ends = frames.map((_, i) => Buffer.concat(frames.slice(0, i + 1)).length);
  const whole = new ConnectionModel().push(stream);
  t.deepEqual(whole.map((p) => (p.expect?.kind === 'error' ? p.expect.codes[0] : p.expect?.type)), ['connected', 'pong', 'bad_message', 'echo', 'unknown_type']);
  for (let i = 1; i < stream.length; i++) {
    const m = new ConnectionModel();
    const first = m.push(stream.subarray(0, i));
    const complete = ends.filter((e) => e <= i);
    t.is(first.length, complete.length, `split at ${i}: one prediction per complete frame`);
    t.is(m.pendingBytes, i - (complete.at(-1) ?? 0), `split at ${i}: the rest waits`);
    t.deepEqual([...first, ...m.push(stream.subarray(i))], whole, `split at ${i}`);
  }
});

test('frame_too_large as soon as the header exceeds maxFrameBytes, without an id, and the stream is closed', (t) => {
  const m = handshaken(PROTOCOL_V1);
  const small = new ConnectionModel(PROTOCOL_V1, { maxFrameBytes: 100 });
  small.push(json({ type: 'connect', protocol_version: 1 }));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(101);
  t.deepEqual(small.push(header), [{ expect: { kind: 'error', codes: ['frame_too_large'], id: undefined }, closes: true }]);
  t.true(small.closed);
  t.deepEqual(small.push(json({ type: 'ping', id: 1 })), [], 'the stream cannot be resynchronised: nothing after it is judged');
  t.is(small.pendingBytes, 0);
  // The default limit is the documented 16 MiB; a length of exactly the limit is a frame.
  const h2 = Buffer.alloc(4);
  h2.writeUInt32BE(16_777_216);
  t.deepEqual(m.push(h2), []);
  t.false(m.closed);
});

test('a frame of exactly maxFrameBytes is judged like any other', (t) => {
  const m = new ConnectionModel(PROTOCOL_V1, { maxFrameBytes: 64 });
  m.push(json({ type: 'connect', protocol_version: 1 }));
  const base = JSON.stringify({ type: 'ping', id: 'p', pad: '' }).length;
  const payload = Buffer.from(JSON.stringify({ type: 'ping', id: 'p', pad: 'x'.repeat(64 - base) }));
  t.is(payload.length, 64);
  t.like(one(m, frame(payload)).expect, { type: 'pong', id: 'p' });
});

test('clone() is independent: a frame tried on the clone leaves the original as it was', (t) => {
  const m = new ConnectionModel();
  const c = m.clone();
  c.push(json({ type: 'connect', protocol_version: 1 }));
  t.true(c.handshaken);
  t.false(m.handshaken);
});

// --- types come from the spec --------------------------------------------------

const LIST_CLIENTS = { list_clients: { reply: 'clients', replyFields: { clients: Array.isArray } } };

test('a type registered on top of v1 is served once it is in the spec, and unknown_type otherwise', (t) => {
  t.deepEqual(one(handshaken(), json({ type: 'list_clients', id: 1 })), errorOf(['unknown_type'], 1));
  const spec = withMessages(PROTOCOL_V1, LIST_CLIENTS);
  t.deepEqual(one(handshaken(spec), json({ type: 'list_clients', id: 1 })), { expect: { kind: 'reply', request: 'list_clients', type: 'clients', id: 1 }, closes: false });
  t.true(serverTypes(spec).has('clients'));
  t.false(serverTypes(PROTOCOL_V1).has('clients'));
});

test('an extension type follows its own spec: fields checked by kind, served before the handshake when it says so', (t) => {
  const spec = withMessages(PROTOCOL_V1, { hello: { reply: 'hi', beforeHandshake: true, fields: { n: { kind: 'integer', required: true }, s: { kind: 'string', required: false } } } });
  const m = new ConnectionModel(spec);
  t.like(one(m, json({ type: 'hello', n: 3 })).expect, { type: 'hi' });
  t.deepEqual(one(m, json({ type: 'hello' })), errorOf(['bad_message']));
  t.deepEqual(one(m, json({ type: 'hello', n: 3, s: 1 })), errorOf(['bad_message']));
  t.false(m.handshaken, 'serving it does not complete the handshake');
});

test('withMessages refuses a type the spec already has, as the server refuses to register it twice', (t) => {
  t.throws(() => withMessages(PROTOCOL_V1, { ping: { reply: 'pong2' } }), { message: /"ping" is already in the spec/ });
});

// --- checking what the server sent --------------------------------------------

test('checkServerFrame accepts documented messages and names what is wrong with others', (t) => {
  t.deepEqual(checkServerFrame(PROTOCOL_V1, Buffer.from('{"type":"pong","id":1}')), { type: 'pong', id: 1 });
  t.like(checkServerFrame(PROTOCOL_V1, Buffer.from('{"type":"shutdown","reason":"r","timeout_ms":1}')), { type: 'shutdown' });
  const problems: Array<[string | Buffer, RegExp]> = [
    ['', /empty frame/],
    [Buffer.from([0x7b, 0xc3, 0x7d]), /not valid UTF-8/],
    ['{"type":', /not JSON/],
    ['[1]', /non-object/],
    ['{"type":"clients","clients":[]}', /undocumented type/],
    ['{"type":"error","code":"oops","message":"m"}', /undocumented error code/],
    ['{"type":"error","code":"internal","message":""}', /error without a message/],
  ];
  for (const [payload, re] of problems) t.regex(checkServerFrame(PROTOCOL_V1, Buffer.from(payload)) as string, re, String(payload));
  t.like(checkServerFrame(withMessages(PROTOCOL_V1, LIST_CLIENTS), Buffer.from('{"type":"clients","clients":[]}')), { type: 'clients' });
});

const pong: Expect = { kind: 'reply', request: 'ping', type: 'pong', id: 1 };

test('mismatch: a right reply passes; a wrong type, id or error code is named', (t) => {
  t.is(mismatch(PROTOCOL_V1, { type: 'pong', id: 1 }, pong), undefined);
  t.regex(mismatch(PROTOCOL_V1, { type: 'status', id: 1 }, pong)!, /expected pong/);
  t.regex(mismatch(PROTOCOL_V1, { type: 'pong', id: 2 }, pong)!, /expected id 1/);
  t.regex(mismatch(PROTOCOL_V1, { type: 'pong', id: 1 }, { ...pong, id: undefined })!, /reply carries one/);
  t.regex(mismatch(PROTOCOL_V1, { type: 'error', code: 'internal', message: 'm' }, { kind: 'error', codes: ['bad_message', 'already_connected'], id: undefined })!, /expected error bad_message\|already_connected/);
  t.is(mismatch(PROTOCOL_V1, { type: 'error', code: 'already_connected', message: 'm' }, { kind: 'error', codes: ['bad_message', 'already_connected'], id: undefined }), undefined);
});

test('mismatch: echoed data must come back exactly', (t) => {
  const e: Expect = { kind: 'reply', request: 'echo', type: 'echo', id: undefined, echo: { field: 'data', json: '{"a":1}' } };
  t.is(mismatch(PROTOCOL_V1, { type: 'echo', data: { a: 1 } }, e), undefined);
  t.regex(mismatch(PROTOCOL_V1, { type: 'echo', data: { a: 2 } }, e)!, /data differs/);
});

test('mismatch: the documented fields of connected, status and unsupported_version are required', (t) => {
  const connected: Expect = { kind: 'reply', request: 'connect', type: 'connected', id: undefined };
  t.is(mismatch(PROTOCOL_V1, { type: 'connected', protocol_version: 1, server_version: '1.0.0', client_id: 3 }, connected), undefined);
  t.regex(mismatch(PROTOCOL_V1, { type: 'connected', protocol_version: 2, server_version: '1.0.0' }, connected)!, /malformed connected \(protocol_version, client_id\)/);
  const status: Expect = { kind: 'reply', request: 'status', type: 'status', id: undefined };
  t.is(mismatch(PROTOCOL_V1, { type: 'status', server_version: '1', uptime_ms: 5, clients: 1, draining: false }, status), undefined);
  t.regex(mismatch(PROTOCOL_V1, { type: 'status', server_version: '1', uptime_ms: 5.5, clients: 1, draining: 'no' }, status)!, /uptime_ms, draining/);
  const unsupported: Expect = { kind: 'error', codes: ['unsupported_version'], id: undefined };
  t.is(mismatch(PROTOCOL_V1, { type: 'error', code: 'unsupported_version', message: 'm', supported: [1], server_version: '1' }, unsupported), undefined);
  t.regex(mismatch(PROTOCOL_V1, { type: 'error', code: 'unsupported_version', message: 'm' }, unsupported)!, /without supported \[1\]/);
});
