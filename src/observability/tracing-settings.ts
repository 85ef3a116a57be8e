// Tracing settings: tracing.* config over the standard OTEL_* variables, and
// what they imply for the descriptor budget. No OpenTelemetry code here: it
// is read before anything is loaded, and the SDK is loaded only when spans are
// exported (tracing.ts).

import type { Config } from '../config/schema.js';

export type ExporterKind = 'none' | 'otlp' | 'console';

/** Sockets the SDK's OTLP exporter may hold open (its share of the fd budget: server/fd-budget.ts). */
export const EXPORTER_MAX_SOCKETS = 2;
/** Requests in flight at once on the lean path (also its agent's sockets). */
export const EXPORT_CONCURRENCY = 2;

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


/**
 * Sockets the span exporters may hold open with these settings: the fd
 * budget reserves them. The lean path (lean-spans.ts) is taken for OTLP over
 * HTTP/protobuf; reserving its sockets in every OTLP case is the safe side.
 */
export function exporterSockets(settings: TracingSettings): number {
  return settings.exporter === 'otlp' ? EXPORTER_MAX_SOCKETS + EXPORT_CONCURRENCY : 0;
}
