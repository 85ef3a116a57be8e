// UTF-8 text <-> bytes on the hot path. Buffer#toString('utf8', start, end) and
// Buffer#write(text, offset) check and normalise their arguments, then call the
// buffer's own utf8Slice / utf8Write. Those two are undocumented but present in
// every Node release (protobufjs calls utf8Slice the same way); calling them
// directly saves a few percent of the echo path. If they ever go, the public
// methods take over.

interface Utf8Methods {
  utf8Slice?(start: number, end: number): string;
  utf8Write?(text: string, offset: number): number;
}

const proto = Buffer.prototype as Utf8Methods;
const hasSlice = typeof proto.utf8Slice === 'function';
const hasWrite = typeof proto.utf8Write === 'function';

/** `buf[start, end)` decoded as UTF-8 (invalid sequences become U+FFFD). */
export function utf8Slice(buf: Buffer, start: number, end: number): string {
  return hasSlice ? (buf as Utf8Methods).utf8Slice!(start, end) : buf.toString('utf8', start, end);
}

/** Write `text` as UTF-8 at `offset`; returns the bytes written. The caller ensures room. */
export function utf8Write(buf: Buffer, text: string, offset: number): number {
  return hasWrite ? (buf as Utf8Methods).utf8Write!(text, offset) : buf.write(text, offset, 'utf8');
}

/** Above this many UTF-16 units, `utf8Bound` measures instead of estimating. */
const EXACT_ABOVE = 4096;

/**
 * An upper bound of the UTF-8 bytes of `text`: 3 per UTF-16 unit for short
 * texts (no pass over them), the exact count for long ones (so a large
 * payload's buffer is not three times its size).
 */
export function utf8Bound(text: string): number {
  return text.length > EXACT_ABOVE ? Buffer.byteLength(text, 'utf8') : 3 * text.length;
}
