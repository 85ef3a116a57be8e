// The OpenTelemetry SDK, started only when spans are exported (tracing.ts
// loads this module then): one batch span processor, no metric or log
// exporters (sdk-node would otherwise start OTLP metric/log exporters and
// default to OTLP on localhost:4318), and the lean exporter for message spans
// over OTLP/HTTP with protobuf.

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
import { LeanSpanExporter } from './lean-spans.js';
import type { OtlpValue } from './proto-writer.js';
import { EXPORTER_MAX_SOCKETS, type TracingSettings } from './tracing-settings.js';

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

/** A running SDK and, for OTLP/protobuf, the lean exporter of message spans. */
export interface StartedSdk {
  sdk: NodeSDK;
  lean: LeanSpanExporter | undefined;
}

/** Start the SDK for `settings` (an exporter is configured); `onDrop` counts and reports lost spans. */
export function startSdk(settings: TracingSettings, version: string, env: NodeJS.ProcessEnv, onDrop: (n: number, err?: Error) => void): StartedSdk {
  const exporter = new CountingExporter(exporterFor(settings), onDrop);
  const processor: SpanProcessor = new BatchSpanProcessor(exporter, { maxQueueSize: 4096, maxExportBatchSize: 512, scheduledDelayMillis: 1000 });
  const base = defaultResource().merge(
    resourceFromAttributes({
      'service.name': 'fugue-server',
      'service.version': version,
      'process.pid': process.pid,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
    }),
  );
  const lean = leanExporter(settings, env, base, version, onDrop);
  const sdk = new NodeSDK({
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
  sdk.start();
  return { sdk, lean };
}

function exporterFor(s: TracingSettings): SpanExporter {
  if (s.exporter === 'console') return new ConsoleSpanExporter();
  const opts = { ...(s.url !== undefined ? { url: s.url } : {}), httpAgentOptions: { keepAlive: true, maxSockets: EXPORTER_MAX_SOCKETS, maxFreeSockets: EXPORTER_MAX_SOCKETS } };
  return s.protocol === 'http/json' ? new OtlpJsonExporter(opts) : new OtlpProtoExporter(opts);
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
