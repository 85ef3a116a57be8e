// Observability for one server instance: logger, metrics registry, tracing, and
// the Instrumentation the server core calls.

import type { Tracer } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';
import type { Config } from '../config/schema.js';
import { ObservabilityInstrumentation } from './instrumentation.js';
import { createLogger, type Logger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { resolveTracingSettings, Tracing } from './tracing.js';

export { createLogger, type Logger } from './logger.js';
export { ServerMetrics, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT } from './metrics.js';
export { Tracing, resolveTracingSettings, type TracingSettings } from './tracing.js';
export { ObservabilityInstrumentation } from './instrumentation.js';

export interface ObservabilityOptions {
  config: Config;
  version: string;
  env?: NodeJS.ProcessEnv;
  /** Log destination. Default: stdout. */
  logDestination?: DestinationStream;
  /** Use this tracer instead of starting the OpenTelemetry SDK. */
  tracer?: Tracer;
  /** Collect prom-client default metrics. Default: true. */
  defaultMetrics?: boolean;
  /** Registered message types, exported at 0 from startup (see MetricsOptions.messageTypes). Default: none. */
  messageTypes?: readonly string[];
}

export interface Observability {
  log: Logger;
  metrics: ServerMetrics;
  tracing: Tracing;
  instrumentation: ObservabilityInstrumentation;
}

export function createObservability(options: ObservabilityOptions): Observability {
  const { config } = options;
  const log = createLogger({ level: config.log.level, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  const metrics = new ServerMetrics({
    version: options.version,
    maxClients: config.limits.maxClients,
    shutdownTimeoutMs: config.shutdown.timeoutMs,
    ...(options.defaultMetrics !== undefined ? { defaultMetrics: options.defaultMetrics } : {}),
    ...(options.messageTypes !== undefined ? { messageTypes: options.messageTypes } : {}),
  });
  const tracing = new Tracing({
    settings: resolveTracingSettings(config.tracing, options.env ?? process.env),
    version: options.version,
    log,
    onDrop: (n) => metrics.spansDropped.inc(n),
    ...(options.tracer ? { tracer: options.tracer } : {}),
  });
  const instrumentation = new ObservabilityInstrumentation({ log, metrics, tracing });
  return { log, metrics, tracing, instrumentation };
}
