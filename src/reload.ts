// Which configuration keys a reload (SIGHUP) applies to the running server,
// and how: one declarative table. Every other key needs a restart: a reload
// that changes one says so and keeps the running value. docs/configuration.md
// marks each key the same way (a test keeps them in step).

import type { Config } from './config/schema.js';
import type { Observability } from './observability/index.js';
import { resolveTracingSettings } from './observability/tracing-settings.js';
import type { FugueServer, LiveSettings } from './server/server.js';

/** What a reload changes. */
export interface ReloadTargets {
  server: FugueServer;
  observability: Observability;
  /** Where OTEL_* variables are read. */
  env: NodeJS.ProcessEnv;
}

/** How one key is applied: as server settings (all applied at once), or by a function that says whether it could. */
type Applier = { live: (c: Config) => LiveSettings } | { apply: (c: Config, t: ReloadTargets) => boolean };

const RELOADABLE: Readonly<Record<string, Applier>> = {
  'log.level': { apply: (c, t) => ((t.observability.log.level = c.log.level), true) },
  'limits.maxClients': { live: (c) => ({ maxClients: c.limits.maxClients }) },
  'limits.maxFrameBytes': { live: (c) => ({ maxFrameBytes: c.limits.maxFrameBytes }) },
  'limits.maxBufferedBytes': { live: (c) => ({ maxBufferedBytes: c.limits.maxBufferedBytes }) },
  'limits.handshakeTimeoutMs': { live: (c) => ({ handshakeTimeoutMs: c.limits.handshakeTimeoutMs }) },
  'limits.frameTimeoutMs': { live: (c) => ({ frameTimeoutMs: c.limits.frameTimeoutMs }) },
  'limits.idleTimeoutMs': { live: (c) => ({ idleTimeoutMs: c.limits.idleTimeoutMs }) },
  'shutdown.timeoutMs': { live: (c) => ({ shutdownTimeoutMs: c.shutdown.timeoutMs }) },
  'socket.checkIntervalMs': { live: (c) => ({ socketCheckIntervalMs: c.socket.checkIntervalMs }) },
  // Only while the sampler is one fugue reads (not an OTEL_TRACES_SAMPLER the SDK owns).
  'tracing.sampleRatio': {
    apply: (c, t) => {
      const ratio = resolveTracingSettings(c.tracing, t.env).sampleRatio;
      return ratio !== undefined && t.observability.tracing.setSampleRatio(ratio);
    },
  },
  'tracing.slowThresholdMs': { apply: (c, t) => (t.observability.tracing.setSlowMs(c.tracing.slowThresholdMs), true) },
};

/** Keys a reload applies to the running server (the rest need a restart). */
export const RELOADABLE_KEYS: ReadonlySet<string> = new Set(Object.keys(RELOADABLE));

/** Apply the `changed` keys of `next`; returns the keys applied and those that need a restart. */
export function applyReload(next: Config, changed: readonly string[], targets: ReloadTargets): { applied: string[]; restartRequired: string[] } {
  const applied: string[] = [];
  const restartRequired: string[] = [];
  const live: LiveSettings = {};
  for (const key of changed) {
    const applier = Object.hasOwn(RELOADABLE, key) ? RELOADABLE[key] : undefined;
    if (applier !== undefined && 'live' in applier) Object.assign(live, applier.live(next));
    const ok = applier !== undefined && ('live' in applier || applier.apply(next, targets));
    (ok ? applied : restartRequired).push(key);
  }
  targets.server.reconfigure(live);
  targets.observability.metrics.shutdownTimeoutMs = targets.server.shutdownTimeoutMs;
  return { applied, restartRequired };
}

/** Every `group.leaf` key of a configuration, with its value. */
function leaves(config: Config): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [group, values] of Object.entries(config)) for (const [leaf, value] of Object.entries(values as object)) out.set(`${group}.${leaf}`, value);
  return out;
}

/** Dotted keys whose values differ. */
export function changedKeys(a: Config, b: Config): string[] {
  const before = leaves(a);
  return [...leaves(b)].filter(([key, value]) => JSON.stringify(before.get(key)) !== JSON.stringify(value)).map(([key]) => key);
}

/** `base` with the `keys` taken from `next`, frozen like every Config. */
export function mergeKeys(base: Config, next: Config, keys: readonly string[]): Config {
  const copy = structuredClone(base);
  const values = leaves(next);
  for (const key of keys) {
    const [group, leaf] = key.split('.') as [keyof Config, string];
    Reflect.set(copy[group], leaf, values.get(key));
  }
  for (const group of Object.values(copy)) Object.freeze(group);
  return Object.freeze(copy);
}
