// Start-up before observability is up. The socket serves its first client
// while the rest of fugue (pino, prom-client, the OpenTelemetry SDK) loads;
// what happens meanwhile is kept here, in order, and handed to observability
// once it is attached: the server's events (replayed through the same
// subscribers, so nothing is lost or counted twice) and the lines the CLI
// logged. Nothing here loads a dependency.

import { CHANNEL_NAMES, subscribeTo, type ChannelKey, type ChannelPayloads } from '../server/channels.js';
import type { ServerView } from '../server/view.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** One thing that happened before observability was up: an event (its channel and payload), or a line the CLI logged. */
export type Recorded = { [K in ChannelKey]: readonly [K, ChannelPayloads[K]] }[ChannelKey] | readonly ['log', Level, object, string];

/** Entries kept at most; beyond, they are counted, not kept (a flood while observability loads). */
export const EARLY_EVENTS_MAX = 200_000;

/** The part of a logger the CLI and the notifier use. */
export interface EarlyLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The server's events and the lines logged meanwhile, in the order they
 * happened, until observability takes them (`take`); from then on, log lines
 * go to the logger it attaches.
 */
export class EarlyEvents implements EarlyLogger {
  #entries: Recorded[] = [];
  #lost = 0;
  #unsubscribes: Array<() => void>;
  #log: EarlyLogger | undefined;

  constructor(view: ServerView) {
    this.#unsubscribes = (Object.keys(CHANNEL_NAMES) as ChannelKey[]).map((key) =>
      subscribeTo(key, (ev) => {
        if (ev.server === view) this.#keep([key, ev] as Recorded);
      }),
    );
  }

  debug(obj: object, msg: string): void {
    this.#line('debug', obj, msg);
  }

  info(obj: object, msg: string): void {
    this.#line('info', obj, msg);
  }

  warn(obj: object, msg: string): void {
    this.#line('warn', obj, msg);
  }

  error(obj: object, msg: string): void {
    this.#line('error', obj, msg);
  }

  /** Stop recording events; send later log lines to `log`. Returns what was kept, in order, and how much was not. */
  take(log: EarlyLogger): { entries: Recorded[]; lost: number } {
    for (const unsubscribe of this.#unsubscribes.splice(0)) unsubscribe();
    this.#log = log;
    const out = { entries: this.#entries, lost: this.#lost };
    this.#entries = [];
    return out;
  }

  #line(level: Level, obj: object, msg: string): void {
    if (this.#log !== undefined) this.#log[level](obj, msg);
    else this.#keep(['log', level, obj, msg]);
  }

  #keep(entry: Recorded): void {
    if (this.#entries.length < EARLY_EVENTS_MAX) this.#entries.push(entry);
    else this.#lost++;
  }
}
