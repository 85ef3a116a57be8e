// Framing for protocol v1: <uint32 big-endian length L><L bytes of UTF-8 JSON>.
// See docs/protocol.md, "Framing". Pure: no I/O, no timers.
//
// The decoder never concatenates the whole receive buffer. Frames that lie inside
// one chunk are handed out in place (buffer, start, end); only a frame that spans chunks
// is copied, once, into a buffer of its exact size. So the cost is linear in the
// bytes received whatever the read sizes are.

import { frameTooLarge, type FugueError } from '../errors.js';
import { SHAPED_ID_TEXT, type ShapedReply } from './messages.js';
import { utf8Write } from './utf8.js';

export const HEADER_BYTES = 4;
/** Default and contract value of limits.maxFrameBytes (16 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type DecoderState = 'header' | 'body' | 'failed';

export interface FrameDecoderOptions {
  /** Largest payload accepted, in bytes. Default: 16777216. */
  maxFrameBytes?: number;
}

export class FrameDecoder {
  /** Largest payload accepted, in bytes; a change applies from the next frame header. */
  maxFrameBytes: number;
  #state: DecoderState = 'header';
  // Partial header bytes, when a header is split across chunks (made on first need:
  // most connections never split one, and idle ones should cost little).
  #header: Buffer | undefined;
  #headerFilled = 0;
  // Body being assembled across chunks.
  #body: Buffer | undefined;
  #bodyFilled = 0;
  #error: FugueError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  get state(): DecoderState {
    return this.#state;
  }

  /** Set once a frame over the limit was seen; the stream cannot be resynchronised after it. */
  get error(): FugueError | undefined {
    return this.#error;
  }

  /** Bytes of an unfinished frame held right now (header and body). */
  get pendingBytes(): number {
    if (this.#state === 'body') return HEADER_BYTES + this.#bodyFilled;
    return this.#headerFilled;
  }

  /**
   * Feed one chunk; returns the payloads of the frames it completed, in order.
   * After an over-limit frame the decoder is `failed`: it returns the frames that
   * came before the bad header and ignores everything after it.
   */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.feed(chunk, (buf, start, end) => {
      out.push(buf.subarray(start, end));
    });
    return out;
  }

  /**
   * Feed one chunk and call `onFrame(buf, start, end)` for each frame it
   * completes, in order: the payload is `buf[start, end)`, valid during the call
   * (keep `buf.subarray(start, end)` to hold on to it). The hot path of the
   * server: no view or array is allocated per frame.
   */
  feed(chunk: Buffer, onFrame: (buf: Buffer, start: number, end: number) => void): void {
    let off = 0;
    const len = chunk.length;
    while (off < len && this.#state !== 'failed') {
      if (this.#state === 'header') {
        let frameLen: number;
        if (this.#headerFilled === 0 && len - off >= HEADER_BYTES) {
          frameLen = chunk.readUInt32BE(off);
          off += HEADER_BYTES;
        } else {
          const header = (this.#header ??= Buffer.allocUnsafe(HEADER_BYTES));
          const n = Math.min(HEADER_BYTES - this.#headerFilled, len - off);
          chunk.copy(header, this.#headerFilled, off, off + n);
          this.#headerFilled += n;
          off += n;
          if (this.#headerFilled < HEADER_BYTES) break;
          this.#headerFilled = 0;
          frameLen = header.readUInt32BE(0);
        }
        if (frameLen > this.maxFrameBytes) {
          this.#state = 'failed';
          this.#error = frameTooLarge(frameLen, this.maxFrameBytes);
          break;
        }
        if (len - off >= frameLen) {
          // Whole body in this chunk: no copy.
          off += frameLen;
          onFrame(chunk, off - frameLen, off);
          continue;
        }
        this.#body = Buffer.allocUnsafe(frameLen);
        this.#bodyFilled = 0;
        this.#state = 'body';
      } else {
        const body = this.#body as Buffer;
        const n = Math.min(body.length - this.#bodyFilled, len - off);
        chunk.copy(body, this.#bodyFilled, off, off + n);
        this.#bodyFilled += n;
        off += n;
        if (this.#bodyFilled === body.length) {
          this.#body = undefined;
          this.#state = 'header';
          onFrame(body, 0, body.length);
        }
      }
    }
  }
}

/** Encode one message object as a frame. */
export function encodeFrame(message: object): Buffer {
  return encodeJsonFrame(JSON.stringify(message));
}

/** Frame an already-serialised JSON text. */
export function encodeJsonFrame(json: string): Buffer {
  const bytes = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafe(HEADER_BYTES + bytes);
  buf.writeUInt32BE(bytes, 0);
  buf.write(json, HEADER_BYTES, 'utf8');
  return buf;
}

/**
 * Frame many serialised messages into one buffer of exact size: one allocation
 * and one `write()` for a whole batch of replies (write coalescing).
 */
export function encodeJsonFrames(jsons: readonly string[]): Buffer {
  if (jsons.length === 1) return encodeJsonFrame(jsons[0] as string);
  const sizes = new Array<number>(jsons.length);
  let total = 0;
  for (let i = 0; i < jsons.length; i++) {
    const n = Buffer.byteLength(jsons[i] as string);
    sizes[i] = n;
    total += HEADER_BYTES + n;
  }
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < jsons.length; i++) {
    buf.writeUInt32BE(sizes[i] as number, off);
    off += HEADER_BYTES;
    off += buf.write(jsons[i] as string, off, 'utf8');
  }
  return buf;
}

const SLAB_BYTES = 64 * 1024;
// Batches that may need more than this get a buffer of their own, of exact size.
const SLAB_BATCH_MAX = SLAB_BYTES / 4;
const ID_KEY = Buffer.from(SHAPED_ID_TEXT);
const CLOSE_BRACE = 0x7d;

/** A reply ready to frame: JSON text, or a shaped reply whose value is already serialised. */
export type EncodedReply = string | ShapedReply;

/**
 * Frames batches of replies straight into a shared slab: no
 * `Buffer.byteLength` pass over every text and no allocation per batch (a new
 * slab every 64 KiB). A ShapedReply is written as its precomputed bytes, its
 * id's digits and its value's JSON, without ever becoming one string. Each
 * batch is a view of a region that is never written again, so it stays valid
 * for as long as a socket holds it (which keeps its slab alive: at most 64 KiB
 * per client whose replies are still queued).
 */
export class FrameEncoder {
  #slab = Buffer.allocUnsafe(SLAB_BYTES);
  #off = 0;

  encode(replies: readonly EncodedReply[]): Buffer {
    // Upper bound of the encoded size: UTF-8 takes at most 3 bytes per UTF-16 unit.
    let bound = 0;
    for (let i = 0; i < replies.length; i++) bound += HEADER_BYTES + maxBytes(replies[i] as EncodedReply);
    if (bound > SLAB_BATCH_MAX) return encodeJsonFrames(replies.map((r) => (typeof r === 'string' ? r : r.text())));
    if (SLAB_BYTES - this.#off < bound) {
      this.#slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.#off = 0;
    }
    const slab = this.#slab;
    const start = this.#off;
    let off = start;
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i] as EncodedReply;
      const body = off + HEADER_BYTES;
      const end = typeof r === 'string' ? body + utf8Write(slab, r, body) : writeShaped(slab, r, body);
      slab.writeUInt32BE(end - body, off);
      off = end;
    }
    this.#off = off;
    return slab.subarray(start, off);
  }
}

function maxBytes(r: EncodedReply): number {
  if (typeof r === 'string') return 3 * r.length;
  // head + `,"id":` + a safe integer's 16 characters or a string id's JSON + field + value + `}`
  const id = r.id === undefined ? 0 : ID_KEY.length + (typeof r.id === 'number' ? 16 : 6 * r.id.length + 2);
  return r.shape.head.length + id + r.shape.field.length + (r.json === undefined ? 0 : 3 * r.json.length) + 1;
}

// Short byte runs are copied in JS: cheaper than a native call for ~10 bytes.
function putBytes(slab: Buffer, at: number, bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) slab[at + i] = bytes[i] as number;
  return at + bytes.length;
}

// The decimal digits of a safe integer (what JSON.stringify gives; -0 is "0").
function putInteger(slab: Buffer, at: number, n: number): number {
  if (n < 0) {
    slab[at++] = 0x2d;
    n = -n;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    slab[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

function writeShaped(slab: Buffer, r: ShapedReply, at: number): number {
  at = putBytes(slab, at, r.shape.head);
  const id = r.id;
  if (id !== undefined) {
    at = putBytes(slab, at, ID_KEY);
    at = typeof id === 'number' ? putInteger(slab, at, id) : at + utf8Write(slab, JSON.stringify(id), at);
  }
  if (r.json !== undefined) {
    at = putBytes(slab, at, r.shape.field);
    at += utf8Write(slab, r.json, at);
  }
  slab[at] = CLOSE_BRACE;
  return at + 1;
}
