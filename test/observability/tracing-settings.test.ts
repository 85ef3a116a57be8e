import test from 'ava';
import { loadConfig } from '../../src/config/load.js';
import { resolveTracingSettings } from '../../src/observability/tracing.js';

const cfg = (env: NodeJS.ProcessEnv = {}) => loadConfig({ env: { HOME: '/h', ...env } }).config.tracing;

test('no exporter unless one is configured, by config key or OTEL_TRACES_EXPORTER; the key wins', (t) => {
  t.is(resolveTracingSettings(cfg(), {}).exporter, 'none');
  t.is(resolveTracingSettings(cfg(), { OTEL_TRACES_EXPORTER: 'otlp' }).exporter, 'otlp');
  t.is(resolveTracingSettings(cfg({ FUGUE_TRACING_EXPORTER: 'none' }), { OTEL_TRACES_EXPORTER: 'otlp' }).exporter, 'none');
  t.is(resolveTracingSettings(cfg(), { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).exporter, 'none');
  t.is(resolveTracingSettings(cfg({ FUGUE_TRACING_ENABLED: 'false' }), { OTEL_TRACES_EXPORTER: 'otlp' }).exporter, 'none');
});

test('the root sampling ratio comes from tracing.sampleRatio, else the standard OTEL_TRACES_SAMPLER values', (t) => {
  const ratio = (env: NodeJS.ProcessEnv, c = cfg()) => resolveTracingSettings(c, env).sampleRatio;
  t.is(ratio({}), 1, 'SDK default parentbased_always_on');
  t.is(ratio({ OTEL_TRACES_SAMPLER: 'always_off' }), 0);
  t.is(ratio({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }), 0.25);
  t.is(ratio({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }), 1, 'clamped');
  t.is(ratio({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), undefined, 'unknown samplers are left to the SDK');
  t.is(ratio({ OTEL_TRACES_SAMPLER: 'always_off' }, cfg({ FUGUE_TRACING_SAMPLE_RATIO: '0.5' })), 0.5, 'the config key wins');
});

test('endpoint and protocol: config keys, else OTEL_*', (t) => {
  const s = resolveTracingSettings(cfg({ FUGUE_TRACING_ENDPOINT: 'http://c:4318/' }), { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
  t.is(s.url, 'http://c:4318/v1/traces');
  t.is(s.protocol, 'http/json');
  t.is(resolveTracingSettings(cfg(), {}).url, undefined, 'the exporter reads OTEL_EXPORTER_OTLP_*ENDPOINT itself');
  t.is(resolveTracingSettings(cfg(), {}).protocol, 'http/protobuf');
});
