// dashboards/fugue-server.json and dashboards/provisioning/, checked without
// Grafana: layout, job scoping, exemplars linked to traces, and panels that
// docs/dashboards.md describes. prometheus.test.ts runs every query against a
// live server.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerMetrics } from '../../src/observability/metrics.js';
import { dashboardExemplarTargets, dashboardPanels, readDashboard, REPO_ROOT } from '../helpers/promql.js';

const DATASOURCES = join(REPO_ROOT, 'dashboards', 'provisioning', 'datasource.yml');
const DOCS = join(REPO_ROOT, 'docs', 'dashboards.md');

test('the dashboard is Grafana JSON of schemaVersion 39 with unique panel ids and no overlapping panels', (t) => {
  const dashboard = readDashboard();
  t.is(dashboard.schemaVersion, 39);
  const panels = dashboardPanels(dashboard);
  const ids = panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, `panel ids: ${ids.join(', ')}`);
  const cells = new Map<string, string>();
  for (const p of panels) {
    const g = p.gridPos!;
    t.true(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title}: inside the 24-column grid`);
    for (let y = g.y; y < g.y + g.h; y++) {
      for (let x = g.x; x < g.x + g.w; x++) {
        const other = cells.get(`${x},${y}`);
        if (other !== undefined) t.fail(`${p.title} overlaps ${other} at ${x},${y}`);
        cells.set(`${x},${y}`, p.title ?? '');
      }
    }
  }
});

test('a job variable scopes the instance variable and every query, so other scrape targets never mix in', (t) => {
  const vars = readDashboard().templating?.list ?? [];
  t.deepEqual(vars.map((v) => v.name), ['datasource', 'job', 'instance']);
  const job = vars.find((v) => v.name === 'job')!;
  const instance = vars.find((v) => v.name === 'instance')!;
  t.is(job.query, 'label_values(fugue_build_info, job)');
  t.is(instance.query, 'label_values(fugue_build_info{job=~"$job"}, instance)');
  const problems: string[] = [];
  for (const p of dashboardPanels()) {
    for (const target of p.targets ?? []) {
      for (const m of (target.expr ?? '').matchAll(/\b((?:fugue[_:]|process_|nodejs_)[a-z_:0-9]+)(\{[^}]*\})?/g)) {
        const selector = m[2] ?? '';
        // The objective is recorded per job (it has no instance label).
        const wanted = m[1] === 'fugue:message_latency:objective_ratio' ? ['job=~"$job"'] : ['job=~"$job"', 'instance=~"$instance"'];
        for (const w of wanted) if (!selector.includes(w)) problems.push(`${p.title} ${target.refId}: ${m[0]} lacks ${w}`);
      }
    }
  }
  t.deepEqual(problems, []);
});

test('exemplars are queried once, on the p99 latency query, and the provisioned datasource links their trace_id to a tracing datasource', async (t) => {
  const targets = dashboardExemplarTargets();
  t.deepEqual(targets.map((x) => `${x.panel} ${x.refId}`), ['Message latency p50 / p99 by type B']);
  t.regex(targets[0]!.expr, /^histogram_quantile\(0\.99, .*fugue_message_duration_seconds_bucket/);

  // datasource.yml (line-based: the file is written in this shape).
  const yml = readFileSync(DATASOURCES, 'utf8');
  const destinations = /exemplarTraceIdDestinations:\n\s+- name: (\S+)\n\s+datasourceUid: (\S+)/.exec(yml);
  t.truthy(destinations, 'the Prometheus datasource has exemplarTraceIdDestinations with name and datasourceUid');
  const [, labelName, uid] = destinations!;
  const tracing = new RegExp(`- name: \\S+\\n\\s+uid: ${uid}\\n\\s+type: (\\S+)`).exec(yml);
  t.truthy(tracing, `a datasource with uid ${uid} is provisioned`);
  t.true(['tempo', 'jaeger'].includes(tracing![1]!), `datasource ${uid} is a tracing datasource (got type ${tracing![1]})`);

  // The label name is the one the server puts on its exemplars.
  const m = new ServerMetrics({ version: '0', maxClients: 1, shutdownTimeoutMs: 1, defaultMetrics: false });
  m.messageDuration.observe(m.messageDuration.series('ping'), 0.001, 1, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
  const body = (await m.render(true)).body;
  t.true(body.includes(` # {${labelName}="${'a'.repeat(32)}"`), `the OpenMetrics exemplar carries the trace id as ${labelName}`);
});

test('every panel has a description, and docs/dashboards.md describes every panel by its title', (t) => {
  const docs = readFileSync(DOCS, 'utf8');
  const problems: string[] = [];
  for (const p of dashboardPanels()) {
    if (p.type === 'row') {
      if (!docs.includes(`**${p.title}**`)) problems.push(`row ${p.title}: not in docs/dashboards.md`);
      continue;
    }
    if (!p.description) problems.push(`${p.title}: no description`);
    if (!docs.includes(`**${p.title}**:`)) problems.push(`${p.title}: docs/dashboards.md has no "**${p.title}**:" entry`);
  }
  t.deepEqual(problems, []);
});

test('the latency panel and docs/observability.md say the same about what fugue_message_duration_seconds measures', (t) => {
  const what = 'from the read that delivered a message to the write of its reply';
  const panel = dashboardPanels().find((p) => p.title === 'Message latency p50 / p99 by type')!;
  t.true(panel.description!.toLowerCase().includes(what), panel.description);
  t.true(readFileSync(join(REPO_ROOT, 'docs', 'observability.md'), 'utf8').includes(what));
  t.true(readFileSync(DOCS, 'utf8').includes(what));
});
