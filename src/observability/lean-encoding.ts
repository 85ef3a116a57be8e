// One message span, encoded straight into OTLP protobuf (the lean span path,
// lean-spans.ts, batches and sends them): a few fixed fields, precomputed
// bytes for everything that repeats (names, attribute keys, outcomes,
// statuses), ids from a random pool, exact fixed64 times without BigInt, no
// object per span. The attributes come from the table both span paths share
// (span-attributes.ts).

import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { keyPart, keyValueField, lengthDelimited, ProtoWriter } from './proto-writer.js';
import { clip, MESSAGE_SPAN_ATTRIBUTES, type MessageSpanFacts } from './span-attributes.js';

const SPAN_KIND_SERVER = Buffer.from([0x30, 0x02]); // field 6 (kind), varint 2
// flags (field 16 of Span, 6 of Link), fixed32: sampled | "is_remote is known" (| is_remote), as the SDK writes them.
const SPAN_FLAGS_LOCAL = Buffer.from([0x85, 0x01, 0x01, 0x01, 0x00, 0x00]);
const SPAN_FLAGS_REMOTE = Buffer.from([0x85, 0x01, 0x01, 0x03, 0x00, 0x00]);
const LINK_FLAGS_LOCAL = Buffer.from([0x35, 0x01, 0x01, 0x00, 0x00]);
const ID_BYTES = 24; // 16 trace + 8 span
const POOL_SPANS = 2048;

/** A span another one hangs from or links to: its raw ids, and whether it came from a client's traceparent. */
export interface LeanParent {
  traceId: Uint8Array;
  spanId: Uint8Array;
  remote: boolean;
  /** The client's tracestate, for a remote parent. */
  traceState?: string | undefined;
}

/** The ids of a recorded span, as hex, read while the call that returned it runs. */
export interface LeanSpanIds {
  readonly traceId: string;
  readonly spanId: string;
}

/** One finished message span: its attributes' facts (span-attributes.ts), times and relations. */
export interface LeanMessageSpan extends MessageSpanFacts {
  /** performance.now() times, in ms. */
  startMs: number;
  endMs: number;
  parent: LeanParent | undefined;
  link: LeanParent | undefined;
}

/** Writes one attribute of a message span (field 9 of Span), or nothing when it has no value. */
type AttributeWriter = (w: ProtoWriter, s: MessageSpanFacts) => void;

// The attribute table compiled once into writers: constants and small sets of
// strings are encoded once (per value), integers and texts written in place.
function attributeWriters(): AttributeWriter[] {
  return MESSAGE_SPAN_ATTRIBUTES.map((a): AttributeWriter => {
    switch (a.kind) {
      case 'constant': {
        const field = keyValueField(9, a.key, a.value({} as MessageSpanFacts) as string);
        return (w) => w.raw(field);
      }
      case 'enum': {
        const fields = new Map<string, Buffer>();
        return (w, s) => {
          const v = a.value(s);
          if (v === undefined) return;
          let field = fields.get(v as string);
          if (field === undefined) fields.set(v as string, (field = keyValueField(9, a.key, String(v))));
          w.raw(field);
        };
      }
      case 'int': {
        const key = keyPart(a.key);
        return (w, s) => w.intKeyValue(9, key, a.value(s) as number);
      }
      case 'text': {
        const key = keyPart(a.key);
        return (w, s) => {
          const v = a.value(s);
          if (v !== undefined) w.stringKeyValue(9, key, typeof v === 'number' ? v : clip(v));
        };
      }
    }
  });
}

/** Encodes message spans; one per exporter. */
export class SpanEncoder {
  #pool = Buffer.allocUnsafe(POOL_SPANS * ID_BYTES);
  #poolAt = POOL_SPANS * ID_BYTES;
  // Precomputed fields: names and statuses by label and error code; the attributes' writers.
  #names = new Map<string, Buffer>();
  #statuses = new Map<string, Buffer>();
  readonly #attributes = attributeWriters();
  readonly #timeOrigin: TimeOrigin = splitMs(performance.timeOrigin);
  // Reused for every span: the caller reads it at once (an exemplar), or not at all.
  #ids = new RecordedIds();

  /** Write span `s` into `w` (reset first); returns its ids, valid until the next call. */
  encode(w: ProtoWriter, s: LeanMessageSpan): LeanSpanIds {
    const ids = this.#nextIds();
    const pool = this.#pool;
    w.reset();
    // trace_id (1): the parent's, or a new one; span_id (2): new.
    if (s.parent !== undefined) w.bytesField(1, s.parent.traceId);
    else w.bytesField(1, pool, ids, ids + 16);
    w.bytesField(2, pool, ids + 16, ids + ID_BYTES);
    if (s.parent?.traceState !== undefined) w.stringField(3, s.parent.traceState);
    if (s.parent !== undefined) w.bytesField(4, s.parent.spanId);
    w.raw(this.#name(s.name));
    w.raw(SPAN_KIND_SERVER);
    this.#time(w, 7, s.startMs);
    this.#time(w, 8, s.endMs);
    // attributes (9), from the table both span paths share
    const attributes = this.#attributes;
    for (let i = 0; i < attributes.length; i++) (attributes[i] as AttributeWriter)(w, s);
    // links (13): Link{trace_id(1), span_id(2), flags(6)}, 33 bytes (2 + 16, 2 + 8, 5)
    if (s.link !== undefined) {
      w.tag(13, 2);
      w.varint(2 + 16 + 2 + 8 + LINK_FLAGS_LOCAL.length);
      w.bytesField(1, s.link.traceId);
      w.bytesField(2, s.link.spanId);
      w.raw(LINK_FLAGS_LOCAL);
    }
    // status (15): ERROR with the code as its message
    if (s.errorCode !== undefined) w.raw(this.#status(s.errorCode));
    w.raw(s.parent?.remote === true ? SPAN_FLAGS_REMOTE : SPAN_FLAGS_LOCAL);
    return this.#ids.point(pool, ids, s.parent);
  }

  #nextIds(): number {
    if (this.#poolAt + ID_BYTES > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#poolAt = 0;
    }
    const at = this.#poolAt;
    this.#poolAt += ID_BYTES;
    return at;
  }

  // fixed64 unix nanoseconds from a performance.now() time in ms.
  #time(w: ProtoWriter, field: number, ms: number): void {
    const [lo, hi] = unixNanos(this.#timeOrigin, ms);
    w.fixed64Field(field, lo, hi);
  }

  #name(label: string): Buffer {
    let b = this.#names.get(label);
    if (b === undefined) {
      const w = new ProtoWriter(64);
      w.stringField(5, label);
      b = Buffer.from(w.bytes());
      this.#names.set(label, b);
    }
    return b;
  }

  #status(code: string): Buffer {
    let b = this.#statuses.get(code);
    if (b === undefined) {
      const w = new ProtoWriter(64);
      w.stringField(2, code);
      w.varintField(3, 2); // STATUS_CODE_ERROR
      b = lengthDelimited(15, w.bytes());
      this.#statuses.set(code, b);
    }
    return b;
  }

}

/** The ids of the span just recorded, as hex, made only when read. */
class RecordedIds implements LeanSpanIds {
  #pool: Buffer = Buffer.alloc(0);
  #at = 0;
  #parent: LeanParent | undefined;

  point(pool: Buffer, at: number, parent: LeanParent | undefined): this {
    this.#pool = pool;
    this.#at = at;
    this.#parent = parent;
    return this;
  }

  get traceId(): string {
    const p = this.#parent;
    return p === undefined ? this.#pool.toString('hex', this.#at, this.#at + 16) : Buffer.from(p.traceId).toString('hex');
  }

  get spanId(): string {
    return this.#pool.toString('hex', this.#at + 16, this.#at + ID_BYTES);
  }
}


/** A time origin split for unixNanos(). */
export interface TimeOrigin {
  hi: number;
  lo: number;
  fracNs: number;
}

/**
 * Unix nanoseconds of `origin` + `ms` (a performance.now() time), as the low
 * and high 32 bits of a fixed64, without BigInt: every intermediate stays
 * below 2^53 for 104 days of uptime.
 */
export function unixNanos(origin: TimeOrigin, ms: number): [lo: number, hi: number] {
  const whole = Math.floor(ms);
  const add = whole * 1e6 + Math.round((ms - whole) * 1e6) + origin.fracNs;
  let lo = origin.lo + (add % 0x1_0000_0000);
  const hi = origin.hi + Math.floor(add / 0x1_0000_0000) + Math.floor(lo / 0x1_0000_0000);
  lo %= 0x1_0000_0000;
  return [lo, hi];
}

/** performance.timeOrigin (ms since the epoch, with a fraction) split for unixNanos(). */
export function splitMs(ms: number): TimeOrigin {
  const whole = Math.floor(ms);
  const ns = BigInt(whole) * 1_000_000n;
  return { hi: Number(ns >> 32n), lo: Number(ns & 0xffff_ffffn), fracNs: Math.round((ms - whole) * 1e6) };
}
