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

// Text someone else chose (a client's name, a server's version, an error code or
// message, an echo) reaches an operator's terminal through fuguectl and error
// messages. Written as it is, it could drive the terminal (C0 and C1 controls:
// cursor moves, colours, title changes) or reorder what the operator reads
// (Unicode bidirectional and other format controls: the "Trojan Source" class,
// CVE-2021-42574). So every such character is shown as a visible escape:
// \n, \r, \t, else \u{hex}. Backslash is shown as \\, so an escape on the
// screen always stands for that character and cannot be forged with plain text.
//
// Escaped: C0 and C1 controls and DEL (\p{Cc}); every format character (\p{Cf}:
// U+00AD, U+061C, U+200B-U+200F, U+202A-U+202E, U+2060-U+2064, U+2066-U+206F,
// U+FEFF, the tag characters...); U+2065 (unassigned, inside the invisible-operator
// block); the line and paragraph separators U+2028, U+2029; lone surrogates.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u2060-\u206f\\]|\p{Cs}/gu;
// The same, and the double quote, for text shown between double quotes.
// eslint-disable-next-line no-control-regex
const UNSAFE_QUOTED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u2060-\u206f\\"]|\p{Cs}/gu;
// For JSON text: JSON.stringify already escaped C0, quotes, backslashes and lone surrogates.
const UNSAFE_IN_JSON = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u2060-\u206f]/gu;

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\', '"': '\\"' };

function escapeChar(c: string): string {
  return SHORT[c] ?? `\\u{${(c.codePointAt(0) as number).toString(16)}}`;
}

// Cut at most `max` UTF-16 units, never between the two halves of a pair.
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/**
 * Text someone else chose (a server's version, an error code or message, a
 * client's name, an echo), made safe to print: at most `max` UTF-16 units
 * (then `...`), with controls, format characters, line separators, lone
 * surrogates and backslashes written as visible escapes (see above). The one
 * function fuguectl and the client's errors use for such text.
 */
export function serverText(value: unknown, max: number): string {
  const s = String(value);
  const shown = cut(s, max).replace(UNSAFE, escapeChar);
  return s.length > max ? `${shown}...` : shown;
}

/** {@link serverText} between double quotes, with any double quote in it escaped too. */
export function quotedText(value: unknown, max: number): string {
  const s = String(value);
  const shown = cut(s, max).replace(UNSAFE_QUOTED, escapeChar);
  return `"${shown}"${s.length > max ? '...' : ''}`;
}

/** JSON text (from JSON.stringify) with what JSON leaves as it is (DEL, C1, format characters, separators) escaped, for messages. */
export function jsonText(json: string): string {
  return json.replace(UNSAFE_IN_JSON, escapeChar);
}

function quote(s: string): string {
  return quotedText(s, Number.MAX_SAFE_INTEGER);
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
  const safe = jsonText(text);
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
    throw badReply(socketPath, `a ${quotedText(msg.type, 40)} message whose "id" is not an integer or a string`, excerpt(payload));
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
  throw badReply(socketPath, `a ${quotedText(reply.type, 40)} message in reply to ${request}, where "${type}" or "error" was due`, valueExcerpt(reply));
}
