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

/** The server's own facts a View reads. */
export interface ServerFacts {
  readonly version: string;
  readonly socketPath: string;
  uptimeMs(): number;
  isDraining(): boolean;
}

/** The connected clients a View reads (clients.ts). */
export interface ClientsView {
  readonly size: number;
  infos(): ClientInfo[];
  handle(id: number): ClientHandle | undefined;
  traffic(): { bytesIn: number; bytesOut: number };
}

export class View implements ServerView {
  readonly #facts: ServerFacts;
  readonly #clients: () => ClientsView;
  readonly #catalog: () => Catalog;

  // Getters, not values: the view exists before the clients and the catalog
  // (features get it while they register, which is what makes the catalog).
  constructor(facts: ServerFacts, clients: () => ClientsView, catalog: () => Catalog) {
    this.#facts = facts;
    this.#clients = clients;
    this.#catalog = catalog;
  }

  get catalog(): Catalog {
    return this.#catalog();
  }

  get version(): string {
    return this.#facts.version;
  }

  get socketPath(): string {
    return this.#facts.socketPath;
  }

  uptimeMs(): number {
    return this.#facts.uptimeMs();
  }

  clientCount(): number {
    return this.#clients().size;
  }

  isDraining(): boolean {
    return this.#facts.isDraining();
  }

  clients(): ClientInfo[] {
    return this.#clients().infos();
  }

  client(id: number): ClientHandle | undefined {
    return this.#clients().handle(id);
  }

  traffic(): { bytesIn: number; bytesOut: number } {
    return this.#clients().traffic();
  }
}
