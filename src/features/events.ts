// `events`: the server's events, pushed to the clients that subscribe, as they
// happen (tmux's control mode `%`-notifications; `fuguectl events` prints
// them). A subscriber may filter by kind. Each subscription's events carry a
// sequence number without gaps unless events were dropped: the stream's slow
// policy is `drop`, so a subscriber that stops reading never holds the server
// or the other subscribers back; it misses events, and once it reads again it
// is told how many (`events.missed`). docs/protocol.md, "Extensions",
// documents the messages; docs/architecture.md walks through this feature.
//
// Subscribers with the same filter share one stream: every event is
// serialised once per distinct filter, not once per subscriber.

import type { ClientMessage, ServerMessage } from '../protocol/index.js';
import type { ClientHandle, Feature, Stream } from '../server/extension.js';

/** Every kind of event, in the order docs/protocol.md lists them. */
export const EVENT_KINDS = ['client.connected', 'client.left', 'drain.started', 'config.reloaded', 'config.refused', 'limit.enforced'] as const;
/** One kind of event. */
export type EventKind = (typeof EVENT_KINDS)[number];

/** Unread bytes above which a subscriber misses events until it catches up. */
export const EVENTS_MAX_BUFFERED_BYTES = 256 * 1024;

const KNOWN: ReadonlySet<string> = new Set(EVENT_KINDS);

function kindsOf(msg: ClientMessage): readonly EventKind[] | string {
  if (msg.kinds === undefined) return EVENT_KINDS;
  if (!Array.isArray(msg.kinds) || msg.kinds.length === 0 || msg.kinds.some((k) => typeof k !== 'string' || !KNOWN.has(k))) {
    return `field "kinds" must be a non-empty array of event kinds (${EVENT_KINDS.join(', ')}), or absent for all of them`;
  }
  return EVENT_KINDS.filter((k) => (msg.kinds as unknown[]).includes(k));
}

/** One filter's subscribers and the sequence number of its next event. */
interface Group {
  kinds: ReadonlySet<EventKind>;
  stream: Stream;
  seq: number;
}

/** events.subscribe {kinds?} -> events.subscribed {kinds, seq}; events.unsubscribe -> events.unsubscribed; pushes `event` and `events.missed`. */
export const eventsFeature: Feature = {
  name: 'events',
  sends: ['events.subscribed', 'events.unsubscribed', 'event', 'events.missed'],
  streams: ['events'],
  register(scope) {
    // This server's subscriptions (per scope, so per server): filter key -> group,
    // and which group each subscribed client is in.
    const groups = new Map<string, Group>();
    const memberOf = new Map<ClientHandle, string>();

    const leave = (client: ClientHandle): void => {
      const key = memberOf.get(client);
      if (key === undefined) return;
      memberOf.delete(client);
      const group = groups.get(key);
      group?.stream.unsubscribe(client);
      if (group !== undefined && group.stream.size === 0) groups.delete(key);
    };

    const emit = (kind: EventKind, fields: Record<string, unknown>): void => {
      if (groups.size === 0) return;
      const time = new Date().toISOString();
      for (const [key, group] of groups) {
        if (!group.kinds.has(kind)) continue;
        group.stream.publish({ type: 'event', seq: group.seq++, kind, time, ...fields } as ServerMessage);
        if (group.stream.size === 0) groups.delete(key);
      }
    };

    scope.handle('events.subscribe', {
      validate: (msg) => {
        const kinds = kindsOf(msg);
        return typeof kinds === 'string' ? kinds : undefined;
      },
      handle(msg, ctx) {
        const kinds = kindsOf(msg) as readonly EventKind[];
        const key = kinds.join(',');
        leave(ctx.client);
        let group = groups.get(key);
        if (group === undefined) {
          group = { kinds: new Set(kinds), seq: 1, stream: scope.stream('events', { onSlow: 'drop', maxBufferedBytes: EVENTS_MAX_BUFFERED_BYTES, missedMessage: (missed) => ({ type: 'events.missed', missed }) }) };
          groups.set(key, group);
        }
        group.stream.subscribe(ctx.client);
        memberOf.set(ctx.client, key);
        return { type: 'events.subscribed', kinds, seq: group.seq };
      },
    });
    scope.handle('events.unsubscribe', {
      handle(_msg, ctx) {
        leave(ctx.client);
        return { type: 'events.unsubscribed' };
      },
    });

    scope.onConnect((client) => {
      if (groups.size > 0) emit('client.connected', { client_id: client.id, name: client.name ?? null });
    });
    scope.onDisconnect((client, ev) => {
      if (memberOf.size === 0) return; // nobody subscribed: nothing to leave, nobody to tell
      leave(client);
      emit('client.left', { client_id: client.id, name: client.name ?? null, reason: ev.reason });
    });
    scope.onDrain((ev) => emit('drain.started', { clients: ev.clients, timeout_ms: ev.timeoutMs }));
    scope.subscribe('reload', (ev) => {
      if (ev.ok) emit('config.reloaded', { applied: ev.applied, restart_required: ev.restartRequired });
      else emit('config.refused', { error: ev.error?.message ?? 'unknown error' });
    });
    scope.subscribe('limit', (ev) => emit('limit.enforced', { limit: ev.limit, client_id: ev.clientId, value: ev.value, max: ev.max }));
    scope.subscribe('rejected', (ev) => {
      // A client turned away at the client limit or for want of descriptors (not a drain's refusals).
      if (ev.reason !== 'draining') emit('limit.enforced', { limit: ev.reason === 'server_busy' ? 'limits.maxClients' : 'open files', client_id: null, value: null, max: ev.maxClients, reason: ev.reason });
    });
  },
};
