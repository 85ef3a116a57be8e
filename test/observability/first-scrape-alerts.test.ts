// An event a new process counts before Prometheus's first scrape of it raises
// its alert (fugue-server issue 18, item 5; docs/dashboards.md, "A new process").
// increase() sees no increase in a series whose first sample is already 1, so
// FugueSocketRecreated and the other one-event alerts stayed silent; the rules
// now compare the real server's fugue_start_time_seconds with Prometheus's clock.
// dashboards/alerts-new-process.test.yml covers every such alert with promtool;
// this test runs the whole chain once: real server, real socket file, real
// Prometheus. prometheus.test.ts shows a fresh server with no such event quiet.
//
// Without prometheus on PATH the test is skipped, except in CI (CI set), where
// it fails: .ci/run installs the package.

import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promTest } from '../helpers/prom-tools.js';
import { apiGet, documentedPrometheusConfig, query, startPrometheus, type VectorSample } from '../helpers/prometheus-server.js';
import { scrapeSample } from '../helpers/scrape.js';
import { httpPortOf, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

interface AlertsData {
  alerts: { labels: Record<string, string>; annotations: Record<string, string>; state: string; value: string }[];
}

promTest('FugueSocketRecreated fires at the first scrape of a process that re-created its socket file before Prometheus ever scraped it', ['prometheus'], async (t, { prometheus }) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, FUGUE_SOCKET_CHECK_INTERVAL_MS: '100' } });
  await s.ready();
  const port = await waitFor(() => httpPortOf(s), { what: 'http sidecar port in the logs' });

  // A tmp cleaner deletes the socket file; the server puts it back and counts it.
  unlinkSync(sock);
  await waitFor(async () => (await scrapeSample(port, 'fugue_socket_rebinds_total')) === 1, {
    what: `fugue_socket_rebinds_total 1 on 127.0.0.1:${port} after ${sock} was deleted`,
    timeoutMs: 10_000,
    intervalMs: 50,
  });

  // Only now does Prometheus start: its first sample of the counter is 1.
  const prom = await startPrometheus(t, prometheus, dir, documentedPrometheusConfig(port));
  const promLog = (): string => `\n--- prometheus log ---\n${prom.output().slice(0, 2000)}`;
  const firing = await waitFor(async () => {
    const r = await apiGet<AlertsData>(`${prom.url}/api/v1/alerts`);
    return r.data?.alerts.find((a) => a.labels.alertname === 'FugueSocketRecreated' && a.state === 'firing');
  }, { what: `FugueSocketRecreated firing in Prometheus${promLog()}`, timeoutMs: 30_000, intervalMs: 250 });
  t.is(firing.labels.instance, `127.0.0.1:${port}`);
  t.is(firing.annotations.description, 'The socket file was deleted or replaced 1 times in the last 15 minutes and re-created by the server; clients connecting meanwhile failed.');

  // What the rule sees: a one-sample series increase() has nothing for, and a process younger than the window.
  const seen = async (expr: string): Promise<string[]> => ((await query(prom, expr)).data?.result as VectorSample[] | undefined ?? []).map((v) => v.value[1]);
  t.deepEqual(await seen('increase(fugue_socket_rebinds_total{job="fugue-server"}[15m]) > 0'), [], 'increase() alone would not have fired');
  const age = Number((await seen('time() - fugue_start_time_seconds{job="fugue-server"}'))[0]);
  t.true(age >= 0 && age < 900, `the process is ${age} s old by Prometheus's clock (fugue_start_time_seconds is in Unix seconds)`);

  // The other one-event alerts read counters still at 0: quiet.
  const alerts = (await apiGet<AlertsData>(`${prom.url}/api/v1/alerts`)).data?.alerts ?? [];
  t.deepEqual(alerts.map((a) => `${a.labels.alertname} ${a.state}`), ['FugueSocketRecreated firing']);

  s.child.kill('SIGTERM');
  t.deepEqual(await s.exited, { code: 0, signal: null }, `server stderr: ${s.stderr.slice(0, 1000)}`);
});
