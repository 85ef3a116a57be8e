// Tracing: the tracer message and connection spans are made with. With no
// exporter configured (the default) no SDK is loaded or started: the API's
// no-op tracer, and no span is made at all (`active` is false). With an
// exporter, the SDK is loaded then (otel-sdk.ts) and started. The standard
// OTEL_* variables keep working; tracing.* config keys win over them
// (tracing-settings.ts).

import { diag, DiagLogLevel, trace, type Tracer } from '@opentelemetry/api';
import type { LeanSpanExporter } from './lean-spans.js';
import type { Logger } from './logger.js';
import type { StartedSdk } from './otel-sdk.js';
import { exporterSockets, type TracingSettings } from './tracing-settings.js';

export { resolveTracingSettings, exporterSockets, EXPORTER_MAX_SOCKETS, type TracingSettings, type ExporterKind } from './tracing-settings.js';

export interface TracingOptions {
  settings: TracingSettings;
  version: string;
  log: Logger;
  /** Called with the number of spans dropped. */
  onDrop(count: number): void;
  /** Use this tracer instead of starting an SDK (tests: an in-memory provider). */
  tracer?: Tracer;
  /** Where OTEL_EXPORTER_OTLP_* are read (the lean exporter's endpoint, headers, timeout). Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

export class Tracing {
  settings: TracingSettings;
  readonly tracer: Tracer;
  #started: StartedSdk | undefined;
  #log: Logger;
  #onDrop: (count: number) => void;
  #exportErrorLogged = false;
  #injected: boolean;
  /** Message spans' exporter when fugue encodes them itself (OTLP over HTTP, protobuf); else undefined. */
  readonly lean: LeanSpanExporter | undefined;

  /** Tracing for `options`: the SDK is loaded and started only when an exporter is configured. */
  static async create(options: TracingOptions): Promise<Tracing> {
    const wantsSdk = options.tracer === undefined && options.settings.exporter !== 'none';
    const sdk = wantsSdk ? await import('./otel-sdk.js') : undefined;
    return new Tracing(options, sdk?.startSdk);
  }

  private constructor(options: TracingOptions, startSdk: typeof import('./otel-sdk.js').startSdk | undefined) {
    this.settings = options.settings;
    this.#log = options.log;
    this.#onDrop = options.onDrop;
    this.#injected = options.tracer !== undefined;
    if (startSdk !== undefined) {
      // Telemetry never crashes or floods the service: SDK errors go to our log at warn, once per kind.
      diag.setLogger({ error: (m) => this.#diag(m), warn: (m) => this.#diag(m), info() {}, debug() {}, verbose() {} }, DiagLogLevel.WARN);
      this.#started = startSdk(options.settings, options.version, options.env ?? process.env, (n, err) => {
        options.onDrop(n);
        if (!this.#exportErrorLogged) {
          this.#exportErrorLogged = true;
          this.#log.warn({ err, spans: n }, 'span export failed; spans are dropped (logged once)');
        }
      });
    }
    this.lean = this.#started?.lean;
    // With no SDK started this is the API's no-op tracer.
    this.tracer = options.tracer ?? trace.getTracer('fugue-server', options.version);
  }

  /** Sockets the span exporters may hold open (the fd budget reserves them). */
  get exporterSockets(): number {
    return this.#injected ? 0 : exporterSockets(this.settings);
  }

  /**
   * A reload changed the sampling ratio. Only between two ratios fugue
   * decides itself: switching to or from a sampler left to the SDK needs a restart.
   */
  setSampleRatio(ratio: number): boolean {
    if (this.settings.sampleRatio === undefined) return false;
    this.settings = { ...this.settings, sampleRatio: ratio };
    return true;
  }

  /** A reload changed the outcome sampler's slow threshold (ms). */
  setSlowMs(slowMs: number): void {
    this.settings = { ...this.settings, slowMs };
  }

  /**
   * Whether to record a new root span. About 35 ns instead of the ~750 ns the
   * SDK spends on a span its ratio sampler then drops (ids, sampler, context).
   */
  sampleRoot(): boolean {
    const ratio = this.settings.sampleRatio;
    return ratio === undefined || ratio >= 1 || (ratio > 0 && Math.random() < ratio);
  }

  /**
   * False when spans could only be no-ops (no exporter configured, no tracer
   * given): then none are made at all, which is what a no-op span amounts to,
   * minus its cost.
   */
  get active(): boolean {
    return this.#started !== undefined || this.#injected;
  }

  #diagSeen = new Set<string>();
  #diag(message: string): void {
    // The batch processor reports queue overflow only as a diag warning.
    const dropped = /^Dropped (\d+) spans because maxQueueSize reached/.exec(message);
    if (dropped !== null) this.#onDrop(Number(dropped[1]));
    const key = dropped !== null ? 'queue-full' : message.slice(0, 80);
    if (this.#diagSeen.has(key)) return;
    this.#diagSeen.add(key);
    this.#log.warn({ otel: message }, 'opentelemetry reported a problem (logged once)');
  }

  /** Flush buffered spans and stop, within `timeoutMs`. Never throws. */
  async shutdown(timeoutMs: number): Promise<void> {
    const started = this.#started;
    if (started === undefined) return;
    this.#started = undefined;
    const { sdk } = started;
    const lean = this.lean?.shutdown(timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(timeoutMs, 1));
      timer.unref();
    });
    try {
      const outcome = await Promise.race([sdk.shutdown().then(() => 'done' as const), deadline]);
      if (outcome === 'timeout') this.#log.warn({ timeoutMs }, 'span flush did not finish in time; remaining spans dropped');
    } catch (err) {
      this.#log.warn({ err }, 'span flush failed; remaining spans dropped');
    } finally {
      clearTimeout(timer);
    }
    await lean;
  }
}
