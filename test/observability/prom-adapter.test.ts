// prom-adapter.ts leans on prom-client internals (the object a metric's get()
// returns, how registries render it). These tests pin the version that was
// checked and render through real registries, so an upgrade that changes the
// internals fails here, not silently in production.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Counter } from 'prom-client';
import { BatchedCounter, BatchedHistogram, openMetricsRegistry, PROM_CLIENT_VERSION, registerCustom, registersOf, textRegistryOf } from '../../src/observability/prom-adapter.js';

const require = createRequire(import.meta.url);

test('prom-client is the version the adapter was checked against (package.json, package-lock.json and node_modules agree)', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  const lock = JSON.parse(readFileSync(new URL('../../../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, { version: string }> };
  const installed = (require('prom-client/package.json') as { version: string }).version;
  const message = 'prom-client changed: re-check src/observability/prom-adapter.ts against its internals, then update PROM_CLIENT_VERSION';
  t.is(pkg.dependencies['prom-client'], PROM_CLIENT_VERSION, message);
  t.is(lock.packages['node_modules/prom-client']?.version, PROM_CLIENT_VERSION, message);
  t.is(installed, PROM_CLIENT_VERSION, message);
});

test('BatchedCounter: slots add up, a scrape moves them into the counter, series exist from first use at 0', async (t) => {
  const registry = openMetricsRegistry();
  let batched: BatchedCounter | undefined;
  const counter = new Counter({ name: 'x_events_total', help: 'h', labelNames: ['kind'], registers: registersOf(registry), collect: () => batched?.flush() });
  batched = new BatchedCounter(counter, 'kind');
  const a = batched.slot('a');
  batched.slot('b');
  a.n += 3;
  a.n++;
  const text = await textRegistryOf(registry).metrics();
  t.regex(text, /^x_events_total\{kind="a"\} 4$/m);
  t.regex(text, /^x_events_total\{kind="b"\} 0$/m);
  t.is(a.n, 0, 'moved, not copied');
  a.n += 2;
  t.regex(await registry.metrics(), /^x_events_total\{kind="a"\} 6$/m, 'OpenMetrics too, cumulative');
  // Without a label: one slot, ''.
  let plain: BatchedCounter | undefined;
  const c2 = new Counter({ name: 'y_total', help: 'h', registers: registersOf(registry), collect: () => plain?.flush() });
  plain = new BatchedCounter(c2);
  plain.slot('').n += 5;
  t.regex(await registry.metrics(), /^y_total 5$/m);
});

test('BatchedHistogram: buckets are cumulative, sum and count exact, exemplars rendered in OpenMetrics only, reset zeroes in place', async (t) => {
  const registry = openMetricsRegistry();
  const h = new BatchedHistogram({ name: 'x_seconds', help: 'h', label: 'type', buckets: [0.1, 1, 0.01] });
  registerCustom(registry, h);
  const s = h.series('echo');
  h.observe(s, 0.005);
  h.observe(s, 0.05, 2);
  h.observe(s, 0.5, 1, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
  h.observe(s, 0.6, 1, { traceId: 'c'.repeat(32), spanId: 'd'.repeat(16) }); // within EXEMPLAR_REFRESH_S: the first stays
  h.observe(s, 5);
  const text = await textRegistryOf(registry).metrics();
  t.regex(text, /^x_seconds_bucket\{le="0\.01",type="echo"\} 1$/m);
  t.regex(text, /^x_seconds_bucket\{le="0\.1",type="echo"\} 3$/m);
  t.regex(text, /^x_seconds_bucket\{le="1",type="echo"\} 5$/m);
  t.regex(text, /^x_seconds_bucket\{le="\+Inf",type="echo"\} 6$/m);
  t.regex(text, /^x_seconds_count\{type="echo"\} 6$/m);
  t.regex(text, /^x_seconds_sum\{type="echo"\} 6\.205$/m);
  t.notRegex(text, /trace_id/, 'no exemplars in the text format');
  const om = await registry.metrics();
  t.regex(om, new RegExp(`^x_seconds_bucket\\{le="1",type="echo"\\} 5 # \\{trace_id="${'a'.repeat(32)}",span_id="${'b'.repeat(16)}"\\} 0\\.5 \\d+(\\.\\d+)?$`, 'm'));
  t.regex(om, /^# EOF$/m);
  h.reset();
  t.is(s.count, 0);
  t.regex(await registry.metrics(), /^x_seconds_count\{type="echo"\} 0$/m, 'the same series object, zeroed');
});

test('a counter keeps its _total name in Prometheus text, as in OpenMetrics', async (t) => {
  const registry = openMetricsRegistry();
  new Counter({ name: 'z_things_total', help: 'h', registers: registersOf(registry) }).inc(2);
  const text = textRegistryOf(registry);
  t.regex(await text.metrics(), /^z_things_total 2$/m);
  t.regex(await registry.metrics(), /^z_things_total 2$/m);
  t.regex(await text.metrics(), /^z_things_total 2$/m, 'and again after an OpenMetrics render');
});
