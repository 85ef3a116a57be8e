// Metric updates from the server's events, batched here (the core does not
// know): per-label slots of plain numbers that prom-adapter.ts moves into
// prom-client at scrape time, and the slots of the last message and reply
// type kept at hand (consecutive messages are mostly of one type, so most
// skip the map lookups). Labels come only from the server's catalog (the
// protocol's names and what features declared); anything else is counted
// under one fixed label, so cardinality stays bounded.

import type { CloseEvent, MessageEvent } from '../server/events.js';
import type { Catalog } from '../server/view.js';
import { INVALID_TYPE, UNDECLARED, UNKNOWN_TYPE, type ServerMetrics } from './metrics.js';
import type { CounterSlot, HistogramSeries } from './prom-adapter.js';
import type { SpanIds } from './spans.js';

/** The bounded label of a message type: known types as themselves, the rest as `unknown` or `invalid`. */
export function typeLabel(ev: MessageEvent): string {
  if (ev.known) return ev.type;
  return ev.type === '' ? INVALID_TYPE : UNKNOWN_TYPE;
}

export class MetricRecorder {
  readonly #m: ServerMetrics;
  readonly #sentTypes: ReadonlySet<string>;
  readonly #errorCodes: ReadonlySet<string>;
  readonly #connectionDuration: HistogramSeries;
  // '' is never a label or a type: the first lookup always happens.
  #lastLabel = '';
  #lastReceived: CounterSlot = { n: 0 };
  #lastDuration: HistogramSeries | undefined;
  #lastSentType = '';
  #lastSent: CounterSlot = { n: 0 };

  constructor(metrics: ServerMetrics, catalog: Catalog) {
    this.#m = metrics;
    this.#sentTypes = new Set(catalog.sentTypes);
    this.#errorCodes = new Set(catalog.errorCodes);
    this.#connectionDuration = metrics.connectionDuration.series('');
  }

  connectionOpened(): void {
    this.#m.accepted.n++;
  }

  /** One message: counted, its reply counted, its duration observed (with the span as exemplar when it was exported). */
  message(ev: MessageEvent, label: string, span: SpanIds | undefined): void {
    const m = this.#m;
    if (label !== this.#lastLabel) {
      this.#lastLabel = label;
      this.#lastReceived = m.messagesReceived.slot(label);
      this.#lastDuration = m.messageDuration.series(label);
    }
    this.#lastReceived.n++;
    if (ev.replyType !== undefined) this.sent(ev.replyType, 1);
    if (ev.errorCode !== undefined) m.protocolErrors.slot(this.#errorCodes.has(ev.errorCode) ? ev.errorCode : UNDECLARED).n++;
    const seconds = (ev.endMs - ev.startMs) / 1000;
    m.messageDuration.observe(this.#lastDuration as HistogramSeries, seconds, 1, span);
  }

  /** `n` messages of `type` went to clients (replies and pushes). */
  sent(type: string, n: number): void {
    if (type !== this.#lastSentType) {
      this.#lastSentType = type;
      this.#lastSent = this.#m.messagesSent.slot(this.#sentTypes.has(type) ? type : UNDECLARED);
    }
    this.#lastSent.n += n;
  }

  closed(ev: CloseEvent): void {
    const m = this.#m;
    m.closed.slot(ev.reason).n++;
    m.connectionDuration.observe(this.#connectionDuration, ev.durationMs / 1000);
  }
}
