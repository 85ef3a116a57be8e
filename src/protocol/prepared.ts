// A message serialised and framed once, to be sent to many clients (fan-out:
// uWebSockets' publish writes one frame to every subscriber). It is a
// Frameable, so it queues behind replies like any payload and keeps each
// recipient's order; a connection whose queue holds only this message writes
// its frame as it is, with no copy (see connection.ts). Immutable once made.

import { encodeJsonFrame, HEADER_BYTES, type Frameable } from './frame.js';
import type { ServerMessage } from './messages.js';

/** A message serialised and framed once, to send to many clients (`FeatureScope.prepare`, `Stream.publish`). */
export class PreparedMessage implements Frameable {
  /** The message's `type`. */
  readonly type: string;
  /** The whole frame: length header and JSON payload. Never written to. */
  readonly frame: Buffer;

  /** Serialise `message` (no `id`: it is unsolicited) and frame it. Throws what JSON.stringify throws. */
  constructor(message: ServerMessage) {
    this.type = message.type;
    this.frame = encodeJsonFrame(JSON.stringify(message));
  }

  /** The payload's size, in bytes (exact). */
  maxBytes(): number {
    return this.frame.length - HEADER_BYTES;
  }

  writeTo(buf: Buffer, at: number): number {
    return at + this.frame.copy(buf, at, HEADER_BYTES);
  }
}
