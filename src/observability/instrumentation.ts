// Implements the server's Instrumentation seam with pino, prom-client and
// OpenTelemetry. Spans: one `fugue.connection` span per connection, one short
// SERVER span per message (its own trace, linked to the connection span, unless
// the message carries a traceparent; see docs/observability.md for why).

import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { parseTraceparent } from '../protocol/index.js';
import type { CloseInfo, CloseReason, ConnectionInfo, ConnectionObserver, Instrumentation, MessageRecord, RejectReason } from '../server/instrumentation.js';
import type { Logger } from './logger.js';
import { acceptErrorLabel, INVALID_TYPE, UNKNOWN_TYPE, type ServerMetrics } from './metrics.js';
import type { CounterSlot, HistogramSeries } from './batched.js';
import type { Tracing } from './tracing.js';

// Close reasons that end the connection span with status ERROR.
const ABNORMAL: ReadonlySet<CloseReason> = new Set(['client_reset', 'error', 'timeout', 'slow_consumer', 'protocol_error', 'shutdown_forced']);

const timeOrigin = performance.timeOrigin;

/** Stands in for a span that sampling dropped: records nothing, costs nothing. */
const UNSAMPLED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Placeholder series before the first real one. */
const NO_SERIES: HistogramSeries = { counts: new Float64Array(0), sum: 0, count: 0, exemplars: [] };

export interface ObservabilityInstrumentationOptions {
  log: Logger;
  metrics: ServerMetrics;
  tracing: Tracing;
}

export class ObservabilityInstrumentation implements Instrumentation {
  readonly log: Logger;
  #metrics: ServerMetrics;
  #tracing: Tracing;
  #linkMode: boolean;
  #tracingActive: boolean;
  #connectionDuration: HistogramSeries;
  #logInfo: boolean;
  /** Whether debug lines are logged (fixed for the server's life). */
  readonly logDebug: boolean;
  // The per-label metric slots of the last message and reply type seen:
  // consecutive messages are mostly of one type, so most skip the map lookups.
  // ('' is never a label or a type: the first lookup always happens.)
  #lastLabel = '';
  #lastReceived: CounterSlot = { n: 0 };
  #lastDuration: HistogramSeries = NO_SERIES;
  #lastSentType = '';
  #lastSent: CounterSlot = { n: 0 };

  constructor(options: ObservabilityInstrumentationOptions) {
    this.log = options.log;
    this.#metrics = options.metrics;
    this.#tracing = options.tracing;
    this.#linkMode = options.tracing.settings.messageParent === 'link';
    this.#tracingActive = options.tracing.active;
    this.#connectionDuration = options.metrics.connectionDuration.series('');
    // The level is fixed for the server's life (log.level is not reloaded).
    this.#logInfo = options.log.isLevelEnabled('info');
    this.logDebug = options.log.isLevelEnabled('debug');
  }

  listening(info: { socketPath: string; pid: number; maxClients: number; openFilesLimit: number | undefined }): void {
    this.#metrics.listening.set(1);
    this.#metrics.maxClients.set(info.maxClients);
    this.log.info({ socketPath: info.socketPath, maxClients: info.maxClients, openFilesLimit: info.openFilesLimit }, 'server listening');
  }

  socketLost(info: { socketPath: string }): void {
    this.#metrics.listening.set(0);
    this.log.warn(info, 'socket file was removed or replaced; re-creating it');
  }

  socketRestored(info: { socketPath: string; downMs: number }): void {
    this.#metrics.listening.set(1);
    this.#metrics.socketRebinds.inc();
    this.log.warn({ socketPath: info.socketPath, downMs: Math.round(info.downMs) }, 'socket re-created');
  }

  acceptError(err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'UNKNOWN';
    this.#metrics.acceptErrors.inc({ code: acceptErrorLabel(code) });
    this.log.error({ code, err }, 'accept failed; still listening');
  }

  rejected(reason: RejectReason): void {
    this.#metrics.rejected.inc({ reason });
    this.log.warn({ reason }, 'connection rejected');
  }

  draining(info: { clients: number; timeoutMs: number }): void {
    this.#metrics.draining.set(1);
    this.#metrics.drainStartTime.set(Date.now() / 1000);
    this.#metrics.listening.set(0);
    this.log.info({ phase: 'drain', clients: info.clients, timeoutMs: info.timeoutMs }, 'drain started: socket removed, shutdown sent to clients');
  }

  drained(info: { durationMs: number; left: number; forced: number }): void {
    this.#metrics.draining.set(0);
    this.log.info({ phase: 'drained', durationMs: Math.round(info.durationMs), left: info.left, forced: info.forced }, 'drain finished');
  }

  connection(info: ConnectionInfo): ConnectionObserver {
    this.#metrics.accepted.n++;
    this.#metrics.activeClients.n++;
    if (this.#logInfo) this.log.info({ clientId: info.clientId }, 'client connected');
    const span = this.#tracing.active && this.#tracing.sampleRoot()
      ? this.#tracing.tracer.startSpan('fugue.connection', {
          kind: SpanKind.SERVER,
          attributes: { 'network.transport': 'unix', 'server.address': info.socketPath, 'fugue.client.id': info.clientId },
        })
      : UNSAMPLED;
    return new ConnectionObserverImpl(this, info.clientId, span);
  }

  // --- called by ConnectionObserverImpl ---

  messageSpan(connSpan: Span, clientId: number, rec: MessageRecord, label: string): Span {
    if (!this.#tracingActive) return UNSAMPLED;
    const remote = rec.traceparent === undefined ? undefined : parseTraceparent(rec.traceparent, rec.tracestate);
    let parent: Context = ROOT_CONTEXT;
    let link = true;
    if (remote !== undefined) {
      parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: remote.traceId, spanId: remote.spanId, traceFlags: remote.traceFlags, isRemote: true });
    } else if (!this.#linkMode) {
      if (connSpan === UNSAMPLED) return UNSAMPLED; // its connection is not sampled: neither are its children
      parent = trace.setSpan(ROOT_CONTEXT, connSpan);
      link = false;
    } else if (!this.#tracing.sampleRoot()) {
      return UNSAMPLED;
    }
    const span = this.#tracing.tracer.startSpan(label, { kind: SpanKind.SERVER, startTime: timeOrigin + rec.startMs }, parent);
    // Attributes and links only for spans that are recorded: an unsampled or
    // no-op span costs no allocations here.
    if (span.isRecording()) {
      if (link && connSpan !== UNSAMPLED) span.addLink({ context: connSpan.spanContext() });
      const attributes: Attributes = {
        'rpc.system.name': 'fugue',
        'rpc.method': label,
        'network.transport': 'unix',
        'fugue.client.id': clientId,
        'fugue.message.size': rec.bytes,
        'fugue.message.outcome': rec.errorCode === undefined ? 'ok' : 'error',
      };
      if (rec.id !== undefined) attributes['fugue.message.id'] = String(rec.id);
      if (rec.errorCode !== undefined) {
        attributes['error.type'] = rec.errorCode;
        span.setStatus({ code: SpanStatusCode.ERROR, message: rec.errorCode });
      }
      span.setAttributes(attributes);
    }
    return span.isRecording() ? span : UNSAMPLED;
  }

  /** End a message span when its reply was written. */
  endMessageSpan(span: Span, endMs: number): void {
    span.end(timeOrigin + endMs);
  }

  /** Count one message; returns its duration series, observed once it completes. */
  countMessage(rec: MessageRecord, label: string): HistogramSeries {
    const m = this.#metrics;
    if (label !== this.#lastLabel) {
      this.#lastLabel = label;
      this.#lastReceived = m.messagesReceived.slot(label);
      this.#lastDuration = m.messageDuration.series(label);
    }
    this.#lastReceived.n++;
    if (rec.errorCode !== undefined) m.protocolErrors.slot(rec.errorCode).n++;
    return this.#lastDuration;
  }

  /** `count` messages took `ms` each; a sampled span's message carries its ids as the exemplar. */
  observeMessages(series: HistogramSeries, ms: number, count: number, span: Span): void {
    const duration = this.#metrics.messageDuration;
    // Only spans that were sampled (and so exported) make useful exemplars.
    const sc = span === UNSAMPLED ? undefined : span.spanContext();
    if (sc === undefined || (sc.traceFlags & TraceFlags.SAMPLED) === 0) duration.observe(series, ms / 1000, count);
    else duration.observe(series, ms / 1000, count, sc.traceId, sc.spanId);
  }

  recordSent(type: string): void {
    if (type !== this.#lastSentType) {
      this.#lastSentType = type;
      this.#lastSent = this.#metrics.messagesSent.slot(type);
    }
    this.#lastSent.n++;
  }

  recordBytes(inBytes: number, outBytes: number): void {
    const m = this.#metrics;
    m.bytesReceived.n += inBytes;
    m.bytesSent.n += outBytes;
  }

  recordClose(clientId: number, clientName: string | undefined, info: CloseInfo, span: Span): void {
    const m = this.#metrics;
    m.activeClients.n--;
    m.closed.slot(info.reason).n++;
    m.connectionDuration.observe(this.#connectionDuration, info.durationMs / 1000);
    const abnormal = ABNORMAL.has(info.reason);
    if (span.isRecording()) {
      span.setAttributes({
        'fugue.close.reason': info.reason,
        'fugue.messages.received': info.messagesIn,
        'fugue.messages.sent': info.messagesOut,
        'fugue.bytes.received': info.bytesIn,
        'fugue.bytes.sent': info.bytesOut,
      });
      if (abnormal) span.setStatus({ code: SpanStatusCode.ERROR, message: info.reason });
      if (info.error) span.recordException(info.error);
    }
    span.end();
    // Normal closes are logged at info: above that level, skip building the line.
    if (!abnormal && !this.#logInfo) return;
    const fields = {
      clientId,
      clientName,
      reason: info.reason,
      durationMs: Math.round(info.durationMs),
      messagesIn: info.messagesIn,
      messagesOut: info.messagesOut,
      bytesIn: info.bytesIn,
      bytesOut: info.bytesOut,
      ...(info.partialFrameBytes > 0 ? { partialFrameBytes: info.partialFrameBytes } : {}),
      ...(info.error ? { err: info.error } : {}),
    };
    if (abnormal) this.log.warn(fields, 'client disconnected');
    else this.log.info(fields, 'client disconnected');
  }

  typeLabel(rec: MessageRecord): string {
    if (rec.known) return rec.type;
    return rec.type === '' ? INVALID_TYPE : UNKNOWN_TYPE;
  }
}

// A message handled but not yet written: its duration series, start, and span.
interface Pending {
  series: HistogramSeries;
  startMs: number;
  count: number;
  span: Span;
}

class ConnectionObserverImpl implements ConnectionObserver {
  #o: ObservabilityInstrumentation;
  #clientId: number;
  #span: Span;
  #clientName: string | undefined;
  #closed = false;
  // Messages since the last write, completed by written(). Consecutive
  // messages of one type and start (a read's worth of echo requests) form one
  // run, observed in one go; other runs and sampled spans wait in #more.
  #runSeries = NO_SERIES;
  #runStart = 0;
  #runCount = 0;
  #more: Pending[] | undefined;

  constructor(o: ObservabilityInstrumentation, clientId: number, span: Span) {
    this.#o = o;
    this.#clientId = clientId;
    this.#span = span;
  }

  handshake(clientName: string | undefined): void {
    this.#clientName = clientName;
    if (clientName !== undefined) this.#span.setAttribute('fugue.client.name', clientName);
    if (this.#o.logDebug) this.#o.log.debug({ clientId: this.#clientId, clientName }, 'client handshake complete');
  }

  message(rec: MessageRecord): void {
    const o = this.#o;
    const label = o.typeLabel(rec);
    const span = o.messageSpan(this.#span, this.#clientId, rec, label);
    const series = o.countMessage(rec, label);
    if (span === UNSAMPLED && this.#runCount > 0 && this.#runSeries === series && this.#runStart === rec.startMs) {
      this.#runCount++;
      return;
    }
    // Another run begins: the current one waits in #more, in message order.
    if (this.#runCount > 0) (this.#more ??= []).push({ series: this.#runSeries, startMs: this.#runStart, count: this.#runCount, span: UNSAMPLED });
    if (span === UNSAMPLED) {
      this.#runSeries = series;
      this.#runStart = rec.startMs;
      this.#runCount = 1;
    } else {
      // A sampled message is observed on its own: its ids become the exemplar.
      (this.#more ??= []).push({ series, startMs: rec.startMs, count: 1, span });
      this.#runCount = 0;
    }
  }

  sent(type: string): void {
    this.#o.recordSent(type);
  }

  read(bytes: number): void {
    this.#o.recordBytes(bytes, 0);
  }

  written(bytes: number, nowMs: number): void {
    this.#o.recordBytes(0, bytes);
    this.#complete(nowMs);
  }

  #complete(endMs: number): void {
    const o = this.#o;
    const more = this.#more;
    if (more !== undefined && more.length > 0) {
      // Earlier runs first: exemplars and spans in message order.
      for (const p of more) {
        o.observeMessages(p.series, endMs - p.startMs, p.count, p.span);
        if (p.span !== UNSAMPLED) o.endMessageSpan(p.span, endMs);
      }
      more.length = 0;
    }
    if (this.#runCount > 0) {
      o.observeMessages(this.#runSeries, endMs - this.#runStart, this.#runCount, UNSAMPLED);
      this.#runCount = 0;
    }
  }

  closed(info: CloseInfo): void {
    if (this.#closed) return; // the span is ended exactly once
    this.#closed = true;
    // Messages whose replies were never written (the connection went first) end now.
    if (this.#runCount > 0 || (this.#more !== undefined && this.#more.length > 0)) this.#complete(performance.now());
    this.#o.recordClose(this.#clientId, this.#clientName, info, this.#span);
  }
}
