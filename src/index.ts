// The public surface of the fugue-server package: an explicit list, so nothing
// internal becomes API by accident. Every symbol here has TSDoc
// (test/api-docs.test.ts keeps it so).

export { App, DEFAULT_FEATURES, RELOADABLE_KEYS, SPAN_FLUSH_MAX_MS, type AppOptions, type ReloadOutcome } from './app.js';
export { FugueServer, type FugueServerOptions, type ServerState, type DrainResult, type LiveSettings } from './server/server.js';
export { type Feature, type FeatureScope } from './server/features.js';
export { type MessageHandler, type HandlerContext, type HandlerResult } from './server/handlers.js';
export { connectionState, type ClientHandle, type ClientInfo, type ConnectionState } from './server/client.js';
export { type ServerView, type Catalog } from './server/view.js';
export { Stream, type StreamOptions, type PublishResult } from './server/stream.js';
export { CHANNEL_NAMES, type ChannelKey, type ChannelPayloads } from './server/channels.js';
export {
  CLOSE_REASONS,
  REJECT_REASONS,
  type CloseReason,
  type RejectReason,
  type LimitName,
  type ListeningEvent,
  type SocketEvent,
  type ClientLimitEvent,
  type AcceptErrorEvent,
  type RejectEvent,
  type DrainEvent,
  type DrainedEvent,
  type NoticeEvent,
  type NoticeCode,
  type ReloadEvent,
  type OpenEvent,
  type HandshakeEvent,
  type MessageEvent,
  type PushEvent,
  type StreamEvent,
  type LimitEvent,
  type CloseEvent,
} from './server/events.js';
export { clientsFeature, type ClientLine } from './features/clients.js';
export { eventsFeature, EVENT_KINDS, EVENTS_MAX_BUFFERED_BYTES, type EventKind } from './features/events.js';
export { FugueClient, DEFAULT_MAX_REPLY_BYTES, type ConnectOptions, type ConnectedInfo } from './client/client.js';
export { loadConfig, defaultSocketPath, type CliRequest, type LoadOptions, type ConfigProblem } from './config/load.js';
export type { Config } from './config/schema.js';
export { FugueError, isFugueError, EXIT, type FugueErrorCode } from './errors.js';
export {
  PROTOCOL_VERSION,
  ReplyShape,
  PreparedMessage,
  replyPayload,
  errorMessage,
  describe,
  type Frameable,
  type ClientMessage,
  type ServerMessage,
  type MessageId,
  type ProtocolErrorCode,
} from './protocol/index.js';
export { VERSION } from './version.js';
