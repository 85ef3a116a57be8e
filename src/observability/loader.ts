// Loading observability after the socket serves (app.ts): its dependencies
// one per event-loop turn, then the rest. Node 24 loads an imported CommonJS
// package in one synchronous run; imported together, pino, prom-client and
// the OpenTelemetry API would hold up the clients already connected for all
// of them at once (docs/performance.md, "Start-up"). This module imports
// none of them itself.

import type { Observability, ObservabilityOptions } from './index.js';

// What observability imports, heaviest first (imported again by it, from the cache).
const DEPENDENCIES: ReadonlyArray<() => Promise<unknown>> = [() => import('prom-client'), () => import('pino'), () => import('@opentelemetry/api')];

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * How long the socket serves alone before the rest loads, in ms: a client
 * started together with the server (socket activation, a daemon started on
 * demand) connects and sends `connect` within it, and is answered before the
 * loading, which holds the event loop, begins.
 */
export const SERVE_FIRST_MS = 10;

/** createObservability, once the first clients were served, with its dependencies loaded one per event-loop turn. */
export async function loadObservability(options: ObservabilityOptions): Promise<Observability> {
  await new Promise((resolve) => setTimeout(resolve, SERVE_FIRST_MS));
  for (const load of DEPENDENCIES) {
    await load();
    await nextTurn();
  }
  const { createObservability } = await import('./index.js');
  return createObservability(options);
}
