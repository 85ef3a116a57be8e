export { FrameDecoder, FrameEncoder, encodeFrame, encodeJsonFrame, encodeJsonFrames, HEADER_BYTES, DEFAULT_MAX_FRAME_BYTES } from './frame.js';
export type { DecoderState, EncodedReply, FrameDecoderOptions } from './frame.js';
export { parseMessage, describe, errorMessage, shutdownMessage, ReplyShape, ShapedReply, ERROR_CODES, ERROR_TEXT, PROTOCOL_VERSION } from './messages.js';
export type { ClientMessage, ServerMessage, MessageId, ParseResult, ProtocolErrorCode } from './messages.js';
export { parseTraceparent } from './trace-context.js';
export type { RemoteTraceContext } from './trace-context.js';
