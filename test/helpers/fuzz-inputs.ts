// Hostile client input for the protocol fuzz (test/reliability/hostile-input.test.ts):
// seeded generators of frames (well-formed, malformed, at the size limit,
// oversized, deeply nested, split-sensitive) and of whole connection scripts,
// each frame judged by the protocol model (protocol-model.ts) as it is made.
// Which message types exist, and their fields, come from the model's spec only.
// Pure: no sockets, no timers.

import { ConnectionModel, VERSION_FIELD, type Expect, type FieldKind, type Id, type MessageSpec, type ProtocolSpec } from './protocol-model.js';
import { Random } from './rng.js';

export interface FuzzConfig {
  readonly spec: ProtocolSpec;
  /** The server's limits.maxFrameBytes. */
  readonly maxFrameBytes: number;
  /** Reply bytes one connection may have in flight: below limits.maxBufferedBytes, so a prompt reader is never a slow consumer. */
  readonly replyBudget: number;
  /** Worst-case bytes of a reply whose size does not follow from the request, by reply type. Default: DEFAULT_REPLY_BYTES. */
  readonly replyBytes?: Readonly<Record<string, number>>;
}

/** Cost of a reply of fixed shape (pong, status, an error) in the reply budget. */
export const DEFAULT_REPLY_BYTES = 400;
/** Depth of the deeply nested JSON sent where the server does not serialise it back. */
export const DEEP = 10_000;
/**
 * Depth of nested echoed data, expected back exactly. Deeper data (past ~4200
 * levels JSON.stringify overflows the stack) gets `internal`, at a depth that
 * differs between the server and this process: the driver tests it on its own.
 */
export const ECHO_DEPTH = 1000;
/**
 * Longest string put in a string field (client_name), in bytes: the server
 * keeps such fields and shows them in other replies (list_clients' names), so a
 * reply's worst case stays known. Longer strings go into ignored fields.
 */
export const MAX_STRING_FIELD_BYTES = 8192;

/** The seed of fuzz connection `index` under a master seed: connection i replays the same bytes for the same master seed. */
export function subSeed(master: number, index: number): number {
  let h = (master ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// --- random JSON --------------------------------------------------------------

export const ODD_STRINGS = ['', 'héllo', '日本語', '🎉💥', 'a\u0000b', '\t\n\r"\\/', '\u2028\u2029', '\ud800', 'x\udfff', '\u{10ffff}', '</script>', '${x}', '%s%n', 'null'];
const KEYS = ['a', 'type', 'id', 'data', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'ключ', '🔑', 'k'.repeat(50)];

/** A string of at most 2000 characters: ASCII, odd (lone surrogates, NUL...), any code point, long, or control characters. */
export function randomString(rng: Random): string {
  switch (rng.int(0, 4)) {
    case 0: {
      let s = '';
      for (let i = rng.int(0, 40); i > 0; i--) s += String.fromCharCode(rng.int(0x20, 0x7e));
      return s;
    }
    case 1:
      return rng.pick(ODD_STRINGS);
    case 2: {
      let s = '';
      for (let i = rng.int(0, 20); i > 0; i--) {
        const cp = rng.bool(0.8) ? rng.int(0, 0xd7ff) : rng.int(0xe000, 0x10ffff);
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    case 3:
      return 'x'.repeat(rng.int(0, 2000));
    default: {
      let s = '';
      for (let i = rng.int(1, 10); i > 0; i--) s += String.fromCharCode(rng.int(0, 0x1f));
      return s;
    }
  }
}

export function randomJson(rng: Random, depth = 0): unknown {
  const r = rng.next();
  if (depth > 3 || r < 0.55) {
    switch (rng.int(0, 7)) {
      case 0: return null;
      case 1: return rng.bool(0.5);
      case 2: return rng.int(-1e9, 1e9);
      case 3: return rng.next() * 1e6 - 5e5;
      case 4: return rng.pick([1e300, -1e-300, 2 ** 53, Number.MAX_SAFE_INTEGER, 0.1]);
      default: return randomString(rng);
    }
  }
  if (r < 0.78) return Array.from({ length: rng.int(0, 6) }, () => randomJson(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = rng.int(0, 6); i > 0; i--) {
    const key = rng.bool(0.5) ? rng.pick(KEYS) : randomString(rng);
    // A plain assignment to "__proto__" would set the prototype; define an own property like JSON.parse does.
    Object.defineProperty(o, key, { value: randomJson(rng, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return o;
}

/** `depth` nested arrays or objects; `closed` false leaves them unterminated (invalid JSON). */
export function nested(depth: number, kind: 'array' | 'object', closed = true): string {
  if (kind === 'array') return '['.repeat(depth) + (closed ? ']'.repeat(depth) : '');
  return '{"a":'.repeat(depth) + '0' + (closed ? '}'.repeat(depth) : '');
}

function hugeString(rng: Random, bytes: number): string {
  const pool = ['a', 'é', '日', '🎉', ' ', 'z', 'Ω'];
  let s = '';
  let b = 0;
  for (;;) {
    const c = rng.bool(0.9) ? 'x' : rng.pick(pool);
    if (b + Buffer.byteLength(c) > bytes) return s;
    s += c;
    b += Buffer.byteLength(c);
  }
}

// --- frames -------------------------------------------------------------------

export function frameOf(payload: Buffer, length = payload.length): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length >>> 0);
  return Buffer.concat([h, payload]);
}

const str = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

/** An object whose own "__proto__"-style keys survive like JSON.parse's would; undefined values are left out. */
function obj(entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) if (v !== undefined) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** A JSON text of exactly `target` bytes: the fields plus `padKey` holding a string of x's (undefined when the fields alone are longer). */
function padded(fields: Record<string, unknown>, target: number, padKey: string): Buffer | undefined {
  const base = Buffer.byteLength(JSON.stringify({ ...fields, [padKey]: '' }));
  const n = target - base;
  if (n < 0) return undefined;
  return str({ ...fields, [padKey]: 'x'.repeat(n) });
}

function validId(rng: Random): Id | undefined {
  switch (rng.int(0, 4)) {
    case 0: return undefined;
    case 1: return rng.int(0, 1e6);
    case 2: return -rng.int(1, 1e9);
    case 3: return randomString(rng).slice(0, 60);
    default: return rng.pick(['', 'p1', '0', 'ÿ', '🎉']);
  }
}

const WRONG_IDS: readonly unknown[] = [1.5, -2.25, {}, [], null, true, false, { n: 1 }, [1], 0.1];
/** Values of the wrong kind, and integers out of range (for the version field: another version). */
const WRONG_VALUES: Readonly<Record<Exclude<FieldKind, 'json'>, readonly unknown[]>> = {
  integer: ['1', 1.5, null, true, [], {}, '', '1.0', 2, 0, -1, 2 ** 31, 1e300],
  string: [42, null, [], {}, true, 1.5, ['n']],
};
const WRONG_TYPES: readonly unknown[] = [1, null, [], {}, true, ['ping'], { type: 'ping' }];
/** Types a server may not know; those the spec knows are left out. */
const MAYBE_UNKNOWN_TYPES: readonly string[] = ['nope', '', 'PING', 'Connect', 'connect ', ' ping', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'x'.repeat(5000), '💥', 'ping\u0000', 'session.list', 'shutdown', 'error', 'pong', 'clients'];

// Handwritten payloads whose meaning depends on JSON details; the model judges them.
const RAW_TEXTS: readonly string[] = [
  '{"type":"ping","id":1.0}',
  '{"type":"ping","id":1e2}',
  '{"type":"echo","data":1e400,"id":"inf"}',
  '\ufeff{"type":"ping"}',
  ' \t\r\n{"type":"ping"} \n',
  '{"type":"ping"}{"type":"ping"}',
  '{"type":"ping",}',
  "{'type':'ping'}",
  '{"type":"ping","type":"status"}',
  '{"type":"echo","data":"\\u0000\\ud800"}',
  '{"type":"echo","data":{"__proto__":{"polluted":1},"constructor":{"prototype":{}}}}',
  'null', '[]', '"ping"', '42', 'true', '{}', '[{"type":"ping"}]',
  '{"type":null}', '{"type":"ping","id":null}', '{"type":"ping","id":"x"}',
  '{"type":"connect","protocol_version":1.0}',
  '{"type":"connect","protocol_version":1e0,"client_name":"e"}',
  '{"type":"connect","protocol_version":1.5}',
  '{"type":"connect","protocol_version":"1"}',
  '{"type":"ping"\u0000}',
  '{"type":"ping","x":NaN}',
  '{"type":"ping","x":undefined}',
  '{"type":"echo"}',
  '{"type":"echo","data":null,"id":7}',
  '{"type":"ping","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","id":"tp"}',
  '{"type":"ping","traceparent":"ff-00000000000000000000000000000000-0000000000000000-00"}',
  '{"type":"ping","traceparent":12,"tracestate":{}}',
  '{"type":"ping","id":"\\ud800"}',
];

const INVALID_UTF8: readonly number[][] = [[0xff], [0xfe], [0x80], [0xc0, 0xaf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xc3]];

// --- the spec's types, by what they do ---------------------------------------

interface Types {
  all: string[];
  handshake: string | undefined;
  detach: string | undefined;
  /** Neither handshake nor detach: they leave the connection as it is. */
  plain: string[];
  /** Plain types with no required field. */
  bare: string[];
}

const typesCache = new WeakMap<ProtocolSpec, Types>();

function typesOf(spec: ProtocolSpec): Types {
  let t = typesCache.get(spec);
  if (t === undefined) {
    const entries = Object.entries(spec.messages);
    const plain = entries.filter(([, m]) => m.role === undefined);
    t = {
      all: entries.map(([type]) => type),
      handshake: entries.find(([, m]) => m.role === 'handshake')?.[0],
      detach: entries.find(([, m]) => m.role === 'detach')?.[0],
      plain: plain.map(([type]) => type),
      bare: plain.filter(([, m]) => !Object.values(m.fields ?? {}).some((f) => f.required)).map(([type]) => type),
    };
    typesCache.set(spec, t);
  }
  return t;
}

/** A well-formed value for field `name` of `m`; the version field gets another version now and then unless `exact`. */
function validValue(rng: Random, spec: ProtocolSpec, m: MessageSpec, name: string, kind: FieldKind, exact = false): unknown {
  if (m.role === 'handshake' && name === VERSION_FIELD) return exact || rng.bool(0.93) ? spec.version : rng.pick([spec.version + 1, 0, 99]);
  switch (kind) {
    case 'integer': return rng.int(-1e6, 1e6);
    case 'string': return randomString(rng);
    case 'json': return randomJson(rng);
  }
}

/** Well-formed fields of `m`: every required one, each optional one half of the time. */
function validFields(rng: Random, spec: ProtocolSpec, m: MessageSpec, exact = false): Array<[string, unknown]> {
  return Object.entries(m.fields ?? {})
    .filter(([, f]) => f.required || rng.bool(0.5))
    .map(([name, f]) => [name, validValue(rng, spec, m, name, f.kind, exact)]);
}

// --- cases ----------------------------------------------------------------------

/** One frame (or a header and junk), and what the model says the server must answer. */
export interface Case {
  label: string;
  bytes: Buffer;
  expect: Expect | undefined;
  closes: boolean;
  /** Bytes of this case after which the server may close: later bytes must go in the same write. */
  trigger: number;
}

/** What a reply costs in the connection's reply budget. */
export function replyCost(config: FuzzConfig, e: Expect | undefined): number {
  if (e === undefined) return 0;
  const idBytes = e.id === undefined ? 0 : Buffer.byteLength(String(e.id)) + 16;
  let body = DEFAULT_REPLY_BYTES;
  if (e.kind === 'reply') body = e.echo !== undefined ? Buffer.byteLength(e.echo.json) : (config.replyBytes?.[e.type] ?? DEFAULT_REPLY_BYTES);
  return body + idBytes + 64;
}

/** One hostile frame judged by `model` (updated); redrawn while its reply would exceed the budget left. */
export function genCase(rng: Random, config: FuzzConfig, model: ConnectionModel, budgetLeft: number): Case {
  for (;;) {
    const probe = model.clone();
    const c = rawCase(rng, config, probe);
    if (c.expect !== undefined && replyCost(config, c.expect) > budgetLeft) continue; // too much reply in flight: draw again
    model.handshaken = probe.handshaken;
    model.closed = probe.closed;
    return c;
  }
}

function rawCase(rng: Random, config: FuzzConfig, model: ConnectionModel): Case {
  const { spec, maxFrameBytes } = config;
  const types = typesOf(spec);
  const message = (label: string, payload: Buffer): Case => {
    const bytes = frameOf(payload);
    const predictions = model.push(bytes);
    if (predictions.length !== 1) throw new Error(`case ${label}: ${predictions.length} predictions for one frame`);
    const [p] = predictions as [(typeof predictions)[number]];
    return { label, bytes, expect: p.expect, closes: p.closes, trigger: bytes.length };
  };
  const r = rng.next();
  // A well-formed message of a known type (the handshake often when not yet handshaken).
  if (r < 0.3) {
    let type = !model.handshaken && types.handshake !== undefined && rng.bool(0.35) ? types.handshake : rng.pick(types.all);
    if (type === types.detach && types.plain.length > 0 && rng.bool(0.85)) type = rng.pick(types.plain); // keep connections going for a while
    const m = spec.messages[type] as MessageSpec;
    return message(`valid ${type}`, str(obj([['type', type], ['id', validId(rng)], ...validFields(rng, spec, m)])));
  }
  // A known type with a bad id, a field of the wrong kind or missing, or a type that is not a string.
  if (r < 0.45) {
    const type = rng.pick(types.all);
    const m = spec.messages[type] as MessageSpec;
    const what = rng.int(0, 3);
    const fields: Array<[string, unknown]> = [['type', what === 3 ? rng.pick(WRONG_TYPES) : type], ['id', what === 0 ? rng.pick(WRONG_IDS) : validId(rng)]];
    for (const [name, f] of Object.entries(m.fields ?? {})) {
      if (what === 1 || rng.bool(0.5)) {
        // Garbled: missing, or (integer and string fields) a value of the wrong kind.
        if (f.kind !== 'json' && !rng.bool(0.2)) fields.push([name, rng.pick(WRONG_VALUES[f.kind])]);
      } else {
        fields.push([name, validValue(rng, spec, m, name, f.kind)]);
      }
    }
    return message(`wrong-fields ${type}/${what}`, str(obj(fields)));
  }
  if (r < 0.53) {
    const type = rng.pick(MAYBE_UNKNOWN_TYPES.filter((x) => !Object.hasOwn(spec.messages, x)));
    return message('unknown-type', str(obj([['type', type], ['id', validId(rng)], ['data', rng.bool(0.5) ? randomJson(rng) : undefined]])));
  }
  if (r < 0.61) return message('raw-text', Buffer.from(rng.pick(RAW_TEXTS)));
  if (r < 0.67) {
    const text = str(obj([['type', rng.pick([...types.all, 'nope'])], ['id', rng.int(0, 99)], [VERSION_FIELD, spec.version], ['data', randomString(rng)]]));
    const at = rng.int(0, text.length);
    return message('invalid-utf8', Buffer.concat([text.subarray(0, at), Buffer.from(rng.pick(INVALID_UTF8)), text.subarray(at)]));
  }
  if (r < 0.71) {
    const text = str(obj([['type', rng.pick(types.all)], ['id', rng.int(0, 99)], ['data', randomJson(rng)]]));
    return message('truncated-json', text.subarray(0, rng.int(1, Math.max(1, text.length - 1))));
  }
  if (r < 0.74) return message('length-0', Buffer.alloc(0));
  if (r < 0.77) return message('length-1', rng.bytes(1));
  if (r < 0.8) {
    // Exactly maxFrameBytes: legal, must be served.
    const candidates = model.handshaken || types.handshake === undefined ? [...types.plain, 'nope'] : [types.handshake, ...types.plain];
    const type = rng.pick(candidates);
    const m: MessageSpec = Object.hasOwn(spec.messages, type) ? (spec.messages[type] as MessageSpec) : { reply: undefined };
    const fields = Object.fromEntries([['type', type], ['id', `max-${rng.int(0, 999)}`], ...validFields(rng, spec, m, true)]) as Record<string, unknown>;
    const padKey = Object.entries(m.fields ?? {}).find(([, f]) => f.kind === 'json')?.[0] ?? 'pad';
    const payload = padded(fields, maxFrameBytes, padKey) ?? padded({ type, id: 'max' }, maxFrameBytes, 'pad');
    return message(`length-max ${type}`, payload as Buffer);
  }
  if (r < 0.83) {
    // A huge string near the limit, mixed multi-byte: in a JSON field when the type has one, else in an ignored field
    // (string fields get one of at most MAX_STRING_FIELD_BYTES).
    const type = rng.pick([...types.plain, ...(types.handshake === undefined ? [] : [types.handshake]), 'nope']);
    const m: MessageSpec = Object.hasOwn(spec.messages, type) ? (spec.messages[type] as MessageSpec) : { reply: undefined };
    const fields: Array<[string, unknown]> = [['type', type], ['id', 'huge'], ...validFields(rng, spec, m, true).filter(([name]) => m.fields?.[name]?.kind !== 'string')];
    const fieldsOf = (kind: FieldKind) => Object.entries(m.fields ?? {}).filter(([, f]) => f.kind === kind).map(([name]) => name);
    for (const name of fieldsOf('string')) fields.push([name, hugeString(rng, rng.int(1000, MAX_STRING_FIELD_BYTES))]);
    const json = fieldsOf('json')[0];
    fields.push([json ?? 'blob', hugeString(rng, rng.int(20_000, maxFrameBytes - 200 - MAX_STRING_FIELD_BYTES))]);
    const payload = str(obj(fields));
    return message(`huge-string ${type}`, payload.length <= maxFrameBytes ? payload : payload.subarray(0, maxFrameBytes));
  }
  if (r < 0.88) {
    // Deeply nested JSON wherever the server does not serialise it back.
    const where = rng.int(0, 6);
    const deep = nested(DEEP, rng.bool(0.7) ? 'array' : 'object');
    const texts = [
      `{"type":"ping","id":"deep","x":${deep}}`,
      `{"type":"nope","data":${deep}}`,
      `{"type":"connect","protocol_version":1,"client_name":${deep}}`,
      `{"type":"ping","id":${deep}}`,
      `{"type":"echo","data":${nested(DEEP, 'array', false)}}`,
      `{"type":"echo","id":"deep-echo","data":${nested(rng.int(10, ECHO_DEPTH), rng.bool(0.5) ? 'array' : 'object')}}`,
      model.handshaken ? `{"type":"status","traceparent":${deep}}` : `{"type":"echo","data":${deep}}`,
    ];
    return message(`deep-${where}`, Buffer.from(texts[where] as string));
  }
  if (r < 0.93) {
    // A well-formed message plus junk fields: traceparents of every shape, prototype keys.
    const type = rng.pick(types.plain);
    const tp = rng.pick([
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      'zz',
      'x'.repeat(600),
      42,
      { a: 1 },
      null,
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    ]);
    const junk: Array<[string, unknown]> = [['traceparent', tp], ['tracestate', rng.pick(['a=b', 7, '', 'x'.repeat(600)])], ['__proto__', { id: 'x' }], [randomString(rng), randomJson(rng)]];
    return message(`junk-fields ${type}`, str(obj([['type', type], ['id', validId(rng)], ...junk, ...validFields(rng, spec, spec.messages[type] as MessageSpec)])));
  }
  // Split-sensitive: tiny frames, back to back.
  return message('tiny', str(obj([['type', types.bare.length > 0 ? rng.pick(types.bare) : 'ping'], ['id', rng.int(0, 9)]])));
}

/** A header over maxFrameBytes, and junk: the server must answer frame_too_large, then close. */
export function oversizeCase(rng: Random, config: FuzzConfig, model: ConnectionModel): Case {
  const max = config.maxFrameBytes;
  const length = rng.pick([max + 1, 0xffff_ffff, rng.int(max + 2, 0xffff_fffe), 0x8000_0000]);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length);
  const junk = rng.bool(0.5) ? str({ type: 'ping', id: 'never' }) : rng.bytes(rng.int(0, 2048));
  const bytes = Buffer.concat([h, junk]);
  const [p] = model.push(bytes);
  if (p === undefined) throw new Error(`the model did not answer a ${length}-byte header`);
  return { label: `oversize ${length}`, bytes, expect: p.expect, closes: p.closes, trigger: 4 };
}

// --- scripts: one connection's whole life -----------------------------------------

/** How a script ends after its cases. */
export type Ending = 'closed' | 'end' | 'truncated-end' | 'wait-destroy' | 'abort' | 'chaos';

export interface Script {
  index: number;
  seed: number;
  cases: Case[];
  ending: Ending;
  /** Bytes sent after the cases by the ending (a truncated frame, random bytes). */
  tail: Buffer;
}

/** The script of fuzz connection `index`: the same (config, index, seed) always gives the same script. */
export function makeScript(config: FuzzConfig, index: number, seed: number): Script {
  const { spec } = config;
  const types = typesOf(spec);
  const rng = new Random(seed);
  const model = new ConnectionModel(spec, { maxFrameBytes: config.maxFrameBytes });
  const cases: Case[] = [];
  let budget = config.replyBudget;
  const steps = rng.next() < 0.5 ? rng.int(1, 12) : rng.int(10, 80);
  for (let i = 0; i < steps && !model.closed; i++) {
    const c = genCase(rng, config, model, budget);
    budget -= replyCost(config, c.expect);
    cases.push(c);
  }
  let ending: Ending;
  let tail: Buffer = Buffer.alloc(0);
  const closingType = model.handshaken ? types.detach : types.handshake;
  if (model.closed) {
    ending = 'closed';
  } else {
    const e = rng.next();
    if (e < 0.12) {
      cases.push(oversizeCase(rng, config, model));
      ending = 'closed';
    } else if (e < 0.2 && closingType !== undefined) {
      // Detach, or a handshake with a version the server does not speak.
      const closing = str(model.handshaken ? { type: closingType } : { type: closingType, [VERSION_FIELD]: rng.pick([0, spec.version + 1, spec.version + 2, 1000]) });
      const bytes = frameOf(closing);
      const [p] = model.push(bytes);
      if (p === undefined) throw new Error('no prediction for the closing message');
      cases.push({ label: model.handshaken ? 'detach' : 'unsupported-version', bytes, expect: p.expect, closes: p.closes, trigger: bytes.length });
      ending = 'closed';
    } else if (e < 0.45) {
      ending = 'end';
    } else if (e < 0.6) {
      // A truncated frame (partial header, or a header and part of the body), then close.
      const full = frameOf(str({ type: 'echo', data: randomString(rng) }));
      tail = full.subarray(0, rng.int(1, full.length - 1));
      ending = 'truncated-end';
    } else if (e < 0.75) {
      ending = 'wait-destroy';
    } else if (e < 0.8) {
      tail = rng.bytes(rng.int(1, 64));
      ending = 'abort';
    } else {
      // Random bytes: pure noise, or plausible small frames full of noise.
      tail = rng.bool(0.5)
        ? rng.bytes(rng.int(1, 4096))
        : Buffer.concat(Array.from({ length: rng.int(1, 20) }, () => frameOf(rng.bytes(rng.int(0, 64)))));
      ending = 'chaos';
    }
  }
  return { index, seed, cases, ending, tail };
}
