// Observability for one server instance: logger, metrics registry, tracing, and
// the Instrumentation the server core calls.

import type { Tracer } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';
import type { Config } from '../config/schema.js';
import { ObservabilityInstrumentation } from './instrumentation.js';
import { createLogger, type Logger } from './logger.js';
import { LogSink } from './log-sink.js';
import { ServerMetrics } from './metrics.js';
import { resolveTracingSettings, Tracing } from './tracing.js';

export { createLogger, type Logger } from './logger.js';
export { LogSink, type LogSinkStats, type StallReport } from './log-sink.js';
export { ServerMetrics, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT } from './metrics.js';
export { Tracing, resolveTracingSettings, type TracingSettings } from './tracing.js';
export { ObservabilityInstrumentation } from './instrumentation.js';

/** What createObservability needs. */
export interface ObservabilityOptions {
  /** The validated configuration. */
  config: Config;
  /** Reported in fugue_build_info and as service.version. */
  version: string;
  /** Where OTEL_* variables are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Log destination. Default: stdout, through a LogSink bounded by log.maxBufferedBytes. */
  logDestination?: DestinationStream;
  /** Use this tracer instead of starting the OpenTelemetry SDK (tests: an in-memory provider). Default: the SDK, when an exporter is configured. */
  tracer?: Tracer;
  /** Collect prom-client default metrics. Default: true. */
  defaultMetrics?: boolean;
  /** Registered message types, exported at 0 from startup (see MetricsOptions.messageTypes). Default: none. */
  messageTypes?: readonly string[];
}

export interface Observability {
  log: Logger;
  /** The stdout sink, when logs go to stdout (not to a caller's destination). */
  logSink: LogSink | undefined;
  metrics: ServerMetrics;
  tracing: Tracing;
  instrumentation: ObservabilityInstrumentation;
}

export function createObservability(options: ObservabilityOptions): Observability {
  const { config } = options;
  const logSink = options.logDestination === undefined ? new LogSink({ maxBufferedBytes: config.log.maxBufferedBytes }) : undefined;
  const log = createLogger({ level: config.log.level, destination: options.logDestination ?? (logSink as LogSink) });
  if (logSink !== undefined) {
    logSink.onStallEnd = (r) => log.warn({ droppedLines: r.linesDropped, droppedBytes: r.bytesDropped, stalledMs: r.stalledMs }, 'log output stalled: lines were dropped while the log reader was not reading');
  }
  const metrics = new ServerMetrics({
    ...(logSink !== undefined ? { logStats: () => logSink.stats } : {}),
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
    env: options.env ?? process.env,
    ...(options.tracer ? { tracer: options.tracer } : {}),
  });
  const instrumentation = new ObservabilityInstrumentation({ log, metrics, tracing });
  return { log, logSink, metrics, tracing, instrumentation };
}
