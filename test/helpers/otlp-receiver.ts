// A tiny OTLP/HTTP trace receiver for end-to-end tests: POST /v1/traces with
// OTLP/JSON (application/json) or OTLP/protobuf (application/x-protobuf).
// Both encodings are decoded (protobuf by a minimal wire-format reader below, as
// @opentelemetry/otlp-transformer only exposes request *encoders*) into flat
// ReceivedSpan records: ids as lowercase hex, attributes as plain objects.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttrValue = string | number | boolean | null | AttrValue[] | { [key: string]: AttrValue };
export type Attrs = Record<string, AttrValue>;

export interface ReceivedLink {
  traceId: string;
  spanId: string;
  attributes: Attrs;
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** undefined when the span is a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  kind: number;
  attributes: Attrs;
  links: ReceivedLink[];
  /** OTLP status code: 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message: string | undefined };
  resource: Attrs;
  scope: { name: string; version: string | undefined };
  /** The Content-Type the span arrived with. */
  encoding: 'json' | 'protobuf';
  /** start_time_unix_nano, end_time_unix_nano. */
  startNs?: bigint;
  endNs?: bigint;
  /** Span flags (fixed32; protobuf only), when set. */
  flags?: number;
}

export interface ReceivedRequest {
  path: string;
  contentType: string;
  bytes: number;
  /** HTTP status the receiver answered with. */
  status: number;
  /** The request's headers (lower-case names). */
  headers: IncomingMessage['headers'];
}

export interface OtlpReceiver {
  /** Base URL (http://127.0.0.1:PORT), suitable for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  port: number;
  spans: ReceivedSpan[];
  /** Every request received, including rejected ones. */
  requests: ReceivedRequest[];
  /** Raw bodies of accepted export requests (for debugging). */
  bodies: Buffer[];
  close(): Promise<void>;
}

const SPAN_KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0, SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3, SPAN_KIND_PRODUCER: 4, SPAN_KIND_CONSUMER: 5,
};
const STATUS_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

/** Start a receiver on 127.0.0.1, on a free port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const bodies: Buffer[] = [];

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 32 * 1024 * 1024) chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const path = (req.url ?? '').split('?')[0]!;
      const record: ReceivedRequest = { path, contentType, bytes: size, status: 0, headers: req.headers };
      requests.push(record);
      const reply = (status: number, type: string, body: string | Buffer) => {
        record.status = status;
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.method !== 'POST') return reply(405, 'text/plain', 'method not allowed\n');
      if (path !== '/v1/traces') return reply(404, 'text/plain', 'not found\n');
      let body = Buffer.concat(chunks);
      if (size > 32 * 1024 * 1024) return reply(413, 'text/plain', 'too large\n');
      try {
        // The exporters do not compress by default; accept gzip anyway.
        if ((req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') body = gunzipSync(body);
        if (contentType === 'application/json') {
          const decoded = decodeJsonRequest(JSON.parse(body.toString('utf8')));
          bodies.push(body);
          spans.push(...decoded);
          return reply(200, 'application/json', '{}');
        }
        if (contentType === 'application/x-protobuf') {
          const decoded = decodeProtobufRequest(body);
          bodies.push(body);
          spans.push(...decoded);
          // An empty ExportTraceServiceResponse.
          return reply(200, 'application/x-protobuf', Buffer.alloc(0));
        }
        return reply(415, 'text/plain', 'unsupported content type\n');
      } catch (err) {
        return reply(400, 'text/plain', `bad request: ${(err as Error).message}\n`);
      }
    });
  });
  // Keep-alive sockets from the exporter must not hold close() open.
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    spans,
    requests,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------
// OTLP/JSON

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** OTLP/JSON ids are hex (spec); tolerate base64 (the protobuf JSON mapping) too. */
function jsonId(v: unknown, bytes: number): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  if (v.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(v)) return v.toLowerCase();
  const b = Buffer.from(v, 'base64');
  if (b.length === bytes) return b.toString('hex');
  throw new Error(`bad id ${JSON.stringify(v)}`);
}

function jsonAnyValue(v: unknown): AttrValue {
  if (!isObj(v)) return null;
  if ('stringValue' in v) return String(v.stringValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('intValue' in v) return Number(v.intValue); // int64: a string in canonical proto3 JSON
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('bytesValue' in v) return String(v.bytesValue);
  if ('arrayValue' in v) return arr((v.arrayValue as Json | undefined)?.values).map(jsonAnyValue);
  if ('kvlistValue' in v) return jsonAttrs((v.kvlistValue as Json | undefined)?.values);
  return null;
}

function jsonAttrs(list: unknown): Attrs {
  const out: Attrs = {};
  for (const kv of arr(list)) if (isObj(kv) && typeof kv.key === 'string') out[kv.key] = jsonAnyValue(kv.value);
  return out;
}

function jsonEnum(v: unknown, names: Record<string, number>): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return names[v] ?? Number(v);
  return 0;
}

export function decodeJsonRequest(body: unknown): ReceivedSpan[] {
  if (!isObj(body) || !Array.isArray(body.resourceSpans)) throw new Error('no resourceSpans array');
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans) {
    if (!isObj(rs)) throw new Error('resourceSpans entry is not an object');
    const resource = jsonAttrs(isObj(rs.resource) ? rs.resource.attributes : undefined);
    for (const ss of arr(rs.scopeSpans)) {
      if (!isObj(ss)) continue;
      const sc = isObj(ss.scope) ? ss.scope : {};
      const scope = { name: String(sc.name ?? ''), version: sc.version === undefined ? undefined : String(sc.version) };
      for (const s of arr(ss.spans)) {
        if (!isObj(s)) continue;
        const traceId = jsonId(s.traceId, 16);
        const spanId = jsonId(s.spanId, 8);
        if (traceId === undefined || spanId === undefined) throw new Error('span without traceId/spanId');
        const status = isObj(s.status) ? s.status : {};
        out.push({
          traceId,
          spanId,
          parentSpanId: jsonId(s.parentSpanId, 8),
          name: String(s.name ?? ''),
          kind: jsonEnum(s.kind, SPAN_KIND_NAMES),
          attributes: jsonAttrs(s.attributes),
          links: arr(s.links).filter(isObj).map((l) => ({ traceId: jsonId(l.traceId, 16) ?? '', spanId: jsonId(l.spanId, 8) ?? '', attributes: jsonAttrs(l.attributes) })),
          status: { code: jsonEnum(status.code, STATUS_NAMES), message: typeof status.message === 'string' ? status.message : undefined },
          resource,
          scope,
          encoding: 'json',
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// OTLP/protobuf: a minimal proto3 wire-format reader for the trace messages
// (opentelemetry/proto/{collector/trace,trace,common,resource}/v1).

interface Field {
  no: number;
  wire: number;
  /** varint value (wire 0) */
  varint?: bigint;
  /** raw bytes (wire 1: 8 bytes, wire 2: payload, wire 5: 4 bytes) */
  bytes?: Buffer;
}

function readFields(buf: Buffer): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  const take = (n: number): Buffer => {
    if (n < 0 || pos + n > buf.length) throw new Error('truncated field');
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const no = tag >>> 3;
    const wire = tag & 7;
    if (no === 0) throw new Error('field number 0');
    switch (wire) {
      case 0: fields.push({ no, wire, varint: varint() }); break;
      case 1: fields.push({ no, wire, bytes: take(8) }); break;
      case 2: fields.push({ no, wire, bytes: take(Number(varint())) }); break;
      case 5: fields.push({ no, wire, bytes: take(4) }); break;
      default: throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return fields;
}

const sub = (fields: Field[], no: number): Buffer[] => fields.filter((f) => f.no === no && f.wire === 2).map((f) => f.bytes!);
const one = (fields: Field[], no: number): Field | undefined => {
  let last: Field | undefined;
  for (const f of fields) if (f.no === no) last = f; // proto3: last one wins
  return last;
};
const str = (fields: Field[], no: number): string | undefined => one(fields, no)?.bytes?.toString('utf8');
const hex = (fields: Field[], no: number): string | undefined => {
  const b = one(fields, no)?.bytes;
  return b === undefined || b.length === 0 ? undefined : b.toString('hex');
};
const num = (fields: Field[], no: number): number => Number(one(fields, no)?.varint ?? 0n);

function pbAnyValue(buf: Buffer): AttrValue {
  const f = readFields(buf);
  const last = f[f.length - 1];
  if (last === undefined) return null;
  switch (last.no) {
    case 1: return last.bytes!.toString('utf8');
    case 2: return last.varint !== 0n;
    case 3: return Number(BigInt.asIntN(64, last.varint!));
    case 4: return last.bytes!.readDoubleLE(0);
    case 5: return sub(readFields(last.bytes!), 1).map(pbAnyValue);
    case 6: return pbAttrs(sub(readFields(last.bytes!), 1));
    case 7: return last.bytes!.toString('base64');
    default: return null;
  }
}

function pbAttrs(kvs: Buffer[]): Attrs {
  const out: Attrs = {};
  for (const kv of kvs) {
    const f = readFields(kv);
    const value = one(f, 2)?.bytes;
    out[str(f, 1) ?? ''] = value === undefined ? null : pbAnyValue(value);
  }
  return out;
}

export function decodeProtobufRequest(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rsBuf of sub(readFields(body), 1)) {
    const rs = readFields(rsBuf);
    const resBuf = one(rs, 1)?.bytes;
    const resource = resBuf === undefined ? {} : pbAttrs(sub(readFields(resBuf), 1));
    for (const ssBuf of sub(rs, 2)) {
      const ss = readFields(ssBuf);
      const scBuf = one(ss, 1)?.bytes;
      const sc = scBuf === undefined ? [] : readFields(scBuf);
      const scope = { name: str(sc, 1) ?? '', version: str(sc, 2) };
      for (const spanBuf of sub(ss, 2)) {
        const s = readFields(spanBuf);
        const traceId = hex(s, 1);
        const spanId = hex(s, 2);
        if (traceId?.length !== 32 || spanId?.length !== 16) throw new Error('span without a valid traceId/spanId');
        const stBuf = one(s, 15)?.bytes;
        const st = stBuf === undefined ? [] : readFields(stBuf);
        out.push({
          traceId,
          spanId,
          parentSpanId: hex(s, 4),
          name: str(s, 5) ?? '',
          kind: num(s, 6),
          attributes: pbAttrs(sub(s, 9)),
          links: sub(s, 13).map((lb) => {
            const l = readFields(lb);
            return { traceId: hex(l, 1) ?? '', spanId: hex(l, 2) ?? '', attributes: pbAttrs(sub(l, 4)) };
          }),
          status: { code: num(st, 3), message: str(st, 2) },
          resource,
          scope,
          encoding: 'protobuf',
          startNs: one(s, 7)?.bytes?.readBigUInt64LE(0),
          endNs: one(s, 8)?.bytes?.readBigUInt64LE(0),
          ...(one(s, 16)?.bytes !== undefined ? { flags: one(s, 16)!.bytes!.readUInt32LE(0) } : {}),
        });
      }
    }
  }
  return out;
}
