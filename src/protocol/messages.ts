// Protocol v1 messages: parsing of client payloads and construction of server
// replies. Pure: no I/O. docs/protocol.md is the user-facing contract.

import { isUtf8 } from 'node:buffer';
import { utf8Slice } from './utf8.js';

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
export type ProtocolErrorCode = (typeof ERROR_CODES)[number];

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
  return { ok: true, message: obj as unknown as ClientMessage };
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

// Field order matches docs/protocol.md; `id` comes right after `type` when present.
// A server message is an object whose `type` is its kind; `id` links it to a request.
export interface ServerMessage {
  type: string;
  id?: MessageId;
  [field: string]: unknown;
}

/** What goes between a shaped reply's head and its id's JSON. */
export const SHAPED_ID_TEXT = ',"id":';

/**
 * A reply of one fixed shape, `{"type": T, "id": <request id>, ...fixed, "<field>": value}`:
 * fields with values known in advance (`fixed`), then one variable field. Its
 * fixed parts are made once, as text and as UTF-8 bytes, so a reply costs
 * JSON.stringify of its one value and not a walk over a reply object (about a
 * tenth of the echo path). Make one per shape, once; `reply(value)` per
 * message. The pump sets the request's id, as for any reply.
 */
export class ReplyShape {
  readonly type: string;
  /** `{"type":<type JSON>` */
  readonly headText: string;
  /** The fixed fields, then `,<field JSON>:` */
  readonly fieldText: string;
  readonly head: Buffer;
  readonly field: Buffer;
  readonly fixed: Readonly<Record<string, unknown>>;

  constructor(type: string, field: string, fixed: Record<string, unknown> = {}) {
    this.type = type;
    this.fixed = { ...fixed };
    this.headText = `{"type":${JSON.stringify(type)}`;
    const fixedText = JSON.stringify(fixed).slice(1, -1);
    this.fieldText = `${fixedText === '' ? '' : `,${fixedText}`},${JSON.stringify(field)}:`;
    this.head = Buffer.from(this.headText);
    this.field = Buffer.from(this.fieldText);
  }

  reply(value: unknown): ShapedReply {
    return new ShapedReply(this, value);
  }
}

/** One reply of a ReplyShape. */
export class ShapedReply {
  readonly shape: ReplyShape;
  readonly value: unknown;
  /** Set by the pump: the request's id. */
  id: MessageId | undefined = undefined;
  /** Set by `encodeValue()`: the JSON of `value` (undefined: the field is left out, as JSON.stringify does). */
  json: string | undefined = undefined;

  constructor(shape: ReplyShape, value: unknown) {
    this.shape = shape;
    this.value = value;
  }

  /** Serialise the value. Throws what JSON.stringify throws (a RangeError for data nested too deeply). */
  encodeValue(): void {
    this.json = JSON.stringify(this.value);
  }

  /** The whole JSON text (after `encodeValue()`), equal to JSON.stringify of `{ type, id, [field]: value }`. */
  text(): string {
    const s = this.shape;
    const head = this.id === undefined ? s.headText : `${s.headText}${SHAPED_ID_TEXT}${JSON.stringify(this.id)}`;
    return this.json === undefined ? `${head}}` : `${head}${s.fieldText}${this.json}}`;
  }
}

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
