// Implements the server's Instrumentation seam: each event goes to the three
// recorders, spans (spans.ts), metrics (message-metrics.ts, metrics.ts) and
// logs (log-events.ts), which know nothing of each other. The one coupling is
// deliberate: a message's exemplar is its span, when that was exported.

import type { Span } from '@opentelemetry/api';
import type {
  CloseEvent,
  ConnectionInfo,
  ConnectionObserver,
  Instrumentation,
  LimitEvent,
  MessageEvent,
  PushEvent,
  RejectReason,
} from '../server/instrumentation.js';
import { LogEvents } from './log-events.js';
import type { Logger } from './logger.js';
import { MetricRecorder, typeLabel } from './message-metrics.js';
import { acceptErrorLabel, type ServerMetrics } from './metrics.js';
import { SpanRecorder } from './spans.js';
import type { Tracing } from './tracing.js';

export interface ObservabilityInstrumentationOptions {
  log: Logger;
  metrics: ServerMetrics;
  tracing: Tracing;
}

export class ObservabilityInstrumentation implements Instrumentation {
  readonly log: Logger;
  #metrics: ServerMetrics;
  #recorder: MetricRecorder;
  #spans: SpanRecorder;
  #logs: LogEvents;

  constructor(options: ObservabilityInstrumentationOptions) {
    this.log = options.log;
    this.#metrics = options.metrics;
    this.#recorder = new MetricRecorder(options.metrics);
    this.#spans = new SpanRecorder(options.tracing);
    this.#logs = new LogEvents(options.log);
  }

  listening(info: { socketPath: string; pid: number; maxClients: number; openFilesLimit: number | undefined }): void {
    this.#metrics.listening.set(1);
    this.#metrics.maxClients.set(info.maxClients);
    this.#logs.listening(info);
  }

  socketLost(info: { socketPath: string }): void {
    this.#metrics.listening.set(0);
    this.#logs.socketLost(info);
  }

  socketRestored(info: { socketPath: string; downMs: number; recreated: boolean }): void {
    this.#metrics.listening.set(1);
    if (info.recreated) this.#metrics.socketRebinds.inc();
    this.#logs.socketRestored(info);
  }

  clientLimit(info: { maxClients: number }): void {
    this.#metrics.maxClients.set(info.maxClients);
  }

  acceptError(err: NodeJS.ErrnoException): void {
    this.#metrics.acceptErrors.inc({ code: acceptErrorLabel(err.code ?? 'UNKNOWN') });
    this.#logs.acceptError(err);
  }

  rejected(reason: RejectReason): void {
    this.#metrics.rejected.inc({ reason });
    this.#logs.rejected('socket', reason);
  }

  /** The HTTP sidecar refused a connection (not part of the server seam; the composition root wires it). */
  httpRejected(reason: 'limit' | 'idle'): void {
    this.#metrics.httpRejected.inc({ reason });
    this.#logs.rejected('http', reason);
  }

  /** HTTP sidecar connections opened (+1) or closed (-1). */
  httpConnections(delta: number): void {
    this.#metrics.httpConnections.value += delta;
  }

  draining(info: { clients: number; timeoutMs: number }): void {
    this.#metrics.draining.set(1);
    this.#metrics.drainStartTime.set(Date.now() / 1000);
    this.#metrics.listening.set(0);
    this.#logs.draining(info);
  }

  drained(info: { durationMs: number; left: number; forced: number }): void {
    this.#metrics.draining.set(0);
    this.#logs.drained(info);
  }

  connection(info: ConnectionInfo): ConnectionObserver {
    this.#recorder.connectionOpened();
    this.#logs.connected(info.clientId);
    return new Observer(this.#recorder, this.#spans, this.#logs, info.clientId, this.#spans.connection(info));
  }
}

/** One connection's events, fanned out. */
class Observer implements ConnectionObserver {
  #recorder: MetricRecorder;
  #spans: SpanRecorder;
  #logs: LogEvents;
  #clientId: number;
  #span: Span;
  #closed = false;

  constructor(recorder: MetricRecorder, spans: SpanRecorder, logs: LogEvents, clientId: number, span: Span) {
    this.#recorder = recorder;
    this.#spans = spans;
    this.#logs = logs;
    this.#clientId = clientId;
    this.#span = span;
  }

  handshake(clientName: string | undefined): void {
    this.#spans.handshake(this.#span, clientName);
    this.#logs.handshake(this.#clientId, clientName);
  }

  message(ev: MessageEvent): void {
    const label = typeLabel(ev);
    this.#recorder.message(ev, label, this.#spans.message(this.#span, ev, label));
    if (ev.error !== undefined) this.#logs.handlerFailed(ev);
  }

  sent(type: string): void {
    this.#recorder.sent(type);
  }

  pushed(ev: PushEvent): void {
    this.#spans.pushed(this.#span, ev);
    this.#logs.pushed(ev);
  }

  read(bytes: number): void {
    this.#recorder.read(bytes);
  }

  written(bytes: number): void {
    this.#recorder.written(bytes);
  }

  limit(ev: LimitEvent): void {
    this.#logs.limit(ev);
  }

  closed(ev: CloseEvent): void {
    if (this.#closed) return; // the span is ended exactly once
    this.#closed = true;
    this.#recorder.closed(ev);
    this.#spans.closed(this.#span, ev);
    this.#logs.closed(ev);
  }
}
