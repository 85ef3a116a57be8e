// Public surface of the fugue-server package.
export { App, type AppOptions } from './app.js';
export { FugueServer, type FugueServerOptions, type ServerState, type DrainResult } from './server/server.js';
export { HandlerTable, coreHandlers, type MessageHandler, type HandlerContext, type HandlerResult, type ServerView } from './server/handlers.js';
export { noopInstrumentation, type Instrumentation, type ConnectionObserver, type CloseReason, type CloseInfo, type MessageRecord, type Log } from './server/instrumentation.js';
export { FugueClient, DEFAULT_MAX_REPLY_BYTES, type ConnectOptions, type ConnectedInfo } from './client/client.js';
export { loadConfig, defaultSocketPath, type CliRequest, type LoadOptions, type ConfigProblem } from './config/load.js';
export type { Config } from './config/schema.js';
export { FugueError, isFugueError, EXIT, type FugueErrorCode } from './errors.js';
export * from './protocol/index.js';
export { VERSION } from './version.js';
