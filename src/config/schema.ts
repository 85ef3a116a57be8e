// The configuration schema: every key with its doc, format, default, env var and
// CLI flag. docs/configuration.md and config/default.json mirror it (tests check).

import type convict from 'convict';
import { preview } from './text.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function got(value: unknown): string {
  return preview(value);
}

/** Longest string value accepted, in characters (paths, addresses, URLs and names are far shorter). */
export const MAX_STRING_CHARS = 4096;

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: unknown): void => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new Error(`must be an integer from ${min} to ${max}, got ${got(value)}`);
    }
  };
}

function oneOf(values: readonly string[]) {
  return (value: unknown): void => {
    if (typeof value !== 'string' || !values.includes(value)) throw new Error(`must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}, got ${got(value)}`);
  };
}

function fileMode(value: unknown): void {
  // YAML reads an unquoted 0600 as the number 600: say so.
  if (typeof value === 'number') throw new Error(`must be an octal permission string such as "0600", quoted (in YAML an unquoted 0600 is the number 600), got ${got(value)}`);
  if (typeof value !== 'string' || !/^0?[0-7]{3}$/.test(value)) throw new Error(`must be an octal permission string such as "0600", got ${got(value)}`);
  if ((Number.parseInt(value, 8) & 0o600) !== 0o600) throw new Error(`must let the owner read and write the socket (at least "0600"), got ${got(value)}`);
}

function ratio(value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new Error(`must be a number from 0 to 1, got ${got(value)}`);
}

function anyString(value: unknown): void {
  if (typeof value !== 'string') throw new Error(`must be a string, got ${got(value)}`);
  if (value.length > MAX_STRING_CHARS) throw new Error(`must be at most ${MAX_STRING_CHARS} characters long, got ${got(value)}`);
}

function nonEmptyString(value: unknown): void {
  anyString(value);
  if ((value as string).length === 0) throw new Error(`must be a non-empty string, got ${got(value)}`);
}

function pathString(value: unknown): void {
  nonEmptyString(value);
  if ((value as string).includes('\0')) throw new Error(`must not contain a NUL character, got ${got(value)}`);
}

function urlOrEmpty(value: unknown): void {
  anyString(value);
  if (value === '') return;
  let url: URL | undefined;
  try {
    url = new URL(value as string);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error(`must be empty or an http:// or https:// URL such as "http://127.0.0.1:4318", got ${got(value)}`);
}

function boolean(value: unknown): void {
  if (typeof value !== 'boolean') throw new Error(`must be true or false, got ${got(value)}`);
}

// Env vars and flags are strings; they are converted exactly as
// docs/configuration.md says, and anything else is left a string for the
// validator to refuse (Number() would also read "0x10", "1e3", " 12 " and "").
const DECIMAL_INTEGER = /^-?[0-9]+$/;
const DECIMAL_NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;
function toInteger(value: unknown): unknown {
  return typeof value === 'string' && DECIMAL_INTEGER.test(value) ? Number(value) : value;
}
function toDecimal(value: unknown): unknown {
  return typeof value === 'string' && DECIMAL_NUMBER.test(value) ? Number(value) : value;
}
function toBoolean(value: unknown): unknown {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return value;
}

/** One leaf of the schema, as this project writes it. */
export interface KeySpec {
  doc: string;
  format: (value: unknown) => void;
  default: unknown;
  env: string;
  /** Long CLI flag, without the leading dashes. */
  flag: string;
  /** Converts the string from an env var or flag (numbers: decimal digits only; booleans: true/false/1/0). */
  coerce?: (value: unknown) => unknown;
  /** How the value is written in an env var or flag, when it is not just any string. */
  textForm?: string;
  /** The value is a file system path: `~` and `$VAR` are expanded, and a relative path is resolved against the directory of the config file that set it (else the working directory). */
  path?: boolean;
  /** Unit or shape, for docs and --help. */
  unit?: string;
}

const INT_TEXT = 'decimal digits, e.g. 1024 (no 0x, 1e3, + or spaces)';
const NUMBER_TEXT = 'a decimal number such as 0.25 (no 1e-2, + or spaces)';
const BOOL_TEXT = 'true, false, 1 or 0';

/** Every config key, flat, in documentation order. socket.path's default depends on the environment. */
export function keySpecs(defaultSocketPath: string): Record<string, KeySpec> {
  return {
    'socket.path': { doc: 'Path of the Unix socket. ~ and $VARS are expanded; a relative path is resolved against the directory of the config file that sets it, else the working directory.', format: pathString, path: true, default: defaultSocketPath, env: 'FUGUE_SOCKET_PATH', flag: 'socket-path', unit: 'path' },
    'socket.mode': { doc: 'Permission bits of the socket file, applied at bind time (never wider, even briefly).', format: fileMode, default: '0600', env: 'FUGUE_SOCKET_MODE', flag: 'socket-mode', unit: 'octal string' },
    'socket.checkIntervalMs': { doc: 'How often the server checks that its socket file is still there (tmp cleaners delete sockets) and re-creates it; 0 = never.', format: integer(0, 3_600_000), default: 1000, env: 'FUGUE_SOCKET_CHECK_INTERVAL_MS', flag: 'socket-check-interval-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'shutdown.timeoutMs': { doc: 'How long a graceful shutdown waits for clients to leave before closing them.', format: integer(0, 3_600_000), default: 10_000, env: 'FUGUE_SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'limits.maxClients': { doc: 'Connections served at once; one more gets error server_busy and is closed.', format: integer(1, 1_000_000), default: 1024, env: 'FUGUE_MAX_CLIENTS', flag: 'max-clients', coerce: toInteger, textForm: INT_TEXT, unit: 'connections' },
    'limits.maxFrameBytes': { doc: 'Largest frame payload accepted; a larger frame gets frame_too_large and the connection is closed.', format: integer(1024, 0xffff_ffff), default: 16_777_216, env: 'FUGUE_MAX_FRAME_BYTES', flag: 'max-frame-bytes', coerce: toInteger, textForm: INT_TEXT, unit: 'bytes' },
    'limits.maxBufferedBytes': { doc: 'Unsent reply bytes a client may let pile up (it stopped reading) before it is disconnected. At least 2 x limits.maxFrameBytes.', format: integer(2048, Number.MAX_SAFE_INTEGER), default: 33_554_432, env: 'FUGUE_MAX_BUFFERED_BYTES', flag: 'max-buffered-bytes', coerce: toInteger, textForm: INT_TEXT, unit: 'bytes' },
    'limits.handshakeTimeoutMs': { doc: 'Time a new connection has to send connect; 0 disables the timeout.', format: integer(0, 3_600_000), default: 10_000, env: 'FUGUE_HANDSHAKE_TIMEOUT_MS', flag: 'handshake-timeout-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'limits.frameTimeoutMs': { doc: 'A frame must arrive whole within this long of its first byte (stops slowloris clients); 0 = no limit.', format: integer(0, 3_600_000), default: 30_000, env: 'FUGUE_FRAME_TIMEOUT_MS', flag: 'frame-timeout-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'limits.idleTimeoutMs': { doc: 'Close a connection with no traffic in either direction for this long; 0 = never.', format: integer(0, 86_400_000), default: 0, env: 'FUGUE_IDLE_TIMEOUT_MS', flag: 'idle-timeout-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'log.level': { doc: 'Lowest pino level written to stdout.', format: oneOf(LOG_LEVELS), default: 'info', env: 'FUGUE_LOG_LEVEL', flag: 'log-level', unit: LOG_LEVELS.join('|') },
    'log.maxBufferedBytes': { doc: 'Log bytes held in memory while the log reader (a pipe, journald) is not reading; lines beyond it are dropped and counted (fugue_log_lines_dropped_total), never waited for.', format: integer(16_384, 1_073_741_824), default: 1_048_576, env: 'FUGUE_LOG_MAX_BUFFERED_BYTES', flag: 'log-max-buffered-bytes', coerce: toInteger, textForm: INT_TEXT, unit: 'bytes' },
    'http.enabled': { doc: 'Serve /metrics, /healthz and /readyz over HTTP.', format: boolean, default: true, env: 'FUGUE_HTTP_ENABLED', flag: 'http-enabled', coerce: toBoolean, textForm: BOOL_TEXT, unit: 'boolean' },
    'http.host': { doc: 'Address the HTTP sidecar listens on. Keep it on loopback unless a scraper elsewhere needs it.', format: nonEmptyString, default: '127.0.0.1', env: 'FUGUE_HTTP_HOST', flag: 'http-host', unit: 'address' },
    'http.port': { doc: 'TCP port of the HTTP sidecar; 0 picks a free port (logged).', format: integer(0, 65535), default: 9464, env: 'FUGUE_HTTP_PORT', flag: 'http-port', coerce: toInteger, textForm: INT_TEXT, unit: 'port' },
    'http.maxConnections': { doc: 'Connections the HTTP sidecar holds open at once; at the cap the one idle longest makes room, else the newcomer is closed; both counted (fugue_http_connections_rejected_total). Reserved out of the open-files limit, so HTTP clients cannot take the socket clients\' descriptors.', format: integer(1, 1024), default: 16, env: 'FUGUE_HTTP_MAX_CONNECTIONS', flag: 'http-max-connections', coerce: toInteger, textForm: INT_TEXT, unit: 'connections' },
    'http.keepAliveTimeoutMs': { doc: 'How long an idle keep-alive HTTP connection is kept.', format: integer(0, 600_000), default: 5000, env: 'FUGUE_HTTP_KEEP_ALIVE_TIMEOUT_MS', flag: 'http-keep-alive-timeout-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'http.headersTimeoutMs': { doc: 'Time an HTTP client has to send its request headers (stops slowloris scrapers); checked every second.', format: integer(1000, 600_000), default: 5000, env: 'FUGUE_HTTP_HEADERS_TIMEOUT_MS', flag: 'http-headers-timeout-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'tracing.enabled': { doc: 'Create OpenTelemetry spans per connection and per message.', format: boolean, default: true, env: 'FUGUE_TRACING_ENABLED', flag: 'tracing-enabled', coerce: toBoolean, textForm: BOOL_TEXT, unit: 'boolean' },
    'tracing.exporter': { doc: 'Where spans go: "none", "otlp" or "console". Empty = OTEL_TRACES_EXPORTER, else "none".', format: oneOf(['', 'none', 'otlp', 'console']), default: '', env: 'FUGUE_TRACING_EXPORTER', flag: 'tracing-exporter', unit: 'none|otlp|console' },
    'tracing.endpoint': { doc: 'OTLP/HTTP base URL (e.g. http://127.0.0.1:4318). Empty = OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318.', format: urlOrEmpty, default: '', env: 'FUGUE_TRACING_ENDPOINT', flag: 'tracing-endpoint', unit: 'URL' },
    'tracing.protocol': { doc: 'OTLP encoding. Empty = OTEL_EXPORTER_OTLP_PROTOCOL, else "http/protobuf".', format: oneOf(['', 'http/protobuf', 'http/json']), default: '', env: 'FUGUE_TRACING_PROTOCOL', flag: 'tracing-protocol', unit: 'http/protobuf|http/json' },
    'tracing.sampleRatio': { doc: 'Share of root message traces sampled (a client traceparent\'s sampled flag is honoured). -1 = OTEL_TRACES_SAMPLER, else 1.', format: (v) => (v === -1 ? undefined : ratio(v)), default: -1, env: 'FUGUE_TRACING_SAMPLE_RATIO', flag: 'tracing-sample-ratio', coerce: toDecimal, textForm: NUMBER_TEXT, unit: '0..1, or -1' },
    'tracing.sampler': { doc: '"outcome": every message whose reply is an error, and every one at least tracing.slowThresholdMs slow, is traced, plus tracing.sampleRatio of the rest; "ratio": tracing.sampleRatio of all, blind to the outcome. A client traceparent decides for its own message either way.', format: oneOf(['outcome', 'ratio']), default: 'outcome', env: 'FUGUE_TRACING_SAMPLER', flag: 'tracing-sampler', unit: 'outcome|ratio' },
    'tracing.slowThresholdMs': { doc: 'With tracing.sampler "outcome": a message whose reply took at least this long (from the read that delivered it to the write of its reply) is always traced.', format: integer(0, 3_600_000), default: 25, env: 'FUGUE_TRACING_SLOW_THRESHOLD_MS', flag: 'tracing-slow-threshold-ms', coerce: toInteger, textForm: INT_TEXT, unit: 'ms' },
    'tracing.serviceName': { doc: 'service.name resource attribute. Empty = OTEL_SERVICE_NAME, else "fugue-server".', format: anyString, default: '', env: 'FUGUE_TRACING_SERVICE_NAME', flag: 'tracing-service-name', unit: 'string' },
    'tracing.messageParent': { doc: '"link": each message span is its own trace, linked to its connection span; "connection": message spans are children of the connection span.', format: oneOf(['link', 'connection']), default: 'link', env: 'FUGUE_TRACING_MESSAGE_PARENT', flag: 'tracing-message-parent', unit: 'link|connection' },
  };
}

/** Build the nested convict schema from the flat key specs. */
export function convictSchema(specs: Record<string, KeySpec>): convict.Schema<Record<string, unknown>> {
  const root: Record<string, Record<string, convict.SchemaObj>> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const [group, leaf] = key.split('.') as [string, string];
    (root[group] ??= {})[leaf] = { doc: spec.doc, format: spec.format, default: spec.default, env: spec.env };
  }
  return root;
}

/** The validated, frozen configuration (a type, not an interface: it is also a record of groups). */
export type Config = {
  socket: { path: string; mode: string; checkIntervalMs: number };
  shutdown: { timeoutMs: number };
  limits: { maxClients: number; maxFrameBytes: number; maxBufferedBytes: number; handshakeTimeoutMs: number; frameTimeoutMs: number; idleTimeoutMs: number };
  log: { level: LogLevel; maxBufferedBytes: number };
  http: { enabled: boolean; host: string; port: number; maxConnections: number; keepAliveTimeoutMs: number; headersTimeoutMs: number };
  tracing: {
    enabled: boolean;
    exporter: '' | 'none' | 'otlp' | 'console';
    endpoint: string;
    protocol: '' | 'http/protobuf' | 'http/json';
    sampleRatio: number;
    serviceName: string;
    messageParent: 'link' | 'connection';
    sampler: 'outcome' | 'ratio';
    slowThresholdMs: number;
  };
};
