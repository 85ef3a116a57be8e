// The extension API: everything a feature may use of the server, in one
// module (features import this and the protocol, nothing else of the server;
// test/architecture.test.ts keeps it so). docs/architecture.md, "Adding a
// feature", walks through it.

export type { Feature, FeatureScope } from './features.js';
export type { MessageHandler, HandlerContext, HandlerResult } from './handlers.js';
export { connectionState, type ClientHandle, type ClientInfo, type ConnectionState } from './client.js';
export type { ServerView, Catalog } from './view.js';
export type { Stream, StreamOptions, PublishResult } from './stream.js';
export type { ChannelKey, ChannelPayloads } from './channels.js';
export type * from './events.js';
