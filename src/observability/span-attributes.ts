// The attributes of a message span, in one table that both span paths take
// them from: the SDK path builds its Attributes object from it (spans.ts), and
// the lean path compiles it once into encoders of OTLP KeyValue fields
// (lean-spans.ts). Order, keys and values are the same on both; a test
// decodes the lean path's bytes and compares them with the SDK's spans.

import type { Attributes } from '@opentelemetry/api';

/** Longest string attribute value kept (a client-chosen message id), in characters. */
export const MAX_ATTRIBUTE_CHARS = 256;

/** What a message span's attributes are made of. */
export interface MessageSpanFacts {
  /** The bounded type label (rpc.method and the span's name). */
  name: string;
  clientId: number;
  /** Payload size, in bytes. */
  bytes: number;
  /** The message's id as the client sent it. */
  messageId: string | number | undefined;
  errorCode: string | undefined;
  /** Why the span was recorded: parent, error, slow, connection or ratio. */
  reason: string;
}

/**
 * How a value is encoded: `constant` (the same for every span), `enum` (a
 * string from a small set, encoded once per value), `int`, or `text` (a
 * client's string, or a number written as its digits; cut to
 * MAX_ATTRIBUTE_CHARS).
 */
export type AttributeKind = 'constant' | 'enum' | 'int' | 'text';

export interface MessageSpanAttribute {
  readonly key: string;
  readonly kind: AttributeKind;
  /** The value for one span; undefined leaves the attribute out. */
  value(facts: MessageSpanFacts): string | number | undefined;
}

export const MESSAGE_SPAN_ATTRIBUTES: readonly MessageSpanAttribute[] = [
  { key: 'rpc.system.name', kind: 'constant', value: () => 'fugue' },
  { key: 'rpc.method', kind: 'enum', value: (f) => f.name },
  { key: 'network.transport', kind: 'constant', value: () => 'unix' },
  { key: 'fugue.client.id', kind: 'int', value: (f) => f.clientId },
  { key: 'fugue.message.size', kind: 'int', value: (f) => f.bytes },
  { key: 'fugue.message.outcome', kind: 'enum', value: (f) => (f.errorCode === undefined ? 'ok' : 'error') },
  { key: 'fugue.sampling.reason', kind: 'enum', value: (f) => f.reason },
  { key: 'fugue.message.id', kind: 'text', value: (f) => f.messageId },
  { key: 'error.type', kind: 'enum', value: (f) => f.errorCode },
];

/** A client's text cut to MAX_ATTRIBUTE_CHARS. */
export function clip(text: string): string {
  return text.length > MAX_ATTRIBUTE_CHARS ? text.slice(0, MAX_ATTRIBUTE_CHARS) : text;
}

/** The attributes as the SDK takes them. */
export function messageSpanAttributes(facts: MessageSpanFacts): Attributes {
  const out: Attributes = {};
  for (const a of MESSAGE_SPAN_ATTRIBUTES) {
    const v = a.value(facts);
    if (v !== undefined) out[a.key] = a.kind === 'text' ? clip(String(v)) : v;
  }
  return out;
}
