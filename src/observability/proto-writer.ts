// A minimal protobuf (proto3 wire format) writer for the OTLP trace messages
// fugue-server exports itself (lean-spans.ts). Only what those need: varints,
// fixed64, length-delimited bytes and strings, nested messages. Pure: no I/O.
// https://protobuf.dev/programming-guides/encoding/

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

/** The bytes of a varint-encoded tag for `field` with `wire` type. */
function tagBytes(field: number, wire: number): number[] {
  return varintBytes((field << 3) | wire);
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** A growable buffer with protobuf primitives; `bytes()` is a view of what was written. */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A non-negative integer below 2^53. */
  varint(n: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (n > 0x7f) {
      b[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    b[p++] = n;
    this.pos = p;
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  raw(bytes: Uint8Array, start = 0, end = bytes.length): void {
    const n = end - start;
    this.ensure(n);
    if (n <= 64) {
      // Short runs: a JS loop is cheaper than a native call.
      for (let i = 0; i < n; i++) this.buf[this.pos + i] = bytes[start + i] as number;
    } else {
      // Buffer#copy: native, and no view object made for the source range.
      Buffer.prototype.copy.call(bytes, this.buf, this.pos, start, end);
    }
    this.pos += n;
  }

  /** A whole KeyValue field `field` whose key part (`keyPart`: 0x0A, length, key) is precomputed and whose value is a non-negative integer. */
  intKeyValue(field: number, keyPart: Buffer, value: number): void {
    const anyLen = 1 + varintLength(value);
    this.tag(field, WIRE_LEN);
    this.varint(keyPart.length + 2 + anyLen);
    this.raw(keyPart);
    this.ensure(2);
    this.buf[this.pos++] = 0x12; // value (2), AnyValue
    this.buf[this.pos++] = anyLen;
    this.varintField(3, value); // int_value (3)
  }

  /** The same with a string value: a safe integer's decimal digits (no string made), or a string. */
  stringKeyValue(field: number, keyPart: Buffer, value: string | number): void {
    if (typeof value === 'number') {
      const digits = decimalLength(value);
      const anyLen = 2 + digits;
      this.tag(field, WIRE_LEN);
      this.varint(keyPart.length + 2 + anyLen);
      this.raw(keyPart);
      this.ensure(4 + digits);
      const b = this.buf;
      b[this.pos++] = 0x12; // value (2), AnyValue
      b[this.pos++] = anyLen;
      b[this.pos++] = 0x0a; // string_value (1)
      b[this.pos++] = digits;
      let n = Math.abs(value);
      for (let i = this.pos + digits - 1; i >= this.pos + (value < 0 ? 1 : 0); i--) {
        b[i] = 0x30 + (n % 10);
        n = Math.floor(n / 10);
      }
      if (value < 0) b[this.pos] = 0x2d;
      this.pos += digits;
      return;
    }
    const n = Buffer.byteLength(value);
    const anyLen = 1 + varintLength(n) + n;
    this.tag(field, WIRE_LEN);
    this.varint(keyPart.length + 1 + varintLength(anyLen) + anyLen);
    this.raw(keyPart);
    this.tag(2, WIRE_LEN);
    this.varint(anyLen);
    this.stringField(1, value); // string_value (1)
  }

  /** Field `field`, length-delimited, from `bytes[start, end)`. */
  bytesField(field: number, bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.tag(field, WIRE_LEN);
    this.varint(end - start);
    this.raw(bytes, start, end);
  }

  stringField(field: number, text: string): void {
    const n = Buffer.byteLength(text);
    this.tag(field, WIRE_LEN);
    this.varint(n);
    this.ensure(n);
    this.buf.write(text, this.pos, 'utf8');
    this.pos += n;
  }

  varintField(field: number, n: number): void {
    this.tag(field, WIRE_VARINT);
    this.varint(n);
  }

  /** A fixed64 field from its low and high 32 bits. */
  fixed64Field(field: number, lo: number, hi: number): void {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeUInt32LE(lo >>> 0, this.pos);
    this.buf.writeUInt32LE(hi >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** Field `field` holding `inner`'s bytes as a nested message. */
  messageField(field: number, inner: ProtoWriter): void {
    this.bytesField(field, inner.buf, 0, inner.pos);
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Characters of a safe integer in decimal (with its minus sign), as String(n) has. */
function decimalLength(n: number): number {
  let len = n < 0 ? 2 : 1;
  for (let x = Math.abs(n); x >= 10; x = Math.floor(x / 10)) len++;
  return len;
}

/** Bytes of `n` as a varint. */
export function varintLength(n: number): number {
  let len = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** The key part of a KeyValue (field 1: the key), for intKeyValue/stringKeyValue. */
export function keyPart(key: string): Buffer {
  const w = new ProtoWriter(64);
  w.stringField(1, key);
  return Buffer.from(w.bytes());
}

/** The whole encoding of field `field` holding `body` (length-delimited), as a Buffer. */
export function lengthDelimited(field: number, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...tagBytes(field, WIRE_LEN), ...varintBytes(body.length)]), body]);
}

/** The header (tag and length) of field `field` with a length-delimited body of `length` bytes. */
export function lengthHeader(field: number, length: number): Buffer {
  return Buffer.from([...tagBytes(field, WIRE_LEN), ...varintBytes(length)]);
}

/** An OTLP AnyValue. */
export type OtlpValue = string | number | boolean;

/** common.v1.KeyValue{key, value: AnyValue} as a whole field `field` of its parent. */
export function keyValueField(field: number, key: string, value: OtlpValue): Buffer {
  const any = new ProtoWriter(64);
  if (typeof value === 'string') any.stringField(1, value);
  else if (typeof value === 'boolean') any.varintField(2, value ? 1 : 0);
  else if (Number.isSafeInteger(value) && value >= 0) any.varintField(3, value);
  else {
    // double_value (4), fixed64
    const d = Buffer.allocUnsafe(8);
    d.writeDoubleLE(value, 0);
    any.tag(4, WIRE_FIXED64);
    any.raw(d);
  }
  const kv = new ProtoWriter(64);
  kv.stringField(1, key);
  kv.messageField(2, any);
  return lengthDelimited(field, kv.bytes());
}
