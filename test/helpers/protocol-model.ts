// A model of fugue protocol v1, written from docs/protocol.md and not from the
// implementation. Given the bytes a client sends, it predicts what the server
// must answer (the reply type, or the error code(s) the contract allows, and
// the id) and whether the server then closes the connection; given a frame the
// server sent, it says whether the contract allows it. The fuzz in
// test/reliability/hostile-input.test.ts holds the real daemon to it.
//
// The message types are data, not code: PROTOCOL_V1 holds the core types, and
// a server that registers more (features, src/server/handlers.ts) is modelled
// by withMessages(PROTOCOL_V1, {...}); nothing else here names a type.

export type Id = string | number;

/** How a message field is checked: a missing required field, or a present one of another kind, gets bad_message. */
export type FieldKind = 'integer' | 'string' | 'json';

export interface FieldSpec {
  readonly kind: FieldKind;
  readonly required: boolean;
}

/**
 * What a message does to its connection besides its reply:
 * - 'handshake' (connect): once handshaken it gets already_connected; a
 *   `protocol_version` other than the spec's version gets unsupported_version,
 *   and the server closes the connection; otherwise the connection is handshaken.
 * - 'detach': no reply; the server closes the connection.
 */
export type Role = 'handshake' | 'detach';

export interface MessageSpec {
  /** The type of the direct reply; undefined when there is none. */
  readonly reply: string | undefined;
  /** The message's own fields (unknown extra fields are ignored). */
  readonly fields?: Readonly<Record<string, FieldSpec>>;
  /** Served before the handshake; every other type gets handshake_required then. */
  readonly beforeHandshake?: boolean;
  readonly role?: Role;
  /** A request field the reply carries back unchanged, under the same name (echo: `data`). */
  readonly echoes?: string;
  /** The reply's own fields: name -> what a correct value satisfies. */
  readonly replyFields?: Readonly<Record<string, (value: unknown) => boolean>>;
}

export interface ProtocolSpec {
  readonly version: number;
  /** Client message type -> what the server does with it. */
  readonly messages: Readonly<Record<string, MessageSpec>>;
  /** Server messages that answer no request (and so never carry an id). */
  readonly unsolicited: readonly string[];
  /** Every `code` an `error` may carry. */
  readonly errorCodes: readonly string[];
}

const isSafeInt = (v: unknown): boolean => Number.isSafeInteger(v);
const isString = (v: unknown): boolean => typeof v === 'string';

/** docs/protocol.md, "Client to server", "Server to client" and "Error codes". */
export const PROTOCOL_V1: ProtocolSpec = Object.freeze({
  version: 1,
  messages: Object.freeze({
    connect: {
      reply: 'connected',
      beforeHandshake: true,
      role: 'handshake',
      fields: { protocol_version: { kind: 'integer', required: true }, client_name: { kind: 'string', required: false } },
      replyFields: { protocol_version: (v: unknown) => v === 1, server_version: isString, client_id: isSafeInt },
    },
    ping: { reply: 'pong' },
    echo: { reply: 'echo', fields: { data: { kind: 'json', required: true } }, echoes: 'data' },
    status: {
      reply: 'status',
      replyFields: { server_version: isString, uptime_ms: isSafeInt, clients: isSafeInt, draining: (v: unknown) => typeof v === 'boolean' },
    },
    detach: { reply: undefined, role: 'detach' },
  } satisfies Record<string, MessageSpec>),
  unsolicited: ['shutdown'],
  errorCodes: ['bad_message', 'unknown_type', 'handshake_required', 'already_connected', 'unsupported_version', 'frame_too_large', 'server_busy', 'timeout', 'internal'],
});

/** `base` plus message types a server registers on top of it; a type `base` already has is refused, as the server refuses it. */
export function withMessages(base: ProtocolSpec, extra: Readonly<Record<string, MessageSpec>>): ProtocolSpec {
  for (const type of Object.keys(extra)) {
    if (Object.hasOwn(base.messages, type)) throw new Error(`message type "${type}" is already in the spec`);
  }
  return Object.freeze({ ...base, messages: Object.freeze({ ...base.messages, ...extra }) });
}

/** The field of the handshake message that carries the protocol version. */
export const VERSION_FIELD = 'protocol_version';

/** Default limits.maxFrameBytes (docs/protocol.md, "Framing"). */
export const DEFAULT_MAX_FRAME_BYTES = 16_777_216;

/** What the server must send in answer to one frame. */
export type Expect =
  | {
      readonly kind: 'reply';
      /** The client message type it answers. */
      readonly request: string;
      readonly type: string;
      readonly id: Id | undefined;
      /** The echoed field and the JSON of the value sent. */
      readonly echo?: { readonly field: string; readonly json: string };
    }
  | { readonly kind: 'error'; readonly codes: readonly string[]; readonly id: Id | undefined };

export interface Prediction {
  /** undefined: the frame gets no reply. */
  readonly expect: Expect | undefined;
  /** The server closes the connection after the reply (if any). */
  readonly closes: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function fieldOk(value: unknown, present: boolean, f: FieldSpec): boolean {
  if (!present) return !f.required;
  switch (f.kind) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'string':
      return typeof value === 'string';
    case 'json':
      return true;
  }
}

/**
 * One client connection as the contract sees it: feed it what the client
 * sends, split anywhere, and it predicts a reply for each complete frame.
 * After a message that closes the connection nothing more is judged (the
 * contract promises nothing about bytes sent after it).
 */
export class ConnectionModel {
  readonly spec: ProtocolSpec;
  readonly maxFrameBytes: number;
  handshaken = false;
  closed = false;
  #messages: ReadonlyMap<string, MessageSpec>;
  #buf: Buffer = Buffer.alloc(0);

  constructor(spec: ProtocolSpec = PROTOCOL_V1, options: { maxFrameBytes?: number } = {}) {
    this.spec = spec;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    // A Map: a type named "constructor" or "__proto__" must not find Object.prototype.
    this.#messages = new Map(Object.entries(spec.messages));
  }

  /** A copy in the same state, to try a frame without committing to it. */
  clone(): ConnectionModel {
    const c = new ConnectionModel(this.spec, { maxFrameBytes: this.maxFrameBytes });
    c.handshaken = this.handshaken;
    c.closed = this.closed;
    c.#buf = this.#buf;
    return c;
  }

  /** Bytes of a frame not yet complete. */
  get pendingBytes(): number {
    return this.#buf.length;
  }

  /** Bytes the client sent: a prediction for each frame they complete, in order. */
  push(bytes: Buffer): Prediction[] {
    if (this.closed) return [];
    this.#buf = this.#buf.length === 0 ? bytes : Buffer.concat([this.#buf, bytes]);
    const out: Prediction[] = [];
    while (!this.closed && this.#buf.length >= 4) {
      const length = this.#buf.readUInt32BE(0);
      if (length > this.maxFrameBytes) {
        // Answered from the header alone; the stream cannot be resynchronised.
        this.closed = true;
        out.push({ expect: { kind: 'error', codes: ['frame_too_large'], id: undefined }, closes: true });
        break;
      }
      if (this.#buf.length < 4 + length) break;
      const payload = this.#buf.subarray(4, 4 + length);
      this.#buf = this.#buf.subarray(4 + length);
      out.push(this.judge(payload));
    }
    if (this.closed) this.#buf = Buffer.alloc(0);
    return out;
  }

  /** The prediction for one whole frame payload; updates the connection's state. */
  judge(payload: Buffer): Prediction {
    if (this.closed) throw new Error('the connection is closed: the contract says nothing about later frames');
    const error = (codes: readonly string[], id: Id | undefined, closes = false): Prediction => ({ expect: { kind: 'error', codes, id }, closes });
    const bad = (id?: Id) => error(['bad_message'], id);
    if (payload.length === 0) return bad();
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      return bad();
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return bad();
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad();
    const o = v as Record<string, unknown>;
    let id: Id | undefined;
    if (Object.hasOwn(o, 'id')) {
      if (typeof o.id === 'string' || (typeof o.id === 'number' && Number.isSafeInteger(o.id))) id = o.id;
      else return bad();
    }
    if (typeof o.type !== 'string') return bad(id);
    const type = o.type;
    const m = this.#messages.get(type);
    // "Any other message before it, whatever its type, gets handshake_required."
    if (!this.handshaken && m?.beforeHandshake !== true) return error(['handshake_required'], id);
    if (m === undefined) return error(['unknown_type'], id);
    const fieldsBad = Object.entries(m.fields ?? {}).some(([name, f]) => !fieldOk(o[name], Object.hasOwn(o, name), f));
    if (m.role === 'handshake') {
      // A second connect with bad fields: the contract allows either reading.
      if (this.handshaken) return error(fieldsBad ? ['bad_message', 'already_connected'] : ['already_connected'], id);
      if (fieldsBad) return bad(id);
      if (o[VERSION_FIELD] !== this.spec.version) {
        this.closed = true;
        return error(['unsupported_version'], id, true);
      }
      this.handshaken = true;
    } else if (fieldsBad) {
      return bad(id);
    }
    if (m.role === 'detach') {
      this.closed = true;
      return { expect: undefined, closes: true };
    }
    if (m.reply === undefined) return { expect: undefined, closes: false };
    if (m.echoes === undefined) return { expect: { kind: 'reply', request: type, type: m.reply, id }, closes: false };
    let json: string;
    try {
      json = JSON.stringify(o[m.echoes]);
    } catch {
      // Too deeply nested to encode (docs/protocol.md, `internal`).
      return error(['internal'], id);
    }
    return { expect: { kind: 'reply', request: type, type: m.reply, id, echo: { field: m.echoes, json } }, closes: false };
  }
}

/** Every server message type the spec allows: replies, `error`, and the unsolicited ones. */
export function serverTypes(spec: ProtocolSpec): ReadonlySet<string> {
  const replies = Object.values(spec.messages).flatMap((m) => (m.reply === undefined ? [] : [m.reply]));
  return new Set([...replies, 'error', ...spec.unsolicited]);
}

/**
 * A frame payload the server sent, checked against the contract: a non-empty
 * UTF-8 JSON object of a documented type, and an `error` with a documented code
 * and a message. Returns the message, or what is wrong with it.
 */
export function checkServerFrame(spec: ProtocolSpec, payload: Buffer): Record<string, unknown> | string {
  if (payload.length === 0) return 'server sent an empty frame';
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return 'server sent a frame that is not valid UTF-8';
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `server sent a frame that is not JSON: ${(err as Error).message}`;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return `server sent a non-object: ${text.slice(0, 100)}`;
  const o = v as Record<string, unknown>;
  if (typeof o.type !== 'string' || !serverTypes(spec).has(o.type)) return `server sent an undocumented type: ${text.slice(0, 100)}`;
  if (o.type === 'error') {
    if (typeof o.code !== 'string' || !spec.errorCodes.includes(o.code)) return `server sent an undocumented error code: ${text.slice(0, 200)}`;
    if (typeof o.message !== 'string' || o.message === '') return `error without a message: ${text.slice(0, 200)}`;
  }
  return o;
}

/** A short rendering of a server message for failure messages (echo data shortened). */
export function summary(msg: Record<string, unknown>): string {
  const s = JSON.stringify(msg.type === 'echo' ? { ...msg, data: `<${JSON.stringify(msg.data)?.length ?? 0} chars>` } : msg);
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
}

/** How `msg` (a checked server message) differs from what was expected, or undefined when it is right. */
export function mismatch(spec: ProtocolSpec, msg: Record<string, unknown>, e: Expect): string | undefined {
  if (e.kind === 'error') {
    if (msg.type !== 'error' || !e.codes.includes(msg.code as string)) return `expected error ${e.codes.join('|')}, got ${summary(msg)}`;
    if (msg.code === 'unsupported_version' && (JSON.stringify(msg.supported) !== `[${spec.version}]` || typeof msg.server_version !== 'string')) {
      return `unsupported_version without supported [${spec.version}] and server_version: ${summary(msg)}`;
    }
  } else if (msg.type !== e.type) {
    return `expected ${e.type}, got ${summary(msg)}`;
  }
  if (e.id === undefined) {
    if (Object.hasOwn(msg, 'id')) return `the request had no (valid) id but the reply carries one: ${summary(msg)}`;
  } else if (msg.id !== e.id) {
    return `expected id ${JSON.stringify(e.id)}, got ${summary(msg)}`;
  }
  if (e.kind === 'reply') {
    if (e.echo !== undefined && JSON.stringify(msg[e.echo.field]) !== e.echo.json) return `${e.echo.field} differs (sent ${e.echo.json.slice(0, 80)}), got ${summary(msg)}`;
    const fields = (Object.hasOwn(spec.messages, e.request) ? spec.messages[e.request]?.replyFields : undefined) ?? {};
    const wrong = Object.entries(fields).filter(([name, ok]) => !ok(msg[name])).map(([name]) => name);
    if (wrong.length > 0) return `malformed ${e.type} (${wrong.join(', ')}): ${summary(msg)}`;
  }
  return undefined;
}
