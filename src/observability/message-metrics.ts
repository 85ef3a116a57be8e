// Metric updates from the server's events, batched here (the core does not
// know): per-label slots of plain numbers that prom-adapter.ts moves into
// prom-client at scrape time, and the slots of the last message and reply
// type kept at hand (consecutive messages are mostly of one type, so most
// skip the map lookups).

import type { CloseEvent, MessageEvent } from '../server/instrumentation.js';
import { INVALID_TYPE, UNKNOWN_TYPE, type ServerMetrics } from './metrics.js';
import type { CounterSlot, HistogramSeries } from './prom-adapter.js';
import type { SpanIds } from './spans.js';

/** The bounded label of a message type: registered types as themselves, the rest as `unknown` or `invalid`. */
export function typeLabel(ev: MessageEvent): string {
  if (ev.known) return ev.type;
  return ev.type === '' ? INVALID_TYPE : UNKNOWN_TYPE;
}

export class MetricRecorder {
  #m: ServerMetrics;
  #connectionDuration: HistogramSeries;
  // '' is never a label or a type: the first lookup always happens.
  #lastLabel = '';
  #lastReceived: CounterSlot = { n: 0 };
  #lastDuration: HistogramSeries | undefined;
  #lastSentType = '';
  #lastSent: CounterSlot = { n: 0 };

  constructor(metrics: ServerMetrics) {
    this.#m = metrics;
    this.#connectionDuration = metrics.connectionDuration.series('');
  }

  connectionOpened(): void {
    this.#m.accepted.n++;
    this.#m.activeClients.value++;
  }

  /** One message: counted, its duration observed (with the span as exemplar when it was exported). */
  message(ev: MessageEvent, label: string, span: SpanIds | undefined): void {
    const m = this.#m;
    if (label !== this.#lastLabel) {
      this.#lastLabel = label;
      this.#lastReceived = m.messagesReceived.slot(label);
      this.#lastDuration = m.messageDuration.series(label);
    }
    this.#lastReceived.n++;
    if (ev.errorCode !== undefined) m.protocolErrors.slot(ev.errorCode).n++;
    const seconds = (ev.endMs - ev.startMs) / 1000;
    m.messageDuration.observe(this.#lastDuration as HistogramSeries, seconds, 1, span);
  }

  sent(type: string): void {
    if (type !== this.#lastSentType) {
      this.#lastSentType = type;
      this.#lastSent = this.#m.messagesSent.slot(type);
    }
    this.#lastSent.n++;
  }

  read(bytes: number): void {
    this.#m.bytesReceived.n += bytes;
  }

  written(bytes: number): void {
    this.#m.bytesSent.n += bytes;
  }

  closed(ev: CloseEvent): void {
    const m = this.#m;
    m.activeClients.value--;
    m.closed.slot(ev.reason).n++;
    m.connectionDuration.observe(this.#connectionDuration, ev.durationMs / 1000);
  }
}
