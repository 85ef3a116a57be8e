// The lean span path: message spans exported over OTLP/HTTP (protobuf)
// without the OpenTelemetry SDK's span objects. At 100 % sampling the SDK
// spent about 4 µs making each span and 9 µs serialising it, and its queue
// dropped most spans (docs/performance.md). Here a message span is encoded
// straight into the protobuf body of the next export request when its event
// arrives: a few fixed fields, precomputed bytes for everything that repeats
// (names, attribute keys, outcomes), ids from a random pool, no object per
// span. The result is the standard ExportTraceServiceRequest any collector
// reads; test/observability/lean-spans.test.ts decodes it and compares it
// with what the SDK exports for the same messages.
//
// Bounded: at most MAX_QUEUED request bodies wait while EXPORT_CONCURRENCY
// are in flight; beyond that new spans are dropped and counted
// (fugue_spans_dropped_total), never buffered without bound.

import { randomFillSync } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { keyPart, keyValueField, lengthDelimited, lengthHeader, ProtoWriter, type OtlpValue } from './proto-writer.js';
import { clip, MESSAGE_SPAN_ATTRIBUTES, type MessageSpanFacts } from './span-attributes.js';
import { EXPORT_CONCURRENCY } from './tracing-settings.js';

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

/** Spans per export request at most. */
const MAX_BATCH_SPANS = 4096;
/** A request body is sent once it reaches this size. */
const MAX_BATCH_BYTES = 2 * 1024 * 1024;
/** A span waits at most this long before its request is sent, in ms. */
const BATCH_DELAY_MS = 500;
/** Request bodies waiting for a free slot; beyond this, spans are dropped. */
const MAX_QUEUED = 8;

const SPAN_KIND_SERVER = Buffer.from([0x30, 0x02]); // field 6 (kind), varint 2
// flags (field 16 of Span, 6 of Link), fixed32: sampled | "is_remote is known" (| is_remote), as the SDK writes them.
const SPAN_FLAGS_LOCAL = Buffer.from([0x85, 0x01, 0x01, 0x01, 0x00, 0x00]);
const SPAN_FLAGS_REMOTE = Buffer.from([0x85, 0x01, 0x01, 0x03, 0x00, 0x00]);
const LINK_FLAGS_LOCAL = Buffer.from([0x35, 0x01, 0x01, 0x00, 0x00]);
const ID_BYTES = 24; // 16 trace + 8 span
const POOL_SPANS = 2048;

export interface LeanSpanOptions {
  /** The full URL of the traces endpoint (…/v1/traces). */
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** The resource's attributes (as the SDK would export them), read once `ready` has settled. */
  resource(): Record<string, OtlpValue>;
  /** Settles when the resource's attributes are complete (detectors may be asynchronous); nothing is sent before. */
  ready: Promise<void>;
  scope: { name: string; version: string };
  /** Spans that will never be delivered (queue full, request failed). */
  onDrop(count: number, err?: Error): void;
}

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

interface Batch {
  /** The spans, each a whole `spans` field of ScopeSpans. */
  body: Buffer;
  spans: number;
}

export class LeanSpanExporter {
  #options: LeanSpanOptions;
  #agent: HttpAgent;
  #post: (url: URL, options: RequestOptions, onResponse: (res: IncomingMessage) => void) => ClientRequest;
  #url: URL;
  #head: Buffer | undefined; // the Resource field, encoded once it is complete
  // The spans of the request being built: each a whole `spans` field of ScopeSpans.
  #spans = new ProtoWriter(256 * 1024);
  #count = 0;
  #scratch = new ProtoWriter(1024);
  #timer: NodeJS.Timeout | undefined;
  #queue: Batch[] = [];
  #inFlight = 0;
  #idle: Array<() => void> = [];
  #pool = Buffer.allocUnsafe(POOL_SPANS * ID_BYTES);
  #poolAt = POOL_SPANS * ID_BYTES;
  #closed = false;
  // Precomputed fields: names and statuses by label and error code; the attributes' writers.
  #names = new Map<string, Buffer>();
  #statuses = new Map<string, Buffer>();
  readonly #attributes = attributeWriters();
  #timeOrigin: TimeOrigin;
  // Reused for every span: the caller reads it at once (an exemplar), or not at all.
  #ids = new RecordedIds();

  constructor(options: LeanSpanOptions) {
    this.#options = options;
    this.#url = new URL(options.url);
    const https = this.#url.protocol === 'https:';
    this.#agent = https
      ? new HttpsAgent({ keepAlive: true, maxSockets: EXPORT_CONCURRENCY, maxFreeSockets: EXPORT_CONCURRENCY })
      : new HttpAgent({ keepAlive: true, maxSockets: EXPORT_CONCURRENCY, maxFreeSockets: EXPORT_CONCURRENCY });
    this.#post = https ? httpsRequest : httpRequest;
    const scope = new ProtoWriter(128);
    scope.stringField(1, options.scope.name);
    scope.stringField(2, options.scope.version);
    this.#scopeField = lengthDelimited(1, scope.bytes());
    this.#ready = options.ready.then(() => {
      const resource = new ProtoWriter(1024);
      for (const [k, v] of Object.entries(options.resource())) resource.raw(keyValueField(1, k, v));
      this.#head = lengthDelimited(1, resource.bytes());
    });
    this.#timeOrigin = splitMs(performance.timeOrigin);
  }

  readonly #scopeField: Buffer;
  readonly #ready: Promise<void>;

  /** Record one finished message span; returns its ids (valid during the caller's turn), or undefined when it was dropped. */
  message(s: LeanMessageSpan): LeanSpanIds | undefined {
    if (this.#closed) return undefined;
    if (this.#inFlight >= EXPORT_CONCURRENCY && this.#queue.length >= MAX_QUEUED) {
      // Every slot is taken: not worth encoding a span that would be dropped with its request.
      this.#options.onDrop(1);
      return undefined;
    }
    const ids = this.#nextIds();
    const pool = this.#pool;
    const w = this.#scratch;
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
    this.#spans.messageField(2, w);
    this.#count++;
    if (this.#count >= MAX_BATCH_SPANS || this.#spans.pos >= MAX_BATCH_BYTES) this.#seal();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.#seal(), BATCH_DELAY_MS).unref();
    return this.#ids.point(pool, ids, s.parent);
  }

  /** Send what is pending and wait, at most `timeoutMs`, for every request to finish. Never rejects. */
  async flush(timeoutMs: number): Promise<void> {
    this.#seal();
    if (this.#inFlight === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, timeoutMs));
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Flush (bounded), then stop: later spans are not recorded. */
  async shutdown(timeoutMs: number): Promise<void> {
    await this.flush(timeoutMs);
    this.#closed = true;
    const lost = this.#queue.reduce((n, b) => n + b.spans, 0);
    this.#queue = [];
    if (lost > 0) this.#options.onDrop(lost);
    this.#agent.destroy();
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

  // Close the request being built and send (or queue) it.
  #seal(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#count === 0) return;
    const batch = { body: Buffer.from(this.#spans.bytes()), spans: this.#count };
    this.#spans.reset();
    this.#count = 0;
    if (this.#inFlight < EXPORT_CONCURRENCY) this.#send(batch);
    else if (this.#queue.length < MAX_QUEUED) this.#queue.push(batch);
    else this.#options.onDrop(batch.spans);
  }

  // ExportTraceServiceRequest{resource_spans(1): ResourceSpans{resource(1), scope_spans(2): ScopeSpans{scope(1), spans(2)...}}}
  #request(spans: Buffer): Buffer {
    const head = this.#head as Buffer;
    const scopeLen = this.#scopeField.length + spans.length;
    const scopeHeader = lengthHeader(2, scopeLen);
    const resourceLen = head.length + scopeHeader.length + scopeLen;
    return Buffer.concat([lengthHeader(1, resourceLen), head, scopeHeader, this.#scopeField, spans]);
  }

  #send(batch: Batch): void {
    this.#inFlight++;
    if (this.#head === undefined) {
      // The resource is not complete yet (an asynchronous detector): wait for it, once.
      void this.#ready.then(() => {
        this.#inFlight--;
        this.#send(batch);
      });
      return;
    }
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      this.#inFlight--;
      if (err !== undefined) this.#options.onDrop(batch.spans, err);
      const next = this.#queue.shift();
      if (next !== undefined) this.#send(next);
      else if (this.#inFlight === 0) {
        const idle = this.#idle;
        this.#idle = [];
        for (const f of idle) f();
      }
    };
    const body = this.#request(batch.body);
    try {
      const req = this.#post(this.#url, {
        method: 'POST',
        agent: this.#agent,
        timeout: this.#options.timeoutMs,
        headers: { ...this.#options.headers, 'Content-Type': 'application/x-protobuf', 'Content-Length': body.length },
      }, (res: IncomingMessage) => {
        res.resume();
        res.on('end', () => finish(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 ? undefined : new Error(`the collector answered HTTP ${res.statusCode} at ${this.#url.href}`)));
        res.on('error', (err) => finish(err));
        // Neither end nor error (a connection cut mid-body): the request still ends.
        res.on('close', () => finish(new Error(`the answer from ${this.#url.href} was cut off`)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${this.#url.href} within ${this.#options.timeoutMs} ms`)));
      req.on('error', (err) => finish(err));
      req.end(body);
    } catch (err) {
      // http.request throws at once on what it cannot send (a header value with a newline):
      // the spans are dropped and counted, the server goes on.
      finish(err as Error);
    }
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
