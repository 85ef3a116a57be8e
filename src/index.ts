// The public surface of the fugue-server package: an explicit list, so nothing
// internal becomes API by accident. Every symbol here has TSDoc
// (test/api-docs.test.ts keeps it so).

export { App, RELOADABLE_KEYS, SPAN_FLUSH_MAX_MS, type AppOptions, type ReloadOutcome } from './app.js';
export { FugueServer, type FugueServerOptions, type ServerState, type DrainResult, type LiveSettings } from './server/server.js';
export {
  HandlerTable,
  coreHandlers,
  coreFeature,
  connectionState,
  type Feature,
  type MessageHandler,
  type HandlerContext,
  type HandlerResult,
  type ServerView,
  type ClientHandle,
  type ClientInfo,
  type ConnectionState,
} from './server/handlers.js';
export {
  noopInstrumentation,
  CLOSE_REASONS,
  REJECT_REASONS,
  type Instrumentation,
  type ConnectionObserver,
  type ConnectionInfo,
  type CloseReason,
  type RejectReason,
  type CloseEvent,
  type CloseInfo,
  type MessageEvent,
  type PushEvent,
  type LimitEvent,
  type Log,
} from './server/instrumentation.js';
export { clientsFeature, type ClientLine } from './features/clients.js';
export { FugueClient, DEFAULT_MAX_REPLY_BYTES, type ConnectOptions, type ConnectedInfo } from './client/client.js';
export { loadConfig, defaultSocketPath, type CliRequest, type LoadOptions, type ConfigProblem } from './config/load.js';
export type { Config } from './config/schema.js';
export { FugueError, isFugueError, EXIT, type FugueErrorCode } from './errors.js';
export {
  PROTOCOL_VERSION,
  ReplyShape,
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
