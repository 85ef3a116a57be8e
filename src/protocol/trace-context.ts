// W3C Trace Context (https://www.w3.org/TR/trace-context/) carried in a message's
// `traceparent` / `tracestate` fields. An invalid value is ignored, never an error
// (docs/protocol.md, "Common fields").

export interface RemoteTraceContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState: string | undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/** Parse a traceparent (and optional tracestate); undefined when invalid. */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): RemoteTraceContext | undefined {
  if (typeof traceparent !== 'string' || traceparent.length > 512) return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags] = m as RegExpExecArray & [string, string, string, string, string];
  const rest: string | undefined = m[5];
  // Version ff is forbidden; version 00 has exactly four fields.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  const traceState = typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= 512 ? tracestate : undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16), traceState };
}
