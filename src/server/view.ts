// What features, handlers and observers see of a server: a read-only object
// of its own (not the FugueServer), the same one for every handler of one
// server, and the `server` of every event it publishes (events.ts).

import type { ClientHandle, ClientInfo } from './client.js';

/**
 * The names a server and its features declared: the bounded sets metric
 * labels are taken from. Anything outside them is counted under a fixed
 * label (docs/observability.md).
 */
export interface Catalog {
  /** Message types clients may send: the protocol's and the features'. */
  readonly messageTypes: readonly string[];
  /** Types of the messages the server sends: the protocol's and what features declared in `sends`. */
  readonly sentTypes: readonly string[];
  /** Error codes: the protocol's and what features declared in `errorCodes`. */
  readonly errorCodes: readonly string[];
  /** Stream names features declared. */
  readonly streams: readonly string[];
}

/** What handlers, features and observers can see of the server. */
export interface ServerView {
  /** Reported as `server_version`. */
  readonly version: string;
  /** Where clients connect. */
  readonly socketPath: string;
  /** The declared names (metric label sets). */
  readonly catalog: Catalog;
  uptimeMs(): number;
  clientCount(): number;
  isDraining(): boolean;
  /** A snapshot of every connected client, in connection order. */
  clients(): ClientInfo[];
  /** The connected client with this id, if any. */
  client(id: number): ClientHandle | undefined;
  /** Bytes read from and written to clients since the server started (closed connections included). */
  traffic(): { bytesIn: number; bytesOut: number };
}

/** What a View reads: implemented by the server. */
export interface ViewSource {
  readonly version: string;
  readonly socketPath: string;
  readonly catalog: Catalog;
  uptimeMs(): number;
  clientCount(): number;
  isDraining(): boolean;
  clientInfos(): ClientInfo[];
  clientHandle(id: number): ClientHandle | undefined;
  traffic(): { bytesIn: number; bytesOut: number };
}

export class View implements ServerView {
  readonly #source: ViewSource;

  constructor(source: ViewSource) {
    this.#source = source;
  }

  get catalog(): Catalog {
    return this.#source.catalog;
  }

  get version(): string {
    return this.#source.version;
  }

  get socketPath(): string {
    return this.#source.socketPath;
  }

  uptimeMs(): number {
    return this.#source.uptimeMs();
  }

  clientCount(): number {
    return this.#source.clientCount();
  }

  isDraining(): boolean {
    return this.#source.isDraining();
  }

  clients(): ClientInfo[] {
    return this.#source.clientInfos();
  }

  client(id: number): ClientHandle | undefined {
    return this.#source.clientHandle(id);
  }

  traffic(): { bytesIn: number; bytesOut: number } {
    return this.#source.traffic();
  }
}
