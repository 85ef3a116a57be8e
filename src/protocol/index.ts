// The protocol module: pure (no I/O, no timers). docs/protocol.md is its contract.
export { FrameDecoder, FrameEncoder, JsonPayload, encodeFrame, encodeJsonFrame, HEADER_BYTES, DEFAULT_MAX_FRAME_BYTES } from './frame.js';
export type { DecoderState, Frameable, FrameDecoderOptions } from './frame.js';
export { parseMessage, describe, errorMessage, replyPayload, shutdownMessage, ERROR_CODES, ERROR_TEXT, PROTOCOL_VERSION } from './messages.js';
export type { ClientMessage, ServerMessage, MessageId, ParseResult, ProtocolErrorCode } from './messages.js';
export { ReplyShape } from './reply-shape.js';
export { PreparedMessage } from './prepared.js';
export { parseTraceparent } from './trace-context.js';
export type { RemoteTraceContext } from './trace-context.js';
