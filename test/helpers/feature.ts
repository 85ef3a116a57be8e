// Small features and event recorders for tests, made from the public API.
import type { ExecutionContext } from 'ava';
import { subscribeTo, type ChannelKey, type ChannelPayloads } from '../../src/server/channels.js';
import type { Feature } from '../../src/server/features.js';
import type { MessageHandler } from '../../src/server/handlers.js';
import type { ServerView } from '../../src/server/view.js';

/** A feature that registers `handlers` (type -> handler). */
export function featureOf(name: string, handlers: Record<string, MessageHandler>, extra: Omit<Partial<Feature>, 'name' | 'register'> = {}): Feature {
  return {
    name,
    ...extra,
    register(scope) {
      for (const [type, handler] of Object.entries(handlers)) scope.handle(type, handler);
    },
  };
}

/** Every event `view`'s server publishes on channel `key`, recorded until the test ends. */
export function record<K extends ChannelKey>(t: ExecutionContext, view: ServerView, key: K): Array<ChannelPayloads[K]> {
  const events: Array<ChannelPayloads[K]> = [];
  const unsubscribe = subscribeTo(key, (ev) => {
    if (ev.server === view) events.push(ev);
  });
  t.teardown(unsubscribe);
  return events;
}
