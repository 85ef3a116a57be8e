// Every series whose label values are known in advance exists at 0 from
// startup (issue 10, point 1). A labelled counter born at 1 has no increase()
// (Prometheus sees no earlier sample), so the first accept error, slow consumer
// or internal error after a start raised no alert, and panels showed "No data".

import test from 'ava';
import { ERROR_CODES } from '../../src/protocol/index.js';
import { clientsFeature } from '../../src/features/clients.js';
import { eventsFeature } from '../../src/features/events.js';
import { publish } from '../../src/server/channels.js';
import { CLOSE_REASONS, REJECT_REASONS } from '../../src/server/events.js';
import { ACCEPT_ERROR_CODES, ACCEPT_ERROR_OTHER, INVALID_TYPE, UNDECLARED, UNKNOWN_TYPE } from '../../src/observability/metrics.js';
import { FugueClient } from '../../src/client/client.js';
import { startApp } from '../helpers/app.js';

/** Every `name{label="value"}` series a fresh server must export, at 0. */
function knownSeries(): string[] {
  const types = ['connect', 'detach', 'ping', 'echo', 'status', 'list_clients', 'events.subscribe', 'events.unsubscribe', UNKNOWN_TYPE, INVALID_TYPE];
  const sent = ['connected', 'pong', 'echo', 'status', 'error', 'shutdown', ...(clientsFeature.sends ?? []), ...(eventsFeature.sends ?? []), UNDECLARED];
  return [
    ...sent.map((type) => `fugue_messages_sent_total{type="${type}"}`),
    `fugue_protocol_errors_total{code="${UNDECLARED}"}`,
    'fugue_stream_pauses_total{stream="events"}',
    'fugue_stream_dropped_total{stream="events"}',
    ...CLOSE_REASONS.map((r) => `fugue_connections_closed_total{reason="${r}"}`),
    ...REJECT_REASONS.map((r) => `fugue_connections_rejected_total{reason="${r}"}`),
    ...ERROR_CODES.map((c) => `fugue_protocol_errors_total{code="${c}"}`),
    ...[...ACCEPT_ERROR_CODES, ACCEPT_ERROR_OTHER].map((c) => `fugue_accept_errors_total{code="${c}"}`),
    ...types.map((type) => `fugue_messages_received_total{type="${type}"}`),
    ...types.map((type) => `fugue_message_duration_seconds_count{type="${type}"}`),
    ...types.map((type) => `fugue_message_duration_seconds_bucket{le="+Inf",type="${type}"}`),
    'fugue_connections_accepted_total',
    'fugue_received_bytes_total',
    'fugue_sent_bytes_total',
    'fugue_spans_dropped_total',
    'fugue_socket_rebinds_total',
    'fugue_connection_duration_seconds_count',
    'fugue_active_clients',
    'fugue_draining',
    'fugue_drain_start_time_seconds',
  ];
}

/** Sample values by series (name and labels as printed), from a text or OpenMetrics body. */
function samples(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)/.exec(line.replace(/ # \{.*$/, ''));
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

test('a fresh server exports every known label value at 0 on /metrics (Prometheus text)', async (t) => {
  const { baseUrl } = await startApp(t);
  const res = await fetch(`${baseUrl}/metrics`);
  t.is(res.status, 200);
  const got = samples(await res.text());
  const missing = knownSeries().filter((s) => got.get(s) !== 0);
  t.deepEqual(missing, [], `series missing or not 0: ${missing.map((s) => `${s} = ${got.get(s)}`).join(', ')}`);
});

test('a fresh server exports every known label value at 0 in OpenMetrics too (what Prometheus scrapes)', async (t) => {
  const { baseUrl } = await startApp(t);
  const res = await fetch(`${baseUrl}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  t.regex(res.headers.get('content-type') ?? '', /application\/openmetrics-text/);
  const got = samples(await res.text());
  // OpenMetrics drops nothing but the counters' `_total` from the family name; samples keep it.
  const missing = knownSeries().filter((s) => got.get(s) !== 0);
  t.deepEqual(missing, [], `series missing or not 0: ${missing.map((s) => `${s} = ${got.get(s)}`).join(', ')}`);
});

test('the first event of a kind moves its series from 0 to 1', async (t) => {
  const { app, socketPath } = await startApp(t);
  const c = await FugueClient.connect(socketPath);
  await c.request({ type: 'no_such_type' });
  await c.detach();
  const got = samples((await app.observability.metrics.render(false)).body);
  t.is(got.get('fugue_protocol_errors_total{code="unknown_type"}'), 1);
  t.is(got.get('fugue_messages_received_total{type="unknown"}'), 1);
  t.is(got.get('fugue_protocol_errors_total{code="internal"}'), 0);
});

test('accept errors keep a bounded code label: named errnos as themselves, any other as "other"', async (t) => {
  const { app } = await startApp(t);
  const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`accept ${code}`), { code });
  for (const code of ['ENFILE', 'EPROTO', 'ESOMETHINGNEW']) publish('acceptError', { server: app.server.view, error: errno(code) });
  const body = (await app.observability.metrics.render(false)).body;
  const got = samples(body);
  t.is(got.get('fugue_accept_errors_total{code="ENFILE"}'), 1);
  t.is(got.get('fugue_accept_errors_total{code="other"}'), 2);
  t.is(got.get('fugue_accept_errors_total{code="EMFILE"}'), 0);
  t.false(body.includes('EPROTO') || body.includes('ESOMETHINGNEW'), 'an unnamed errno never becomes a label value');
});
