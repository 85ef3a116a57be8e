// fugue's own observability as subscribers of the core's diagnostics channels
// (server/channels.ts), like any other: each event of the observed server
// goes to the three recorders, spans (spans.ts), metrics (message-metrics.ts,
// metrics.ts) and logs (log-events.ts), which know nothing of each other.
// The one coupling is deliberate: a message's exemplar is its span, when that
// was exported. Channels are process-wide: events of other servers in the
// process are ignored.

import { subscribeTo, type ChannelKey, type ChannelPayloads } from '../server/channels.js';
import type { ServerView } from '../server/view.js';
import type { Recorded } from './early.js';
import { LogEvents } from './log-events.js';
import type { Logger } from './logger.js';
import { MetricRecorder, typeLabel } from './message-metrics.js';
import { acceptErrorLabel, type ServerMetrics } from './metrics.js';
import { SpanRecorder } from './spans.js';
import type { Tracing } from './tracing.js';

export interface Recorders {
  log: Logger;
  metrics: ServerMetrics;
  tracing: Tracing;
}

type Handlers = { [K in ChannelKey]: (event: ChannelPayloads[K]) => void };

/**
 * Subscribe the recorders to `view`'s events, after passing them `early`
 * (the events recorded before observability was up, in order); returns the
 * function that unsubscribes them.
 */
export function observeServer(view: ServerView, { log, metrics, tracing }: Recorders, early?: { entries: readonly Recorded[]; lost: number }): () => void {
  metrics.observe(view);
  const recorder = new MetricRecorder(metrics, view.catalog);
  const spans = new SpanRecorder(tracing);
  const logs = new LogEvents(log);
  const handlers: Handlers = {
    listening(ev) {
      metrics.listening.set(ev.socketHealthy ? 1 : 0);
      metrics.maxClients.set(ev.maxClients);
      logs.listening(ev);
    },
    socket(ev) {
      metrics.listening.set(ev.state === 'lost' ? 0 : 1);
      if (ev.state === 'restored' && ev.recreated) metrics.socketRebinds.inc();
      logs.socket(ev);
    },
    clientLimit(ev) {
      metrics.maxClients.set(ev.maxClients);
    },
    acceptError(ev) {
      metrics.acceptErrors.inc({ code: acceptErrorLabel(ev.error.code) });
      logs.acceptError(ev);
    },
    rejected(ev) {
      metrics.rejected.inc({ reason: ev.reason });
      logs.rejected('socket', ev.reason);
    },
    drain(ev) {
      metrics.draining.set(1);
      metrics.drainStartTime.set(Date.now() / 1000);
      metrics.listening.set(0);
      logs.draining(ev);
    },
    drained(ev) {
      metrics.draining.set(0);
      logs.drained(ev);
    },
    notice(ev) {
      logs.notice(ev);
    },
    reload(ev) {
      metrics.configReloads.inc({ result: ev.ok ? 'success' : 'failure' });
      if (ev.ok) metrics.configLastSuccess.set(Math.round(Date.now() / 1000));
      logs.reload(ev);
    },
    opened(ev) {
      recorder.connectionOpened();
      spans.opened(ev);
      logs.connected(ev.clientId);
    },
    handshake(ev) {
      spans.handshake(ev.clientId, ev.clientName);
      logs.handshake(ev.clientId, ev.clientName);
    },
    message(ev) {
      const label = typeLabel(ev);
      recorder.message(ev, label, spans.message(ev, label));
      if (ev.error !== undefined) logs.handlerFailed(ev);
    },
    push(ev) {
      recorder.sent(ev.type, ev.recipients);
      if (ev.stream !== undefined && ev.dropped > 0) metrics.streamDropped.slot(ev.stream).n += ev.dropped;
      spans.pushed(ev);
      logs.pushed(ev);
    },
    stream(ev) {
      if (ev.state === 'paused') metrics.streamPauses.slot(ev.stream).n++;
      logs.stream(ev);
    },
    limit(ev) {
      logs.limit(ev);
    },
    closed(ev) {
      recorder.closed(ev);
      spans.closed(ev);
      logs.closed(ev);
    },
  };
  // Synchronous with the subscriptions below: no event can fall between the replay and them.
  if (early !== undefined) {
    for (const entry of early.entries) {
      if (entry[0] === 'log') log[entry[1]](entry[2], entry[3]);
      else (handlers[entry[0]] as (e: (typeof entry)[1]) => void)(entry[1]);
    }
    if (early.lost > 0) log.warn({ lost: early.lost }, 'events from before observability was up were not recorded: the start-up buffer was full');
  }
  const unsubscribes = (Object.keys(handlers) as ChannelKey[]).map((key) => {
    const fn = handlers[key] as (ev: ChannelPayloads[ChannelKey]) => void;
    // The observed server's events only; and telemetry never crashes the
    // service (a subscriber's exception would be reported as uncaught).
    return subscribeTo(key, (ev) => {
      if (ev.server !== view) return;
      try {
        fn(ev);
      } catch {
        // a recorder's bug: drop this event's telemetry, keep serving
      }
    });
  });
  return () => {
    for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
  };
}
