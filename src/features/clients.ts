// `list_clients`: one line per connected client, like `tmux list-clients`
// (used by `fuguectl clients`). An example feature of the extension API
// (docs/architecture.md, "Adding a feature"): it lives outside src/server and
// uses only what a handler sees, a snapshot of the connected clients.
// docs/protocol.md, "Extensions", documents the message.

import type { ClientInfo, Feature } from '../server/extension.js';

/** One client in a `clients` reply (snake_case, like the rest of the protocol). */
export interface ClientLine {
  client_id: number;
  /** `client_name` from its `connect`, or null. */
  name: string | null;
  /** When it connected, as an ISO 8601 UTC timestamp. */
  connected_at: string;
  handshaken: boolean;
  messages_in: number;
  messages_out: number;
  bytes_in: number;
  bytes_out: number;
}

function line(c: ClientInfo): ClientLine {
  return {
    client_id: c.id,
    name: c.name ?? null,
    connected_at: new Date(c.connectedAt).toISOString(),
    handshaken: c.handshaken,
    messages_in: c.messagesIn,
    messages_out: c.messagesOut,
    bytes_in: c.bytesIn,
    bytes_out: c.bytesOut,
  };
}

/** Registers `list_clients` -> `clients` ({ clients: ClientLine[] }, in connection order). */
export const clientsFeature: Feature = {
  name: 'clients',
  sends: ['clients'],
  register(scope) {
    scope.handle('list_clients', {
      handle: (_msg, ctx) => ({ type: 'clients', clients: ctx.server.clients().map(line) }),
    });
  },
};
