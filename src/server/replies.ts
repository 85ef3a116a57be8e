// Every message the core makes by itself, in one place (docs/protocol.md):
// the dispatch step's errors, the handshake's replies, and the notices of the
// pump and the accept loop (timeouts, an oversized frame, the shutdown notice,
// server_busy). Handlers make their own replies; these are the protocol's.

import {
  encodeFrame,
  errorMessage,
  ERROR_TEXT,
  PROTOCOL_VERSION,
  shutdownMessage,
  type MessageId,
  type ServerMessage,
} from '../protocol/index.js';
import type { LimitName } from './events.js';

export const badMessage = (reason: string): ServerMessage => errorMessage('bad_message', reason);

export const unknownType = (type: string, known: readonly string[]): ServerMessage => errorMessage('unknown_type', ERROR_TEXT.unknown_type(type) + known.join(', '));

export const handshakeRequired = (): ServerMessage => errorMessage('handshake_required', ERROR_TEXT.handshake_required);

export const alreadyConnected = (): ServerMessage => errorMessage('already_connected', ERROR_TEXT.already_connected);

export const internalError = (): ServerMessage => errorMessage('internal', ERROR_TEXT.internal);

/** A reply JSON.stringify could not encode (data nested too deeply): the client's data caused it. */
export const unencodable = (err: Error): ServerMessage => errorMessage('internal', `the reply could not be encoded (${err.message}); nest data less deeply`);

export function unsupportedVersion(version: number, serverVersion: string): ServerMessage {
  const upgrade = version > PROTOCOL_VERSION ? 'upgrade fugue-server, or use a client that speaks protocol 1' : 'upgrade the client to one that speaks protocol 1';
  return errorMessage('unsupported_version', `protocol_version ${version} is not supported; this server (${serverVersion}) speaks protocol 1: ${upgrade}`, undefined, {
    supported: [PROTOCOL_VERSION],
    server_version: serverVersion,
  });
}

export const connected = (serverVersion: string, clientId: number): ServerMessage => ({ type: 'connected', protocol_version: PROTOCOL_VERSION, server_version: serverVersion, client_id: clientId });

export const frameTooLarge = (length: number, max: number): ServerMessage => errorMessage('frame_too_large', ERROR_TEXT.frame_too_large(length, max));

/** The `timeout` error for a timeout limit; `pending` is the unfinished frame's bytes (frame timeout). */
export function timedOut(limit: Extract<LimitName, `${string}TimeoutMs`>, ms: number, pending: number): ServerMessage {
  const text = limit === 'limits.handshakeTimeoutMs' ? ERROR_TEXT.handshake_timeout(ms) : limit === 'limits.frameTimeoutMs' ? ERROR_TEXT.frame_timeout(ms, pending) : ERROR_TEXT.idle_timeout(ms);
  return errorMessage('timeout', text);
}

export const shutdownNotice = (reason: string, timeoutMs: number): ServerMessage => shutdownMessage(reason, timeoutMs);

/** `server_busy` at the client limit, framed (sent right after accept). */
export const busyFrame = (maxClients: number): Buffer => encodeFrame(errorMessage('server_busy', ERROR_TEXT.server_busy(maxClients)));

/** `server_busy` while draining, framed. */
export const drainingFrame = (): Buffer => encodeFrame(errorMessage('server_busy', ERROR_TEXT.server_draining));

/** The id a reply carries: the request's. */
export type ReplyId = MessageId | undefined;
