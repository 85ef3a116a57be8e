// Precomputed replies: one implementation of Frameable (frame.ts). A reply of
// one fixed shape, `{"type":T,"id":<request id>,<fixed fields>,"<field>":<value>}`,
// has everything but the id and the one variable value serialised once, as
// bytes; a reply then costs JSON.stringify of its value, not a walk over a
// reply object (about a tenth of the echo path). The text is kept inside this
// module (as pino keeps its precomputed JSON inside asJson); what it writes is
// exactly what JSON.stringify writes for the same object.

import type { Frameable } from './frame.js';
import type { MessageId } from './messages.js';
import { utf8Bound, utf8Write } from './utf8.js';

const ID_KEY = Buffer.from(',"id":');
const CLOSE_BRACE = 0x7d;

/** A reply shape: make one per shape, once; `payload()` per reply. */
export class ReplyShape {
  readonly type: string;
  readonly field: string | undefined;
  readonly #head: Buffer; // {"type":<type>
  readonly #fixed: Buffer; // ,<fixed fields>
  readonly #fieldKey: Buffer; // ,"<field>":

  /**
   * @param type the reply's `type`
   * @param field the name of its one variable field, if it has one
   * @param fixed fields with values known in advance, written after `id`
   */
  constructor(type: string, field?: string, fixed: Record<string, unknown> = {}) {
    this.type = type;
    this.field = field;
    this.#head = Buffer.from(`{"type":${JSON.stringify(type)}`);
    const fixedText = JSON.stringify(fixed).slice(1, -1);
    this.#fixed = Buffer.from(fixedText === '' ? '' : `,${fixedText}`);
    this.#fieldKey = Buffer.from(field === undefined ? '' : `,${JSON.stringify(field)}:`);
  }

  /**
   * The framed form of `{type, id, ...fixed, [field]: value}` for request `id`
   * (none when undefined). The value is serialised now, and the payload never
   * changes afterwards. Throws what JSON.stringify throws (a RangeError for
   * data nested too deeply). A value JSON.stringify leaves out of an object
   * (undefined, a function) leaves the field out.
   */
  payload(id: MessageId | undefined, value?: unknown): Frameable {
    const json = this.field === undefined ? undefined : (JSON.stringify(value) as string | undefined);
    return new ShapedPayload(this.#head, this.#fixed, this.#fieldKey, id, json);
  }
}

class ShapedPayload implements Frameable {
  readonly #head: Buffer;
  readonly #fixed: Buffer;
  readonly #fieldKey: Buffer;
  readonly #id: MessageId | undefined;
  readonly #json: string | undefined;

  constructor(head: Buffer, fixed: Buffer, fieldKey: Buffer, id: MessageId | undefined, json: string | undefined) {
    this.#head = head;
    this.#fixed = fixed;
    this.#fieldKey = fieldKey;
    this.#id = id;
    this.#json = json;
  }

  maxBytes(): number {
    const id = this.#id;
    // ,"id": + a safe integer's 16 characters, or a string id's JSON (6 bytes a unit at worst: \uXXXX)
    const idBytes = id === undefined ? 0 : ID_KEY.length + (typeof id === 'number' ? 16 : 6 * id.length + 2);
    const value = this.#json === undefined ? 0 : this.#fieldKey.length + utf8Bound(this.#json);
    return this.#head.length + idBytes + this.#fixed.length + value + 1;
  }

  writeTo(buf: Buffer, at: number): number {
    at = putBytes(buf, at, this.#head);
    const id = this.#id;
    if (id !== undefined) {
      at = putBytes(buf, at, ID_KEY);
      at = typeof id === 'number' ? putInteger(buf, at, id) : at + utf8Write(buf, JSON.stringify(id), at);
    }
    at = putBytes(buf, at, this.#fixed);
    if (this.#json !== undefined) {
      at = putBytes(buf, at, this.#fieldKey);
      at += utf8Write(buf, this.#json, at);
    }
    buf[at] = CLOSE_BRACE;
    return at + 1;
  }
}

// Short byte runs are copied in JS: cheaper than a native call for ~10 bytes.
function putBytes(buf: Buffer, at: number, bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) buf[at + i] = bytes[i] as number;
  return at + bytes.length;
}

// The decimal digits of a safe integer (what JSON.stringify gives; -0 is "0").
function putInteger(buf: Buffer, at: number, n: number): number {
  if (n < 0) {
    buf[at++] = 0x2d;
    n = -n;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}
