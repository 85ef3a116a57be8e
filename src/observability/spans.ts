// Spans from the server's events: one `fugue.connection` span per connection,
// one short SERVER span per message (its own trace, linked to the connection
// span, unless the message carries a traceparent; see docs/observability.md
// for why), one PRODUCER span per unsolicited message. A message's span is
// made when its event arrives, with the start and end times the event
// carries, so it is started and ended in one go.

import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Span } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { parseTraceparent } from '../protocol/index.js';
import type { CloseEvent, CloseReason, MessageEvent, OpenEvent, PushEvent } from '../server/events.js';
import type { LeanParent } from './lean-spans.js';
import { messageSpanAttributes } from './span-attributes.js';
import type { Tracing } from './tracing.js';

/** The ids of an exported span, for an exemplar. */
export interface SpanIds {
  readonly traceId: string;
  readonly spanId: string;
}

/** Close reasons that end the connection span with status ERROR. */
export const ABNORMAL_CLOSE: ReadonlySet<CloseReason> = new Set(['client_reset', 'error', 'timeout', 'slow_consumer', 'protocol_error', 'shutdown_forced']);

const timeOrigin = performance.timeOrigin;

/** Stands in for a span that sampling dropped: records nothing, costs nothing. */
export const UNSAMPLED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export class SpanRecorder {
  #tracing: Tracing;
  #linkMode: boolean;
  // A connection span's ids as bytes, for the lean path's parents and links (made once per connection).
  #raw = new WeakMap<Span, LeanParent>();
  // The sampled connection spans of open connections, by client id (empty while tracing is off).
  #connections = new Map<number, Span>();
  // The last lookup: consecutive messages mostly come from one connection.
  #lastId = 0;
  #lastSpan: Span = UNSAMPLED;

  constructor(tracing: Tracing) {
    this.#tracing = tracing;
    this.#linkMode = tracing.settings.messageParent === 'link';
  }

  /** A connection opened: its span starts, when sampled. */
  opened(ev: OpenEvent): void {
    const t = this.#tracing;
    if (!t.active || !t.sampleRoot()) return;
    this.#connections.set(ev.clientId, t.tracer.startSpan('fugue.connection', {
      kind: SpanKind.SERVER,
      attributes: { 'network.transport': 'unix', 'server.address': ev.socketPath, 'fugue.client.id': ev.clientId },
    }));
  }

  // The connection's span, or UNSAMPLED.
  #span(clientId: number): Span {
    if (clientId === this.#lastId) return this.#lastSpan;
    const span = this.#connections.get(clientId) ?? UNSAMPLED;
    this.#lastId = clientId;
    this.#lastSpan = span;
    return span;
  }

  handshake(clientId: number, clientName: string | undefined): void {
    const span = this.#span(clientId);
    if (clientName !== undefined && span !== UNSAMPLED) span.setAttribute('fugue.client.name', clientName);
  }

  /**
   * Record one message's span, from its start to its end. Returns its span
   * context when the span was sampled (exported): an exemplar may point at it.
   */
  message(ev: MessageEvent, label: string): SpanIds | undefined {
    const tracing = this.#tracing;
    if (!tracing.active) return undefined;
    const connSpan = this.#span(ev.clientId);
    const remote = ev.traceparent === undefined ? undefined : parseTraceparent(ev.traceparent, ev.tracestate);
    let parent: Context = ROOT_CONTEXT;
    let link = true;
    // Why this span is recorded (an attribute): the client's trace, the outcome, or chance.
    let reason: 'parent' | 'error' | 'slow' | 'connection' | 'ratio';
    if (remote !== undefined) {
      // The client decided (its sampled flag), for errors too.
      parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: remote.traceId, spanId: remote.spanId, traceFlags: remote.traceFlags, isRemote: true });
      reason = 'parent';
    } else {
      // Outcome-aware: the event arrives after the reply was written, so the
      // outcome and the duration are known before the span is made.
      const { sampler, slowMs } = tracing.settings;
      const notable = sampler === 'outcome' ? (ev.errorCode !== undefined ? 'error' : ev.endMs - ev.startMs >= slowMs ? 'slow' : undefined) : undefined;
      if (!this.#linkMode && connSpan !== UNSAMPLED) {
        parent = trace.setSpan(ROOT_CONTEXT, connSpan);
        link = false;
        reason = notable ?? 'connection';
      } else if (notable !== undefined) {
        reason = notable;
      } else if (!this.#linkMode || !tracing.sampleRoot()) {
        return undefined; // "connection" mode follows its connection; "link" mode samples the rest by ratio
      } else {
        reason = 'ratio';
      }
    }
    // Exported by fugue's own OTLP encoder when it can (lean-spans.ts); the SDK
    // keeps the rest: exception events, injected tracers, other exporters.
    const lean = tracing.lean;
    if (lean !== undefined && ev.error === undefined) {
      let leanParent: LeanParent | undefined;
      if (remote !== undefined) {
        if ((remote.traceFlags & TraceFlags.SAMPLED) === 0) return undefined; // the client decided: not sampled
        leanParent = { traceId: Buffer.from(remote.traceId, 'hex'), spanId: Buffer.from(remote.spanId, 'hex'), remote: true, traceState: remote.traceState };
      } else if (!link) {
        leanParent = this.#rawIds(connSpan);
      }
      return lean.message({
        name: label,
        startMs: ev.startMs,
        endMs: ev.endMs,
        clientId: ev.clientId,
        bytes: ev.bytes,
        messageId: ev.id,
        errorCode: ev.errorCode,
        reason,
        parent: leanParent,
        link: link && connSpan !== UNSAMPLED ? this.#rawIds(connSpan) : undefined,
      });
    }
    const span = tracing.tracer.startSpan(label, { kind: SpanKind.SERVER, startTime: timeOrigin + ev.startMs }, parent);
    // Attributes and links only for spans that are recorded: an unsampled or
    // no-op span costs no allocations here.
    if (!span.isRecording()) return undefined;
    // A link only to a connection span that is itself exported (otherwise it would dangle).
    if (link && connSpan !== UNSAMPLED) span.addLink({ context: connSpan.spanContext() });
    if (ev.errorCode !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: ev.errorCode });
    if (ev.error instanceof Error) span.recordException(ev.error);
    span.setAttributes(messageSpanAttributes({ name: label, clientId: ev.clientId, bytes: ev.bytes, messageId: ev.id, errorCode: ev.errorCode, reason }));
    span.end(timeOrigin + ev.endMs);
    const sc = span.spanContext();
    return (sc.traceFlags & TraceFlags.SAMPLED) === 0 ? undefined : sc;
  }

  #rawIds(span: Span): LeanParent {
    let ids = this.#raw.get(span);
    if (ids === undefined) {
      const sc = span.spanContext();
      ids = { traceId: Buffer.from(sc.traceId, 'hex'), spanId: Buffer.from(sc.spanId, 'hex'), remote: false };
      this.#raw.set(span, ids);
    }
    return ids;
  }

  /** An unsolicited message to one client: a PRODUCER span in the receiving connection's trace, when that is sampled. */
  pushed(ev: PushEvent): void {
    if (ev.clientId === undefined || !this.#tracing.active) return;
    const connSpan = this.#span(ev.clientId);
    if (connSpan === UNSAMPLED) return;
    const span = this.#tracing.tracer.startSpan(`push ${ev.type}`, {
      kind: SpanKind.PRODUCER,
      startTime: timeOrigin + ev.startMs,
      attributes: {
        'fugue.client.id': ev.clientId,
        'fugue.message.type': ev.type,
        ...(ev.fromClientId !== undefined ? { 'fugue.source.client.id': ev.fromClientId } : {}),
      },
    }, trace.setSpan(ROOT_CONTEXT, connSpan));
    span.end(timeOrigin + ev.endMs);
  }

  closed(ev: CloseEvent): void {
    const connSpan = this.#connections.get(ev.clientId);
    if (connSpan === undefined) return;
    this.#connections.delete(ev.clientId);
    if (this.#lastId === ev.clientId) this.#lastSpan = UNSAMPLED;
    if (connSpan.isRecording()) {
      connSpan.setAttributes({
        'fugue.close.reason': ev.reason,
        'fugue.messages.received': ev.messagesIn,
        'fugue.messages.sent': ev.messagesOut,
        'fugue.bytes.received': ev.bytesIn,
        'fugue.bytes.sent': ev.bytesOut,
      });
      if (ABNORMAL_CLOSE.has(ev.reason)) connSpan.setStatus({ code: SpanStatusCode.ERROR, message: ev.reason });
      if (ev.error) connSpan.recordException(ev.error);
    }
    connSpan.end();
  }
}
