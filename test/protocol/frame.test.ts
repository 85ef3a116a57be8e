import test from 'ava';
import { encodeFrame, FrameDecoder, FrameEncoder, JsonPayload, ReplyShape } from '../../src/protocol/index.js';

const msgs = [{ type: 'ping', id: 1 }, { type: 'echo', id: 'x', data: { s: 'héllo ✓', n: [1, 2, 3] } }, { type: 'status' }];
const stream = Buffer.concat(msgs.map((m) => encodeFrame(m)));
const decode = (frames: Buffer[]) => frames.map((f) => JSON.parse(f.toString('utf8')) as unknown);

test('decodes many frames delivered in one chunk, in order', (t) => {
  t.deepEqual(decode(new FrameDecoder().push(stream)), msgs);
});

test('decodes the same frames split at every byte position', (t) => {
  for (let i = 1; i < stream.length; i++) {
    const d = new FrameDecoder();
    const out = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i))];
    t.deepEqual(decode(out), msgs, `split at ${i}`);
    t.is(d.pendingBytes, 0);
  }
});

test('decodes a stream fed one byte at a time', (t) => {
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  for (const b of stream) out.push(...d.push(Buffer.from([b])));
  t.deepEqual(decode(out), msgs);
});

test('decodes random splits of a long stream (seeded)', (t) => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const many = Array.from({ length: 500 }, (_, i) => ({ type: 'echo', id: i, data: 'x'.repeat(Math.floor(rand() * 3000)) }));
  const all = Buffer.concat(many.map((m) => encodeFrame(m)));
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  for (let off = 0; off < all.length; ) {
    const n = 1 + Math.floor(rand() * 9000);
    out.push(...d.push(all.subarray(off, off + n)));
    off += n;
  }
  t.deepEqual(decode(out), many);
});

test('a zero-length frame is returned as an empty payload and decoding continues', (t) => {
  const d = new FrameDecoder();
  const out = d.push(Buffer.concat([Buffer.alloc(4), encodeFrame({ type: 'ping' })]));
  t.is(out.length, 2);
  t.is(out[0]?.length, 0);
  t.deepEqual(JSON.parse(out[1]!.toString()), { type: 'ping' });
});

test('a header over maxFrameBytes fails the decoder after returning the frames before it', (t) => {
  const d = new FrameDecoder({ maxFrameBytes: 1024 });
  const big = Buffer.alloc(4);
  big.writeUInt32BE(1025);
  const out = d.push(Buffer.concat([encodeFrame({ type: 'ping' }), big, encodeFrame({ type: 'status' })]));
  t.is(out.length, 1);
  t.is(d.state, 'failed');
  t.is(d.error?.code, 'FUGUE_ERR_FRAME_TOO_LARGE');
  t.deepEqual(d.push(encodeFrame({ type: 'ping' })), []);
});

test('length 2^32-1 is rejected without allocating it', (t) => {
  const d = new FrameDecoder();
  t.deepEqual(d.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2])), []);
  t.is(d.error?.code, 'FUGUE_ERR_FRAME_TOO_LARGE');
});

test('a frame of exactly maxFrameBytes is accepted', (t) => {
  const d = new FrameDecoder({ maxFrameBytes: 2048 });
  const payload = Buffer.alloc(2048, 0x20);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(2048);
  const out = d.push(Buffer.concat([h, payload]));
  t.is(out.length, 1);
  t.is(out[0]?.length, 2048);
});

test('pendingBytes reports an unfinished frame', (t) => {
  const d = new FrameDecoder();
  d.push(encodeFrame({ type: 'echo', data: 'abcdef' }).subarray(0, 9));
  t.is(d.pendingBytes, 9);
});

const framesOf = (jsons: string[]) => Buffer.concat(jsons.map((j) => encodeFrame(JSON.parse(j) as object)));

test('FrameEncoder: batches frame exactly, across slab boundaries, and earlier batches stay intact', (t) => {
  const enc = new FrameEncoder();
  const texts = (i: number) => [JSON.stringify({ type: 'echo', id: i, data: 'x'.repeat(i % 97) }), JSON.stringify({ type: 'echo', id: i, data: `é✓\u{1F600}${i}` })];
  const kept: Array<[Buffer, Buffer]> = [];
  // ~300 KB in all: several 64 KiB slabs are filled and replaced.
  for (let i = 0; i < 1500; i++) kept.push([enc.encode(texts(i).map((j) => new JsonPayload(j))), framesOf(texts(i))]);
  for (const [i, [got, exact]] of kept.entries()) t.true(got.equals(exact), `batch ${i}`);
  // A batch too large for the slab gets its own buffer, and decodes back (shaped replies too).
  const shaped = new ReplyShape('echo', 'data').payload(7, 'z'.repeat(20_000));
  const big = ['"' + 'y'.repeat(40_000) + '"', JSON.stringify({ n: 1 })];
  const out = new FrameDecoder().push(enc.encode([...big.map((j) => new JsonPayload(j)), shaped]));
  t.deepEqual(out.map((b) => b.toString('utf8')), [...big, JSON.stringify({ type: 'echo', id: 7, data: 'z'.repeat(20_000) })]);
});

test('a large payload gets a buffer of about its own size, not three times it', (t) => {
  const enc = new FrameEncoder();
  const json = JSON.stringify({ type: 'echo', data: 'é'.repeat(1_000_000) });
  const frame = enc.encode([new JsonPayload(json)]);
  t.is(frame.length, 4 + Buffer.byteLength(json));
  t.true(frame.buffer.byteLength < 1.1 * frame.length, `backing buffer ${frame.buffer.byteLength} bytes for a ${frame.length}-byte frame`);
});
