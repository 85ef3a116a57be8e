// The lean span path: message spans exported over OTLP/HTTP (protobuf)
// (each span encoded by lean-encoding.ts, batched and sent here)
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

import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SpanEncoder, type LeanMessageSpan, type LeanSpanIds } from './lean-encoding.js';
import { keyValueField, lengthDelimited, lengthHeader, ProtoWriter, type OtlpValue } from './proto-writer.js';
import { EXPORT_CONCURRENCY } from './tracing-settings.js';

/** Spans per export request at most. */
const MAX_BATCH_SPANS = 4096;
/** A request body is sent once it reaches this size. */
const MAX_BATCH_BYTES = 2 * 1024 * 1024;
/** A span waits at most this long before its request is sent, in ms. */
const BATCH_DELAY_MS = 500;
/** Request bodies waiting for a free slot; beyond this, spans are dropped. */
const MAX_QUEUED = 8;

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
  readonly #encoder = new SpanEncoder();
  #timer: NodeJS.Timeout | undefined;
  #queue: Batch[] = [];
  #inFlight = 0;
  #idle: Array<() => void> = [];
  #closed = false;

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
    const w = this.#scratch;
    const ids = this.#encoder.encode(w, s);
    this.#spans.messageField(2, w);
    this.#count++;
    if (this.#count >= MAX_BATCH_SPANS || this.#spans.pos >= MAX_BATCH_BYTES) this.#seal();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.#seal(), BATCH_DELAY_MS).unref();
    return ids;
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

export { splitMs, unixNanos, type LeanParent, type LeanMessageSpan, type LeanSpanIds, type TimeOrigin } from './lean-encoding.js';
