// OpenTelemetry setup. With no exporter configured (the default) no SDK is
// started: the API's no-op tracer costs ~15 ns a span and nothing is exported or
// retried. With an exporter, NodeSDK is started with exactly one batch span
// processor and no metric or log exporters (sdk-node would otherwise start OTLP
// metric/log exporters and default to OTLP on localhost:4318).
// The standard OTEL_* variables keep working; tracing.* config keys win over them.

import { diag, DiagLogLevel, trace, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, parseKeyPairsIntoRecord } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, hostDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  AlwaysOnSampler,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config/schema.js';
import { EXPORT_CONCURRENCY, LeanSpanExporter } from './lean-spans.js';
import type { Logger } from './logger.js';
import type { OtlpValue } from './proto-writer.js';

export type ExporterKind = 'none' | 'otlp' | 'console';

/** Sockets the SDK's OTLP exporter may hold open; the lean exporter holds EXPORT_CONCURRENCY more (their share of the fd budget: server/fd-budget.ts). */
export const EXPORTER_MAX_SOCKETS = 2;

export interface TracingSettings {
  enabled: boolean;
  exporter: ExporterKind;
  /** Full URL of the traces endpoint, or undefined to let the exporter read OTEL_* itself. */
  url: string | undefined;
  protocol: 'http/protobuf' | 'http/json';
  /**
   * Share of root spans sampled, decided by fugue before calling the SDK (a
   * span not sampled then costs nothing); undefined = a sampler fugue does not
   * know, left to the SDK (OTEL_TRACES_SAMPLER).
   */
  sampleRatio: number | undefined;
  serviceName: string | undefined;
  messageParent: 'link' | 'connection';
  /**
   * `outcome`: every message span whose reply is an error, or that took at
   * least `slowMs`, is sampled, and `sampleRatio` of the rest; `ratio`: only
   * `sampleRatio`, blind to the outcome. Either way a client's traceparent
   * decides for its own message.
   */
  sampler: 'outcome' | 'ratio';
  /** A message at least this slow is sampled in `outcome` mode, in ms. */
  slowMs: number;
}

/** Resolve tracing.* config over the standard OTEL_* environment variables. */
export function resolveTracingSettings(cfg: Config['tracing'], env: NodeJS.ProcessEnv): TracingSettings {
  const sdkDisabled = (env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true';
  const envExporter = (env.OTEL_TRACES_EXPORTER ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  let exporter: ExporterKind = 'none';
  const wanted = cfg.exporter !== '' ? cfg.exporter : envExporter;
  if (wanted === 'otlp' || wanted === 'console') exporter = wanted;
  const envProtocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '';
  const protocol = cfg.protocol !== '' ? cfg.protocol : envProtocol === 'http/json' ? 'http/json' : 'http/protobuf';
  const url = cfg.endpoint !== '' ? `${cfg.endpoint.replace(/\/+$/, '')}/v1/traces` : undefined;
  return {
    enabled: cfg.enabled && !sdkDisabled,
    exporter: cfg.enabled && !sdkDisabled ? exporter : 'none',
    url,
    protocol,
    sampleRatio: cfg.sampleRatio >= 0 ? cfg.sampleRatio : samplerRatioFromEnv(env),
    serviceName: cfg.serviceName !== '' ? cfg.serviceName : undefined,
    messageParent: cfg.messageParent,
    sampler: cfg.sampler,
    slowMs: cfg.slowThresholdMs,
  };
}

// The standard samplers as a root ratio; the parent's sampled flag is always
// honoured (parentbased_*). Others (e.g. jaeger_remote) are left to the SDK.
function samplerRatioFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const sampler = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  if (sampler === 'always_on' || sampler === 'parentbased_always_on') return 1;
  if (sampler === 'always_off' || sampler === 'parentbased_always_off') return 0;
  if (sampler === 'traceidratio' || sampler === 'parentbased_traceidratio') {
    const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
    return Number.isFinite(arg) ? Math.min(1, Math.max(0, arg)) : 1;
  }
  return undefined;
}

// Counts spans the batch processor could not queue (queue full) and batches the
// exporter failed to send, so drops are visible in fugue_spans_dropped_total.
class CountingExporter implements SpanExporter {
  #inner: SpanExporter;
  #onDrop: (n: number, err?: Error) => void;
  constructor(inner: SpanExporter, onDrop: (n: number, err?: Error) => void) {
    this.#inner = inner;
    this.#onDrop = onDrop;
  }
  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        done(result);
        return;
      }
      // Counted and logged here; reporting success stops the SDK from logging
      // the same failure again through its global error handler.
      this.#onDrop(spans.length, result.error);
      done({ code: ExportResultCode.SUCCESS });
    });
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

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
  #sdk: NodeSDK | undefined;
  #log: Logger;
  #onDrop: (count: number) => void;
  #exportErrorLogged = false;
  #injected = false;
  #sdkRunning = false;
  /** Message spans' exporter when fugue encodes them itself (OTLP over HTTP, protobuf); else undefined. */
  readonly lean: LeanSpanExporter | undefined;

  constructor(options: TracingOptions) {
    this.settings = options.settings;
    this.#log = options.log;
    this.#onDrop = options.onDrop;
    const { settings } = options;
    if (options.tracer !== undefined) {
      this.tracer = options.tracer;
      this.#injected = true;
      this.lean = undefined;
      return;
    }
    if (settings.exporter !== 'none') {
      // Telemetry never crashes or floods the service: SDK errors go to our log at warn, once per kind.
      diag.setLogger({ error: (m) => this.#diag(m), warn: (m) => this.#diag(m), info() {}, debug() {}, verbose() {} }, DiagLogLevel.WARN);
      const onDrop = (n: number, err?: Error) => {
        options.onDrop(n);
        if (!this.#exportErrorLogged) {
          this.#exportErrorLogged = true;
          this.#log.warn({ err, spans: n }, 'span export failed; spans are dropped (logged once)');
        }
      };
      const exporter = new CountingExporter(this.#exporter(settings), onDrop);
      const processor: SpanProcessor = new BatchSpanProcessor(exporter, { maxQueueSize: 4096, maxExportBatchSize: 512, scheduledDelayMillis: 1000 });
      const base = defaultResource().merge(
        resourceFromAttributes({
          'service.name': 'fugue-server',
          'service.version': options.version,
          'process.pid': process.pid,
          'process.runtime.name': 'nodejs',
          'process.runtime.version': process.versions.node,
        }),
      );
      this.lean = leanExporter(settings, options.env ?? process.env, base, options.version, onDrop);
      this.#sdk = new NodeSDK({
        resource: base,
        // Not the process detector: it ships the full command line and user name.
        resourceDetectors: [envDetector, hostDetector],
        ...(settings.serviceName !== undefined ? { serviceName: settings.serviceName } : {}),
        spanProcessors: [processor],
        metricReaders: [],
        logRecordProcessors: [],
        instrumentations: [],
        // Roots are sampled by sampleRoot() before the SDK sees them; the SDK
        // records what it is given and honours a remote parent's flag.
        ...(settings.sampleRatio !== undefined ? { sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }) } : {}),
      });
      this.#sdk.start();
      this.#sdkRunning = true;
    }
    else this.lean = undefined;
    // With no SDK started this is the API's no-op tracer.
    this.tracer = trace.getTracer('fugue-server', options.version);
  }

  /** Sockets the span exporters may hold open (the fd budget reserves them). */
  get exporterSockets(): number {
    if (this.settings.exporter !== 'otlp' || this.#injected) return 0;
    return EXPORTER_MAX_SOCKETS + (this.lean !== undefined ? EXPORT_CONCURRENCY : 0);
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
    return this.#sdkRunning || this.#injected;
  }

  #exporter(s: TracingSettings): SpanExporter {
    if (s.exporter === 'console') return new ConsoleSpanExporter();
    const opts = { ...(s.url !== undefined ? { url: s.url } : {}), httpAgentOptions: { keepAlive: true, maxSockets: EXPORTER_MAX_SOCKETS, maxFreeSockets: EXPORTER_MAX_SOCKETS } };
    return s.protocol === 'http/json' ? new OtlpJsonExporter(opts) : new OtlpProtoExporter(opts);
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
    const sdk = this.#sdk;
    if (sdk === undefined) return;
    this.#sdk = undefined;
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

/**
 * The lean exporter (lean-spans.ts) for OTLP over HTTP with protobuf, the
 * default. Not for what it does not implement: OTLP/JSON, compression, client
 * certificates; those keep the SDK's exporter for every span.
 */
function leanExporter(settings: TracingSettings, env: NodeJS.ProcessEnv, base: Resource, version: string, onDrop: (n: number, err?: Error) => void): LeanSpanExporter | undefined {
  if (settings.exporter !== 'otlp' || settings.protocol !== 'http/protobuf') return undefined;
  // A sampler left to the SDK (OTEL_TRACES_SAMPLER, e.g. jaeger_remote) decides per span in the SDK.
  if (settings.sampleRatio === undefined) return undefined;
  const pick = (name: string) => env[`OTEL_EXPORTER_OTLP_TRACES_${name}`] ?? env[`OTEL_EXPORTER_OTLP_${name}`];
  if ((pick('COMPRESSION') ?? 'none') !== 'none' || pick('CERTIFICATE') !== undefined || pick('CLIENT_KEY') !== undefined || pick('CLIENT_CERTIFICATE') !== undefined) return undefined;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const url = settings.url ?? (endpoint !== undefined && endpoint !== '' ? endpoint : `${(env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`);
  // An endpoint that is not an http(s) URL: the SDK's exporter reports it (and falls back), not us.
  if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) return undefined;
  const timeout = Number(pick('TIMEOUT') ?? 10_000);
  // The same resource the SDK exports: the base, then what the detectors find, then service.name.
  let resource = base.merge(detectResources({ detectors: [envDetector, hostDetector] }));
  if (settings.serviceName !== undefined) resource = resource.merge(resourceFromAttributes({ 'service.name': settings.serviceName }));
  const attributes: Record<string, OtlpValue> = {};
  const settled = resource.waitForAsyncAttributes?.() ?? Promise.resolve();
  const exporter = new LeanSpanExporter({
    url,
    // As the SDK: the generic headers, then the traces-specific ones over them.
    headers: { ...parseKeyPairsIntoRecord(env.OTEL_EXPORTER_OTLP_HEADERS), ...parseKeyPairsIntoRecord(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 10_000,
    resource: () => attributes,
    ready: settled.then(() => {
      for (const [k, v] of Object.entries(resource.attributes)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') attributes[k] = v;
    }),
    scope: { name: 'fugue-server', version },
    onDrop,
  });
  return exporter;
}
