// The fan-out rows' feature (issue 17, item 3), written from the package's
// public API alone, the way any feature outside the tree is: a subscriber
// asks for a stream, a publisher asks for n messages to be pushed to every
// subscriber, each serialised and framed once (Stream.publish) whatever the
// number of recipients. bench/fanout-server.ts runs fugue with it registered;
// bench/bare-server.ts does the same two types the naive way.
//
//   bench.subscribe {on_slow?: "drop" | "disconnect"} -> bench.subscribed {subscribers}
//   bench.publish {n, size} -> bench.published {n, sent, dropped}, once the n
//     messages {type: "bench.msg", seq, data} (data: `size` bytes) are queued
//     for every subscriber; `sent` and `dropped` sum the n PublishResults.
//   bench.missed {missed}: a `drop` subscriber that had fallen behind caught up.
//
// The measured rows use `drop` with the `events` feature's bound
// (EVENTS_MAX_BUFFERED_BYTES): a fan-out as fugue ships one. `disconnect`
// gives the stopped-subscriber row's variant where a subscriber that stops
// reading is cut off at limits.maxBufferedBytes instead.

import { EVENTS_MAX_BUFFERED_BYTES, type Feature, type Stream } from '../src/index.js';

/** Most messages one bench.publish may ask for. */
export const MAX_PUBLISH_N = 10_000;
/** Largest payload one message may carry, in bytes. */
export const MAX_PUBLISH_SIZE = 1024 * 1024;

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

export const fanoutFeature: Feature = {
  name: 'bench',
  sends: ['bench.subscribed', 'bench.published', 'bench.msg', 'bench.missed'],
  streams: ['bench', 'bench-disconnect'],
  register(scope) {
    const drop: Stream = scope.stream('bench', {
      onSlow: 'drop',
      maxBufferedBytes: EVENTS_MAX_BUFFERED_BYTES,
      missedMessage: (missed) => ({ type: 'bench.missed', missed }),
    });
    const disconnect: Stream = scope.stream('bench-disconnect', { onSlow: 'disconnect' });
    const streams = [drop, disconnect];
    // One payload string per size asked for: the publisher asks for one size.
    const payloads = new Map<number, string>();
    let seq = 1;

    scope.handle('bench.subscribe', {
      validate: (msg) => (msg.on_slow === undefined || msg.on_slow === 'drop' || msg.on_slow === 'disconnect' ? undefined : 'field "on_slow" must be "drop" or "disconnect", or absent (drop)'),
      handle(msg, ctx) {
        (msg.on_slow === 'disconnect' ? disconnect : drop).subscribe(ctx.client);
        return { type: 'bench.subscribed', subscribers: drop.size + disconnect.size };
      },
    });

    scope.handle('bench.publish', {
      validate: (msg) => {
        if (!isInt(msg.n, 1, MAX_PUBLISH_N)) return `field "n" must be an integer from 1 to ${MAX_PUBLISH_N}`;
        if (!isInt(msg.size, 0, MAX_PUBLISH_SIZE)) return `field "size" must be an integer from 0 to ${MAX_PUBLISH_SIZE}`;
        return undefined;
      },
      handle(msg) {
        const n = msg.n as number;
        const size = msg.size as number;
        let data = payloads.get(size);
        if (data === undefined) payloads.set(size, (data = 'x'.repeat(size)));
        let sent = 0;
        let dropped = 0;
        for (let i = 0; i < n; i++) {
          // Serialised and framed once, for both streams (a run uses one of them).
          const message = scope.prepare({ type: 'bench.msg', seq: seq++, data });
          for (const stream of streams) {
            if (stream.size === 0) continue;
            const r = stream.publish(message);
            sent += r.sent;
            dropped += r.dropped;
          }
        }
        return { type: 'bench.published', n, sent, dropped };
      },
    });
  },
};
