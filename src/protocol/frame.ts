// Framing for protocol v1: <uint32 big-endian length L><L bytes of UTF-8 JSON>.
// See docs/protocol.md, "Framing". Pure: no I/O, no timers.
//
// The decoder never concatenates the whole receive buffer. Frames that lie inside
// one chunk are handed out in place (buffer, start, end); only a frame that spans chunks
// is copied, once, into a buffer of its exact size. So the cost is linear in the
// bytes received whatever the read sizes are.

import { frameTooLarge, type FugueError } from '../errors.js';
import { utf8Bound, utf8Write } from './utf8.js';

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
 * Anything that can be framed: a payload that knows an upper bound of its
 * size and can write itself. The framer knows bytes, not messages (as
 * undici's websocket frame.js does): a serialised JSON text (JsonPayload) and
 * a precomputed reply (reply-shape.ts) are two implementations, and a feature
 * may add its own.
 */
export interface Frameable {
  /**
   * An upper bound of the bytes `writeTo` writes. Keep it tight for large
   * payloads (exact above a few KiB, as `utf8Bound` is): a large batch gets a
   * buffer of the summed bounds.
   */
  maxBytes(): number;
  /** Write the payload into `buf` at `at`, where maxBytes() bytes are free; return the offset after the last byte written. */
  writeTo(buf: Buffer, at: number): number;
}

/** A serialised JSON text, ready to frame. */
export class JsonPayload implements Frameable {
  readonly json: string;
  constructor(json: string) {
    this.json = json;
  }
  maxBytes(): number {
    return utf8Bound(this.json);
  }
  writeTo(buf: Buffer, at: number): number {
    return at + utf8Write(buf, this.json, at);
  }
}

const SLAB_BYTES = 64 * 1024;
// Batches that may need more than this get a buffer of their own.
const SLAB_BATCH_MAX = SLAB_BYTES / 4;

/**
 * Frames batches of payloads into one buffer each: a shared 64 KiB slab for
 * small batches (no allocation per batch, a new slab every 64 KiB), a buffer
 * of the summed bounds for large ones. Each batch is a view of a region that
 * is never written again, so it stays valid for as long as a socket holds it
 * (which keeps its slab alive: at most 64 KiB per client whose writes are
 * still queued).
 */
export class FrameEncoder {
  #slab = Buffer.allocUnsafe(SLAB_BYTES);
  #off = 0;

  encode(items: readonly Frameable[]): Buffer {
    let bound = 0;
    for (let i = 0; i < items.length; i++) bound += HEADER_BYTES + (items[i] as Frameable).maxBytes();
    let buf: Buffer;
    let start: number;
    if (bound > SLAB_BATCH_MAX) {
      buf = Buffer.allocUnsafe(bound);
      start = 0;
    } else {
      if (SLAB_BYTES - this.#off < bound) {
        this.#slab = Buffer.allocUnsafe(SLAB_BYTES);
        this.#off = 0;
      }
      buf = this.#slab;
      start = this.#off;
    }
    let off = start;
    for (let i = 0; i < items.length; i++) {
      const body = off + HEADER_BYTES;
      const end = (items[i] as Frameable).writeTo(buf, body);
      buf.writeUInt32BE(end - body, off);
      off = end;
    }
    if (buf === this.#slab) this.#off = off;
    return buf.subarray(start, off);
  }
}
