// Prometheus metrics, in a registry owned by one server instance (never the
// global one), so two servers in one process do not collide. docs/observability.md
// lists every family.
//
// The canonical registry is OpenMetrics-typed, because prom-client only keeps
// exemplars there. Prometheus text (0.0.4) is rendered from a second registry of
// read-only views over the same metrics: prom-client renames counters in place
// (drops `_total`) while rendering OpenMetrics, and the views restore the name.

import { Counter, Gauge, Registry, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client';
import { ERROR_CODES } from '../protocol/index.js';
import { openFdCount } from '../host.js';
import { CLOSE_REASONS, REJECT_REASONS } from '../server/events.js';
import type { ServerView } from '../server/view.js';
import type { LogSinkStats } from './log-sink.js';
import { BatchedCounter, BatchedHistogram, openMetricsRegistry, registerCustom, registersOf, textRegistryOf, type CounterSlot, type GaugeSlot } from './prom-adapter.js';

/** Label value for a client-chosen type the server does not know (bounded cardinality). */
export const UNKNOWN_TYPE = 'unknown';
/** Label value for a frame that did not parse into a message at all. */
export const INVALID_TYPE = 'invalid';
/** Label value for a sent type or an error code no feature declared (bounded cardinality). */
export const UNDECLARED = 'undeclared';

/**
 * The `code` label values of fugue_accept_errors_total: the errnos an accept on
 * a Unix socket can report (docs/observability.md). Any other code is counted
 * as ACCEPT_ERROR_OTHER (the log line keeps the real one), so every value is
 * known in advance and exported at 0 from startup.
 */
export const ACCEPT_ERROR_CODES = ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'] as const;
export const ACCEPT_ERROR_OTHER = 'other';
const ACCEPT_ERROR_SET: ReadonlySet<string> = new Set(ACCEPT_ERROR_CODES);

/** The fugue_accept_errors_total label value for an errno code. */
export function acceptErrorLabel(code: string | undefined): string {
  return code !== undefined && ACCEPT_ERROR_SET.has(code) ? code : ACCEPT_ERROR_OTHER;
}

export const CONTENT_TYPE_TEXT = Registry.PROMETHEUS_CONTENT_TYPE;
export const CONTENT_TYPE_OPENMETRICS = Registry.OPENMETRICS_CONTENT_TYPE;

export interface MetricsOptions {
  version: string;
  maxClients: number;
  shutdownTimeoutMs: number;
  /** Collect prom-client's process and Node.js metrics. Default: true. */
  defaultMetrics?: boolean;
  /** The log sink's counters, read at scrape time (absent when logs go to a caller's stream). */
  logStats?: () => LogSinkStats;
}

// Default metrics left out:
// - the *_total gauges: Prometheus reserves _total for counters (promtool
//   check metrics fails on them);
// - the per-type handle and resource gauges: each scrape walks every open
//   handle, ~9 ms at 10,000 connections, and fugue_active_clients and
//   process_open_fds already say what they would.
const LEFT_OUT_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
  'nodejs_active_handles',
  'nodejs_active_resources',
];

const MESSAGE_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1];
const CONNECTION_BUCKETS = [0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 14400, 86400];

export class ServerMetrics {
  readonly registry: Registry<OpenMetricsContentType> = openMetricsRegistry();
  readonly #text: Registry;
  // The server observed (observe()): what the gauges and traffic counters read at scrape time.
  #view: ServerView | undefined;
  readonly acceptErrors: Counter<'code'>;
  readonly rejected: Counter<'reason'>;
  // Per-connection and per-message families: plain additions into slots,
  // moved into prom-client when a scrape collects them (see batched.ts).
  readonly accepted: CounterSlot;
  readonly closed: BatchedCounter;
  readonly connectionDuration: BatchedHistogram;
  readonly messagesReceived: BatchedCounter;
  readonly messagesSent: BatchedCounter;
  readonly messageDuration: BatchedHistogram;
  readonly protocolErrors: BatchedCounter;
  readonly streamPauses: BatchedCounter;
  readonly streamDropped: BatchedCounter;
  readonly draining: Gauge;
  /** Unix time (s) the graceful drain began; 0 before. Alerts measure a drain from it. */
  readonly drainStartTime: Gauge;
  readonly listening: Gauge;
  readonly spansDropped: Counter;
  readonly socketRebinds: Counter;
  readonly maxClients: Gauge;
  /** shutdown.timeoutMs in force, in ms (a reload may change it; read at scrape time). */
  shutdownTimeoutMs: number;
  readonly configReloads: Counter<'result'>;
  readonly configLastSuccess: Gauge;
  readonly httpRejected: Counter<'reason'>;
  readonly httpConnections: GaugeSlot = { value: 0 };

  constructor(options: MetricsOptions) {
    const registers = registersOf(this.registry);
    const metrics = this;
    new Gauge({ name: 'fugue_active_clients', help: 'Client connections open right now (handshaken or not).', registers, collect() { this.set(metrics.#view?.clientCount() ?? 0); } });
    this.acceptErrors = new Counter({ name: 'fugue_accept_errors_total', help: 'Failed accepts reported by the listener, by errno code (EMFILE, ENFILE, ...).', labelNames: ['code'], registers });
    this.rejected = new Counter({ name: 'fugue_connections_rejected_total', help: 'Connections turned away right after accept, by reason.', labelNames: ['reason'], registers });
    const batched = (name: string, help: string, label?: string): BatchedCounter => {
      let b: BatchedCounter | undefined;
      const counter = new Counter({ name, help, labelNames: label === undefined ? [] : [label], registers, collect: () => b?.flush() });
      b = new BatchedCounter(counter, label);
      return b;
    };
    this.accepted = batched('fugue_connections_accepted_total', 'Connections accepted and registered as clients.').slot('');
    // Traffic is counted by each connection; a scrape adds what grew since the last one.
    const traffic = (key: 'bytesIn' | 'bytesOut') => {
      let last = 0;
      return function (this: Counter) {
        const now = metrics.#view?.traffic()[key] ?? last;
        this.inc(now - last);
        last = now;
      };
    };
    new Counter({ name: 'fugue_received_bytes_total', help: 'Bytes read from client sockets.', registers, collect: traffic('bytesIn') });
    new Counter({ name: 'fugue_sent_bytes_total', help: 'Bytes written to client sockets.', registers, collect: traffic('bytesOut') });
    this.closed = batched('fugue_connections_closed_total', 'Client connections ended, by reason.', 'reason');
    this.connectionDuration = new BatchedHistogram({ name: 'fugue_connection_duration_seconds', help: 'How long client connections lasted.', buckets: CONNECTION_BUCKETS });
    registerCustom(this.registry, this.connectionDuration);
    this.messagesReceived = batched('fugue_messages_received_total', 'Frames received, by message type ("unknown" for unregistered types, "invalid" for unparseable frames).', 'type');
    this.messagesSent = batched('fugue_messages_sent_total', 'Messages sent to clients, by type.', 'type');
    this.protocolErrors = batched('fugue_protocol_errors_total', 'Error replies sent, by error code (the protocol\'s and those features declared; any other is "undeclared").', 'code');
    this.streamPauses = batched('fugue_stream_pauses_total', 'Times a subscriber of a stream whose slow policy is drop fell behind and was skipped, by stream.', 'stream');
    this.streamDropped = batched('fugue_stream_dropped_total', 'Stream messages not sent to subscribers that had fallen behind, by stream.', 'stream');
    this.messageDuration = new BatchedHistogram({ name: 'fugue_message_duration_seconds', help: 'Time from the read that delivered a message to the write of its reply, by type.', label: 'type', buckets: MESSAGE_BUCKETS });
    registerCustom(this.registry, this.messageDuration);
    this.draining = new Gauge({ name: 'fugue_draining', help: '1 while a graceful shutdown is draining clients, else 0.', registers });
    // A timestamp, not a duration (Prometheus instrumentation practice): FugueDrainStuck
    // computes time() - it, for any shutdown.timeoutMs, with no look-back window.
    this.drainStartTime = new Gauge({ name: 'fugue_drain_start_time_seconds', help: 'Unix time the graceful drain began; 0 while none has.', registers });
    this.listening = new Gauge({ name: 'fugue_socket_listening', help: '1 while the Unix socket accepts connections, else 0.', registers });
    this.spansDropped = new Counter({ name: 'fugue_spans_dropped_total', help: 'Spans dropped because the export queue was full or the exporter failed.', registers });
    const buildInfo = new Gauge({ name: 'fugue_build_info', help: 'Always 1; labels carry the server and Node.js versions.', labelNames: ['version', 'node_version'], registers });
    buildInfo.set({ version: options.version, node_version: process.version }, 1);
    this.socketRebinds = new Counter({ name: 'fugue_socket_rebinds_total', help: 'Times the socket file was found missing or replaced and re-created.', registers });
    this.maxClients = new Gauge({ name: 'fugue_max_clients', help: 'Clients served at once: limits.maxClients, lowered when the open-files limit leaves less room.', registers });
    this.maxClients.set(options.maxClients);
    this.shutdownTimeoutMs = options.shutdownTimeoutMs;
    new Gauge({ name: 'fugue_shutdown_timeout_seconds', help: 'The configured shutdown.timeoutMs, in seconds.', registers, collect() { this.set(metrics.shutdownTimeoutMs / 1000); } });
    this.configReloads = new Counter({ name: 'fugue_config_reloads_total', help: 'Configuration reloads (SIGHUP), by result: success (applied) or failure (refused; the running configuration was kept).', labelNames: ['result'], registers });
    for (const result of ['success', 'failure']) this.configReloads.inc({ result }, 0);
    this.configLastSuccess = new Gauge({ name: 'fugue_config_last_reload_success_timestamp_seconds', help: 'Unix time of the last successful configuration load (start or reload).', registers });
    this.configLastSuccess.set(Math.round(Date.now() / 1000));
    const http = this.httpConnections;
    new Gauge({ name: 'fugue_http_connections', help: 'Connections open to the HTTP sidecar right now.', registers, collect() { this.set(http.value); } });
    this.httpRejected = new Counter({ name: 'fugue_http_connections_rejected_total', help: 'HTTP sidecar connections closed without being served, by reason: limit (http.maxConnections reached, none idle), idle (idle longest when the cap was reached: closed to make room).', labelNames: ['reason'], registers });
    for (const reason of ['limit', 'idle']) this.httpRejected.inc({ reason }, 0);
    if (options.logStats !== undefined) this.#logMetrics(options.logStats, registers);
    const startTime = new Gauge({ name: 'fugue_start_time_seconds', help: 'Unix time the server process started.', registers });
    startTime.set(Math.round(Date.now() / 1000 - process.uptime()));
    // Every label value known in advance is exported at 0 from startup: a series
    // born at 1 has no increase() (nothing before it to compare with), so the first
    // event of a kind would raise no alert, and panels would show "No data".
    for (const reason of REJECT_REASONS) this.rejected.inc({ reason }, 0);
    for (const code of [...ACCEPT_ERROR_CODES, ACCEPT_ERROR_OTHER]) this.acceptErrors.inc({ code }, 0);
    for (const reason of CLOSE_REASONS) this.closed.slot(reason);
    for (const code of [...ERROR_CODES, UNDECLARED]) this.protocolErrors.slot(code);
    for (const type of [UNKNOWN_TYPE, INVALID_TYPE]) {
      this.messagesReceived.slot(type);
      this.messageDuration.series(type);
    }
    this.messagesSent.slot(UNDECLARED);
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: registersOf(this.registry)[0] as Registry });
      for (const name of LEFT_OUT_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
      if (process.platform === 'linux') {
        // prom-client's lists /proc/self/fd at every scrape; openFdCount stats it.
        this.registry.removeSingleMetric('process_open_fds');
        new Gauge({ name: 'process_open_fds', help: 'Number of open file descriptors.', registers, collect() { const n = openFdCount(); if (n !== undefined) this.set(n); } });
      }
    }

    this.#text = textRegistryOf(this.registry);
  }

  /**
   * Read the gauges and traffic counters from this server, and export every
   * label value its catalog declares at 0 (message types, sent types, error
   * codes, streams): a series born at 1 would have no increase() to alert on.
   */
  observe(view: ServerView): void {
    this.#view = view;
    const c = view.catalog;
    for (const type of c.messageTypes) {
      this.messagesReceived.slot(type);
      this.messageDuration.series(type);
    }
    for (const type of c.sentTypes) this.messagesSent.slot(type);
    for (const code of c.errorCodes) this.protocolErrors.slot(code);
    for (const stream of c.streams) {
      this.streamPauses.slot(stream);
      this.streamDropped.slot(stream);
    }
  }

  // The log sink keeps plain counters; each scrape adds what changed since the last one.
  #logMetrics(stats: () => LogSinkStats, registers: Registry[]): void {
    const delta = (key: Exclude<keyof LogSinkStats, 'bufferedBytes'>) => {
      let last = 0;
      return function (this: Counter) {
        const now = stats()[key];
        this.inc(now - last);
        last = now;
      };
    };
    new Counter({ name: 'fugue_log_lines_written_total', help: 'Log lines handed to stdout (for a pipe: accepted into the bounded buffer).', registers, collect: delta('linesWritten') });
    new Counter({ name: 'fugue_log_written_bytes_total', help: 'Bytes of log lines handed to stdout.', registers, collect: delta('bytesWritten') });
    new Counter({ name: 'fugue_log_lines_dropped_total', help: 'Log lines dropped: the log reader was not reading and log.maxBufferedBytes was full, or stdout failed.', registers, collect: delta('linesDropped') });
    new Counter({ name: 'fugue_log_dropped_bytes_total', help: 'Bytes of dropped log lines.', registers, collect: delta('bytesDropped') });
    new Gauge({ name: 'fugue_log_buffered_bytes', help: 'Log bytes waiting for the log reader (at most log.maxBufferedBytes).', registers, collect() { this.set(stats().bufferedBytes); } });
  }

  /** Render for a scrape; OpenMetrics (with exemplars) when asked for. */
  async render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    return openMetrics
      ? { contentType: CONTENT_TYPE_OPENMETRICS, body: await this.registry.metrics() }
      : { contentType: CONTENT_TYPE_TEXT, body: await this.#text.metrics() };
  }
}
