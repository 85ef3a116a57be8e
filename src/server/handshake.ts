// The two message types that drive the connection itself rather than a
// feature (docs/protocol.md): `connect`, the handshake, and `detach`. This is
// the only code that completes a handshake; handlers and features cannot.

import { describe, PROTOCOL_VERSION, replyPayload, ReplyShape, type ClientMessage, type Frameable, type MessageId, type ServerMessage } from '../protocol/index.js';
import type { CloseReason } from './events.js';
import { alreadyConnected, connected, unsupportedVersion } from './replies.js';

/** What the handshake step needs of a connection. */
export interface HandshakeTarget {
  readonly clientId: number;
  readonly handshaken: boolean;
  /** Mark the handshake complete (called only from here). */
  completeHandshake(clientName: string | undefined): void;
  /** Close cleanly once the reply (if any) is written. */
  closeAfterReply(reason: CloseReason): void;
}

export class Handshake {
  readonly #version: string;
  // `connected` is sent once per connection: its fixed fields are serialised once per server.
  readonly #connected: ReplyShape;

  constructor(version: string) {
    this.#version = version;
    this.#connected = new ReplyShape('connected', 'client_id', { protocol_version: PROTOCOL_VERSION, server_version: version });
  }

  /** True for the types this step handles. */
  handles(type: string): boolean {
    return type === 'connect' || type === 'detach';
  }

  /** What is wrong with a control message's fields, if anything. */
  validate(msg: ClientMessage): string | undefined {
    if (msg.type !== 'connect') return undefined;
    if (typeof msg.protocol_version !== 'number' || !Number.isInteger(msg.protocol_version)) {
      return msg.protocol_version === undefined
        ? 'missing field "protocol_version"; send {"type":"connect","protocol_version":1}'
        : `field "protocol_version" must be an integer, got ${describe(msg.protocol_version)}`;
    }
    if (msg.client_name !== undefined && typeof msg.client_name !== 'string') {
      return `field "client_name" must be a string, got ${describe(msg.client_name)}`;
    }
    return undefined;
  }

  /** Handle a validated `connect` or `detach`; returns the reply, if any. */
  handle(msg: ClientMessage, target: HandshakeTarget): ServerMessage | undefined {
    if (msg.type === 'detach') {
      target.closeAfterReply('detach');
      return undefined;
    }
    if (target.handshaken) return alreadyConnected();
    const version = msg.protocol_version as number;
    if (version !== PROTOCOL_VERSION) {
      target.closeAfterReply('protocol_error');
      return unsupportedVersion(version, this.#version);
    }
    target.completeHandshake(msg.client_name as string | undefined);
    return connected(this.#version, target.clientId);
  }

  /** Frame a reply of this step (`connected` from its precomputed shape). */
  serialize(reply: ServerMessage, id: MessageId | undefined): Frameable {
    return reply.type === 'connected' ? this.#connected.payload(id, reply.client_id) : replyPayload(reply, id);
  }
}
