// What the client accepts from a server (issue 13, point 6: the client
// distrusts the server). Pure: no I/O. Every frame must be one UTF-8 JSON
// object with a string `type` and, if present, an integer or string `id`
// (docs/protocol.md, "Framing" and "Server to client"); the messages of
// protocol v1 must have their documented fields with their documented types.
// Types this client does not know pass with the generic checks only, so a
// newer server's extra messages (and extra fields) do not break it.

import { isUtf8 } from 'node:buffer';
import { FugueError } from '../errors.js';
import type { ServerMessage } from '../protocol/index.js';

/**
 * Text the server chose (a type, an error code or message) for an error
 * message: at most `max` characters, with control characters and lone
 * surrogates escaped so a hostile server cannot drive the terminal.
 */
export function serverText(value: unknown, max: number): string {
  const s = String(value);
  return quote(s.length > max ? s.slice(0, max) : s).slice(1, -1) + (s.length > max ? '...' : '');
}

// JSON.stringify escapes C0 controls, quotes and lone surrogates; DEL, the C1
// controls and the Unicode line separators are escaped here too.
function quote(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Bytes of a bad reply quoted in an error message. */
const EXCERPT_BYTES = 80;

/** A short, escaped excerpt of a payload for an error message. */
export function excerpt(payload: Uint8Array): string {
  const head = Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.length, EXCERPT_BYTES)).toString('utf8');
  return `${quote(head)}${payload.length > EXCERPT_BYTES ? `... (${payload.length} bytes in all)` : ''}`;
}

function valueExcerpt(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined) return typeof value;
  const safe = text.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > EXCERPT_BYTES ? `${safe.slice(0, EXCERPT_BYTES)}... (${safe.length} characters in all)` : safe;
}

/** FUGUE_ERR_CLIENT_BAD_REPLY: what was wrong, from which socket, and what to do. */
export function badReply(socketPath: string, what: string, got: string): FugueError {
  return new FugueError(
    'FUGUE_ERR_CLIENT_BAD_REPLY',
    `malformed reply from ${socketPath}: ${what}, got ${got}; the connection was closed. Check that ${socketPath} is a fugue-server socket (protocol 1); if it is, report this with the server's version`,
    { details: { socketPath, what } },
  );
}

/**
 * Decode one reply frame's payload into a message, or throw
 * FUGUE_ERR_CLIENT_BAD_REPLY naming the problem and quoting the start of the
 * payload. Never throws anything else.
 */
export function parseReply(payload: Uint8Array, socketPath: string): ServerMessage {
  if (payload.length === 0) throw badReply(socketPath, 'an empty frame (length 0) where a JSON object was due', 'nothing');
  if (!isUtf8(payload)) throw badReply(socketPath, 'a payload that is not valid UTF-8', excerpt(payload));
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8'));
  } catch {
    throw badReply(socketPath, 'a payload that is not JSON', excerpt(payload));
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badReply(socketPath, `a payload that is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}, not a JSON object`, excerpt(payload));
  }
  const msg = value as Record<string, unknown>;
  if (typeof msg.type !== 'string') throw badReply(socketPath, 'a message without a string "type"', excerpt(payload));
  if (msg.id !== undefined && typeof msg.id !== 'string' && !(typeof msg.id === 'number' && Number.isSafeInteger(msg.id))) {
    throw badReply(socketPath, `a "${serverText(msg.type, 40)}" message whose "id" is not an integer or a string`, excerpt(payload));
  }
  checkFields(msg as ServerMessage, socketPath);
  return msg as ServerMessage;
}

type FieldCheck = [field: string, ok: (v: unknown) => boolean, expected: string];

const isString = (v: unknown) => typeof v === 'string';
const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isBoolean = (v: unknown) => typeof v === 'boolean';
const isPresent = (v: unknown) => v !== undefined;

/** The documented fields of each protocol v1 server message (docs/protocol.md, "Server to client"). */
const FIELDS: Record<string, FieldCheck[]> = {
  connected: [['protocol_version', isCount, 'an integer'], ['server_version', isString, 'a string'], ['client_id', isCount, 'a non-negative integer']],
  pong: [],
  echo: [['data', isPresent, 'any JSON value']],
  status: [['server_version', isString, 'a string'], ['uptime_ms', isNumber, 'a non-negative number'], ['clients', isCount, 'a non-negative integer'], ['draining', isBoolean, 'true or false']],
  error: [['code', isString, 'a string'], ['message', isString, 'a string']],
  shutdown: [['reason', isString, 'a string'], ['timeout_ms', isNumber, 'a non-negative number']],
  // The clients feature (docs/protocol.md, "Extensions").
  clients: [['clients', isClientList, 'a list of clients (client_id, name, connected_at, handshaken, messages_in, messages_out, bytes_in, bytes_out)']],
};

function isClientList(v: unknown): boolean {
  return Array.isArray(v) && v.every((c: unknown) => {
    if (c === null || typeof c !== 'object') return false;
    const e = c as Record<string, unknown>;
    return isCount(e.client_id) && (e.name === null || isString(e.name)) && isString(e.connected_at) && isBoolean(e.handshaken)
      && isCount(e.messages_in) && isCount(e.messages_out) && isCount(e.bytes_in) && isCount(e.bytes_out);
  });
}

function checkFields(msg: ServerMessage, socketPath: string): void {
  const checks = Object.prototype.hasOwnProperty.call(FIELDS, msg.type) ? FIELDS[msg.type] as FieldCheck[] : [];
  for (const [field, ok, expected] of checks) {
    if (!ok(msg[field])) throw badReply(socketPath, `a "${msg.type}" message whose "${field}" is not ${expected}`, msg[field] === undefined ? 'no such field' : valueExcerpt(msg[field]));
  }
}

/**
 * Check that `reply` answers a request expecting `type`: it is that type or
 * an `error`. Throws FUGUE_ERR_CLIENT_BAD_REPLY otherwise.
 */
export function expectReply(reply: ServerMessage, type: string, request: string, socketPath: string): ServerMessage {
  if (reply.type === type || reply.type === 'error') return reply;
  throw badReply(socketPath, `a "${serverText(reply.type, 40)}" message in reply to ${request}, where "${type}" or "error" was due`, valueExcerpt(reply));
}
