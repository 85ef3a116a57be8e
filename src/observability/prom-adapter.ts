// Everything that depends on prom-client's internals, in one place: a test
// (test/observability/prom-adapter.test.ts) pins the prom-client version these
// were checked against and renders them through real registries, so an
// upgrade that changes the internals fails there, not silently in production.
//
// - Per-message metrics without per-message prom-client calls. A prom-client
//   label lookup and increment costs ~45 ns, a histogram observation ~150 ns,
//   and the server does several per message. Here the hot path only adds to
//   plain numbers in a per-label slot; the totals go to prom-client when a
//   scrape collects them. What a scrape sees is exact, only computed later.
// - BatchedHistogram is a custom metric: it gives the registry the object
//   prom-client's own metrics give from get() (not a public contract).
// - The OpenMetrics registry (exemplars live only there) and read-only views
//   of its metrics for a Prometheus-text registry.

import { Registry, type Counter, type Metric, type OpenMetricsContentType } from 'prom-client';

/** How often a histogram bucket's exemplar is replaced at most, in seconds. */
export const EXEMPLAR_REFRESH_S = 1;

/** The prom-client version these adapters were verified against (package-lock.json pins it). */
export const PROM_CLIENT_VERSION = '15.1.3';

/** A registry rendered as OpenMetrics (the only format in which prom-client keeps exemplars). */
export function openMetricsRegistry(): Registry<OpenMetricsContentType> {
  // prom-client types its constructor argument too narrowly to name the content type.
  return new (Registry as unknown as new (contentType: string) => Registry<OpenMetricsContentType>)(Registry.OPENMETRICS_CONTENT_TYPE);
}

/** The `registers` option of a prom-client metric for an OpenMetrics registry. */
export function registersOf(registry: Registry<OpenMetricsContentType>): Registry[] {
  return [registry as unknown as Registry];
}

/** Register a custom metric (BatchedHistogram) with a registry. */
export function registerCustom(registry: Registry<OpenMetricsContentType>, metric: BatchedHistogram): void {
  registry.registerMetric(metric as unknown as Metric);
}

/**
 * A Prometheus-text (0.0.4) registry of read-only views over `source`'s
 * metrics. prom-client renames counters in place (drops `_total`) while it
 * renders OpenMetrics; the views keep the original name.
 */
export function textRegistryOf(source: Registry<OpenMetricsContentType>): Registry {
  const text = new Registry();
  for (const metric of source.getMetricsAsArray() as unknown as Metric[]) text.registerMetric(textView(metric));
  return text;
}

function textView(metric: Metric): Metric {
  const m = metric as unknown as { name: string; help: string; type: string; aggregator: string; get(): Promise<object>; getForPromString?(): Promise<object> };
  const name = m.name;
  const view = {
    name,
    help: m.help,
    type: m.type,
    aggregator: m.aggregator,
    async get() {
      return { ...(await m.get()), name };
    },
    async getForPromString() {
      return { ...(await (m.getForPromString ? m.getForPromString() : m.get())), name };
    },
  };
  return view as unknown as Metric;
}

/** One label value's pending count. Keep the slot and bump `n`. */
export interface CounterSlot {
  n: number;
}

/** A level read by a gauge at scrape time (it goes up and down). */
export interface GaugeSlot {
  value: number;
}

/**
 * A prom-client counter with one label or none, fed through slots, flushed by
 * its collect(). A counter without a label has one slot: ''.
 */
export class BatchedCounter {
  #counter: Counter<string>;
  #label: string | undefined;
  #slots = new Map<string, CounterSlot>();

  constructor(counter: Counter<string>, label?: string) {
    this.#counter = counter;
    this.#label = label;
  }

  slot(value: string): CounterSlot {
    let s = this.#slots.get(value);
    if (s === undefined) {
      s = { n: 0 };
      this.#slots.set(value, s);
      this.#add(value, 0); // the series exists from its first use
    }
    return s;
  }

  /** Move pending counts into the counter: call from the counter's collect(). */
  flush(): void {
    for (const [value, s] of this.#slots) {
      if (s.n !== 0) {
        this.#add(value, s.n);
        s.n = 0;
      }
    }
  }

  #add(value: string, n: number): void {
    if (this.#label === undefined) this.#counter.inc(n);
    else this.#counter.inc({ [this.#label]: value }, n);
  }
}

interface Exemplar {
  labelSet: Record<string, string>;
  value: number;
  timestamp: number;
}

/** One label value's histogram: counts per bucket (not cumulative), sum, count. */
export interface HistogramSeries {
  readonly counts: Float64Array;
  sum: number;
  count: number;
  readonly exemplars: Array<Exemplar | undefined>;
}

/**
 * A histogram with one label or none, registered with a prom-client Registry as a
 * custom metric (the registry renders whatever `get()` returns, exemplars
 * included when the registry is OpenMetrics). Observation is a bucket search
 * and three additions.
 */
export class BatchedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: string[];
  #label: string | undefined;
  #bounds: number[];
  #series = new Map<string, HistogramSeries>();

  constructor(options: { name: string; help: string; label?: string; buckets: number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#label = options.label;
    this.labelNames = options.label === undefined ? [] : [options.label];
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
  }

  /** The series of one label value (a histogram without a label has one series: ''). */
  series(value: string): HistogramSeries {
    let s = this.#series.get(value);
    if (s === undefined) {
      const n = this.#bounds.length + 1; // + the +Inf bucket
      s = { counts: new Float64Array(n), sum: 0, count: 0, exemplars: new Array<Exemplar | undefined>(n) };
      this.#series.set(value, s);
    }
    return s;
  }

  /**
   * Record `count` observations of `value` (default 1). An `exemplar`
   * replaces the bucket's when that is more than EXEMPLAR_REFRESH_S old (a
   * scrape shows one per bucket; its ids are read only then, so a lazily
   * computed pair costs nothing the rest of the time).
   */
  observe(s: HistogramSeries, value: number, count = 1, exemplar?: { readonly traceId: string; readonly spanId: string }): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    s.counts[i] = (s.counts[i] as number) + count;
    s.sum += value * count;
    s.count += count;
    if (exemplar !== undefined) {
      const now = Date.now() / 1000;
      const cur = s.exemplars[i];
      if (cur === undefined || now - cur.timestamp >= EXEMPLAR_REFRESH_S) {
        s.exemplars[i] = { labelSet: { trace_id: exemplar.traceId, span_id: exemplar.spanId }, value, timestamp: now };
      }
    }
  }

  /** The prom-client metric shape the Registry renders. */
  async get(): Promise<object> {
    const values: object[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const [labelValue, s] of this.#series) {
      const labels = this.#label === undefined ? {} : { [this.#label]: labelValue };
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += s.counts[i] as number;
        const le = i < this.#bounds.length ? (this.#bounds[i] as number) : '+Inf';
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: bucketName, exemplar: s.exemplars[i] });
      }
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Zero every series in place (callers may hold on to a series). */
  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
      s.exemplars.fill(undefined);
    }
  }
}
