// Observability for one server instance: logger, metrics registry, tracing,
// and their subscriptions to the server's diagnostics channels (subscribers.ts).

import type { Tracer } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';
import type { Config } from '../config/schema.js';
import type { ServerView } from '../server/view.js';
import { LogEvents } from './log-events.js';
import { observeServer } from './subscribers.js';
import { createLogger, type Logger } from './logger.js';
import { LogSink } from './log-sink.js';
import { ServerMetrics } from './metrics.js';
import type { Recorded } from './early.js';
import { resolveTracingSettings, Tracing } from './tracing.js';

export { createLogger, type Logger } from './logger.js';
export { LogSink, type LogSinkStats, type StallReport } from './log-sink.js';
export { ServerMetrics, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT } from './metrics.js';
export { Tracing, resolveTracingSettings, type TracingSettings } from './tracing.js';
export { observeServer } from './subscribers.js';

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
}

export interface Observability {
  log: Logger;
  /** The stdout sink, when logs go to stdout (not to a caller's destination). */
  logSink: LogSink | undefined;
  metrics: ServerMetrics;
  tracing: Tracing;
  /**
   * Subscribe spans, metrics and logs to this server's events, after
   * replaying `early` (what happened before, in order); returns the function
   * that stops them.
   */
  observe(view: ServerView, early?: { entries: readonly Recorded[]; lost: number }): () => void;
  /** The HTTP sidecar refused a connection (it is not part of the server's channels: the composition root wires it). */
  httpRejected(reason: 'limit' | 'idle'): void;
  /** HTTP sidecar connections opened (+1) or closed (-1). */
  httpConnections(delta: number): void;
}

/** Logger, metrics and tracing for one server (the OpenTelemetry SDK is loaded only when spans are exported). */
export async function createObservability(options: ObservabilityOptions): Promise<Observability> {
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
  });
  const tracing = await Tracing.create({
    settings: resolveTracingSettings(config.tracing, options.env ?? process.env),
    version: options.version,
    log,
    onDrop: (n) => metrics.spansDropped.inc(n),
    env: options.env ?? process.env,
    ...(options.tracer ? { tracer: options.tracer } : {}),
  });
  const httpLogs = new LogEvents(log);
  return {
    log,
    logSink,
    metrics,
    tracing,
    observe: (view, early) => observeServer(view, { log, metrics, tracing }, early),
    httpRejected(reason) {
      metrics.httpRejected.inc({ reason });
      httpLogs.rejected('http', reason);
    },
    httpConnections(delta) {
      metrics.httpConnections.value += delta;
    },
  };
}
