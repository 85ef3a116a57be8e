// Protocol v1 messages: parsing of client payloads and construction of server
// replies. Pure: no I/O. docs/protocol.md is the user-facing contract.

import { isUtf8 } from 'node:buffer';
import { JsonPayload, type Frameable } from './frame.js';
import { utf8Slice } from './utf8.js';

/** The protocol version this server speaks (docs/protocol.md). */
export const PROTOCOL_VERSION = 1;

/** Every error code of protocol v1 (docs/protocol.md, "Error codes"). */
export const ERROR_CODES = [
  'bad_message',
  'unknown_type',
  'handshake_required',
  'already_connected',
  'unsupported_version',
  'frame_too_large',
  'server_busy',
  'timeout',
  'internal',
] as const;
/** A protocol error code, as sent in `error` replies. */
export type ProtocolErrorCode = (typeof ERROR_CODES)[number];

/** A request id: an integer or a string, echoed in the reply. */
export type MessageId = number | string;

/** A decoded client message: a JSON object whose `type` is a string. */
export interface ClientMessage {
  readonly type: string;
  readonly id?: MessageId;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly [field: string]: unknown;
}

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; code: 'bad_message'; reason: string; id: MessageId | undefined };

function isValidId(id: unknown): id is MessageId {
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id));
}

/**
 * Parse one frame payload, `payload[start, end)`. Never throws: every malformed
 * payload becomes a `bad_message` result with a reason a client author can act on.
 */
export function parseMessage(payload: Buffer, start = 0, end = payload.length): ParseResult {
  if (end === start) {
    return { ok: false, code: 'bad_message', reason: 'empty frame (length 0); every frame must carry a JSON object', id: undefined };
  }
  const text = utf8Slice(payload, start, end);
  // Decoding replaces invalid UTF-8 with U+FFFD instead of failing, so a text
  // without one came from valid UTF-8; only one with it needs the full check
  // (a client may send U+FFFD itself). Most payloads skip that second pass.
  if (text.includes('\uFFFD') && !isUtf8(payload.subarray(start, end))) {
    return { ok: false, code: 'bad_message', reason: 'payload is not valid UTF-8; encode the JSON text as UTF-8', id: undefined };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, code: 'bad_message', reason: `payload is not valid JSON (${(err as Error).message}); send one JSON object per frame`, id: undefined };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { ok: false, code: 'bad_message', reason: `payload is ${got}, not a JSON object; send an object with a string "type" field`, id: undefined };
  }
  const obj = value as Record<string, unknown>;
  const rawId = obj.id;
  const id = isValidId(rawId) ? rawId : undefined;
  if (rawId !== undefined && id === undefined) {
    return { ok: false, code: 'bad_message', reason: `field "id" must be an integer or a string, got ${describe(rawId)}`, id: undefined };
  }
  if (typeof obj.type !== 'string') {
    return { ok: false, code: 'bad_message', reason: obj.type === undefined ? 'missing field "type"; every message needs a string "type"' : `field "type" must be a string, got ${describe(obj.type)}`, id };
  }
  return { ok: true, message: obj as ClientMessage };
}

/** A short description of a JSON value's type for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a string' : JSON.stringify(value);
  if (typeof value === 'number') return Number.isInteger(value) ? `the integer ${value}` : `the number ${value}`;
  return `a ${typeof value}`;
}

// --- server -> client ---

/** A message from the server: an object whose `type` is its kind; `id` (added by the dispatch step) links a reply to its request. */
export interface ServerMessage {
  type: string;
  id?: MessageId;
  [field: string]: unknown;
}

/**
 * The framed form of `reply` answering request `id`: the reply's JSON with
 * `id` right after `type` (docs/protocol.md, "Common fields"), or no `id` for
 * an unsolicited message. The reply object is not changed, so a handler may
 * return the same object every time. Throws what JSON.stringify throws (a
 * RangeError for data nested too deeply).
 */
export function replyPayload(reply: ServerMessage, id: MessageId | undefined): Frameable {
  const json = JSON.stringify(reply);
  if (id === undefined) return new JsonPayload(json);
  // The usual reply literal starts with its type: put the id right after it,
  // without copying the object.
  const head = `{"type":${JSON.stringify(reply.type)}`;
  const idJson = typeof id === 'number' ? String(id) : JSON.stringify(id);
  if (reply.id === undefined && json.startsWith(head)) {
    return new JsonPayload(`${head},"id":${idJson}${json.length === head.length + 1 ? '}' : json.slice(head.length)}`);
  }
  return new JsonPayload(JSON.stringify(Object.assign({ type: reply.type, id }, reply, { id })));
}

/** An `error` reply: its code, a message that says what to do, and any extra fields. */
export function errorMessage(code: ProtocolErrorCode, message: string, id?: MessageId, extra?: Record<string, unknown>): ServerMessage {
  const msg: ServerMessage = id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message };
  return extra === undefined ? msg : Object.assign(msg, extra);
}

export function shutdownMessage(reason: string, timeoutMs: number): ServerMessage {
  return { type: 'shutdown', reason, timeout_ms: timeoutMs };
}

/** Messages for the fixed error situations, so every sender says the same thing. */
export const ERROR_TEXT = {
  handshake_required: 'send "connect" with protocol_version 1 before any other message',
  already_connected: 'this connection has already completed "connect"; open a new connection to connect again',
  server_busy: (max: number) => `the server has reached its client limit (limits.maxClients = ${max}); retry later or ask the operator to raise the limit`,
  server_draining: 'the server is shutting down and accepts no new clients; reconnect in a moment (to its replacement)',
  frame_too_large: (length: number, max: number) => `frame length ${length} exceeds the limit of ${max} bytes (limits.maxFrameBytes); split the data into smaller messages. The connection is closed because the stream cannot be resynchronised`,
  handshake_timeout: (ms: number) => `no "connect" received within ${ms} ms (limits.handshakeTimeoutMs); send "connect" right after connecting`,
  frame_timeout: (ms: number, pending: number) => `a frame was not completed within ${ms} ms of its first byte (limits.frameTimeoutMs; ${pending} bytes received); send each frame whole`,
  idle_timeout: (ms: number) => `no traffic for ${ms} ms (limits.idleTimeoutMs); send "ping" periodically to stay connected`,
  unknown_type: (type: string) => `unknown message type ${JSON.stringify(type.length > 64 ? `${type.slice(0, 64)}...` : type)}; known types: `,
  internal: 'the server failed while handling this message; it has been logged. Retry, and report it if it persists',
} as const;
