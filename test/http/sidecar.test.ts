// The HTTP sidecar over real HTTP: routes, readiness through a drain, robustness.
import test from 'ava';
import { connect } from 'node:net';
import { FugueClient } from '../../src/client/client.js';
import { startApp } from '../helpers/app.js';
import { onceWithin } from '../helpers/wait-for.js';

test('/healthz is 200, /readyz is 200 with state listening', async (t) => {
  const { baseUrl } = await startApp(t);
  const h = await fetch(`${baseUrl}/healthz`);
  t.is(h.status, 200);
  t.deepEqual(await h.json(), { status: 'ok' });
  const r = await fetch(`${baseUrl}/readyz`);
  t.is(r.status, 200);
  t.deepEqual(await r.json(), { ready: true, state: 'listening', service: 'fugue-server', pid: process.pid });
});

test('/metrics serves Prometheus text by default and OpenMetrics when asked', async (t) => {
  const { baseUrl } = await startApp(t);
  const text = await fetch(`${baseUrl}/metrics`);
  t.is(text.status, 200);
  t.regex(text.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  t.regex(await text.text(), /fugue_active_clients 0/);
  const om = await fetch(`${baseUrl}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0,text/plain;q=0.5' } });
  t.regex(om.headers.get('content-type')!, /^application\/openmetrics-text/);
  t.regex(await om.text(), /# EOF\n$/);
});

test('unknown paths get 404 and wrong methods 405 with Allow', async (t) => {
  const { baseUrl } = await startApp(t);
  t.is((await fetch(`${baseUrl}/nope`)).status, 404);
  const r = await fetch(`${baseUrl}/metrics`, { method: 'POST', body: 'x' });
  t.is(r.status, 405);
  t.is(r.headers.get('allow'), 'GET, HEAD');
  const head = await fetch(`${baseUrl}/healthz`, { method: 'HEAD' });
  t.is(head.status, 200);
});

test('readiness flips to 503 when the drain starts while liveness stays 200', async (t) => {
  const { app, baseUrl, socketPath } = await startApp(t, { env: { FUGUE_SHUTDOWN_TIMEOUT_MS: '5000' } });
  const c = await FugueClient.connect(socketPath);
  const notice = onceWithin(c, 'message', 5000, 'shutdown notice');
  const closing = app.close();
  await notice;
  const r = await fetch(`${baseUrl}/readyz`);
  t.is(r.status, 503);
  t.like(await r.json(), { ready: false, state: 'draining' });
  t.is((await fetch(`${baseUrl}/healthz`)).status, 200);
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  t.regex(metrics, /fugue_draining 1/);
  await c.detach();
  await closing;
  await t.throwsAsync(fetch(`${baseUrl}/healthz`), undefined, 'the sidecar stops after the drain');
});

test('a malformed request gets 400 and the sidecar keeps serving', async (t) => {
  const { app, baseUrl } = await startApp(t);
  const port = app.httpAddress!.port;
  const reply = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('THIS IS NOT HTTP\r\n\r\n'));
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('close', () => resolve(data));
  });
  t.regex(reply, /^HTTP\/1\.1 400/);
  t.is((await fetch(`${baseUrl}/healthz`)).status, 200);
});
