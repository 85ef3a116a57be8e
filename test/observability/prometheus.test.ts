// A real Prometheus (Debian package `prometheus`, >= 2.42) scrapes the real
// fugue-server process's HTTP sidecar while clients run; every PromQL expression
// of dashboards/fugue-server.json and every rule of dashboards/alerts.yml (alerts and
// recording rules) is evaluated against it, and the latency panel's exemplars are
// read back. promtool lints the sidecar's /metrics.
//
// Without prometheus/promtool on PATH the tests are skipped, except in CI
// (CI set), where they fail: .ci/run installs the package.

import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FugueClient } from '../../src/client/client.js';
import { dashboardExemplarTargets, dashboardExpressions, parseRules, recordingRuleExpressions, type PromExpr } from '../helpers/promql.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { promTest } from '../helpers/prom-tools.js';
import { httpPortOf, spawnServer, type Spawned } from '../helpers/spawn-server.js';
import { apiGet, documentedPrometheusConfig, query, startPrometheus, type QueryData, type VectorSample } from '../helpers/prometheus-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

// ---------------------------------------------------------------------------
// Client load

/** Hard cap per loop, so a loop can never run on forever even if `stop` is missed. */
const MAX_ITERATIONS = 5000;
/** Pause between rounds, to keep the load light (this is pacing, not synchronisation). */
const PACE_MS = 20;

interface Load {
  /** Requests answered so far (all loops). */
  replies(): number;
  /** Unexpected replies or errors from the loops. */
  errors: string[];
  /** Stop the loops and detach every client. */
  stop(): Promise<void>;
}

/**
 * `clients` clients sending ping/echo (and status every 10th round) in a loop,
 * one client sending an unknown type (so protocol-error series exist), and one
 * client that connects and detaches at once (so close and duration series exist).
 */
async function startLoad(t: ExecutionContext, socketPath: string, clients: number): Promise<Load> {
  let stopped = false;
  let replies = 0;
  const errors: string[] = [];
  const workers = await Promise.all(Array.from({ length: clients }, (_, i) => FugueClient.connect(socketPath, { clientName: `load-${i}` })));
  const bad = await FugueClient.connect(socketPath, { clientName: 'unknown-type' });
  const all = [...workers, bad];
  t.teardown(() => {
    stopped = true;
    for (const c of all) c.destroy();
  });

  const shortLived = await FugueClient.connect(socketPath, { clientName: 'short-lived' });
  await shortLived.ping();
  await shortLived.detach();

  const loop = async (name: string, round: (n: number) => Promise<void>, paceMs: number): Promise<void> => {
    try {
      for (let n = 0; !stopped && n < MAX_ITERATIONS; n++) {
        await round(n);
        await delay(paceMs);
      }
    } catch (err) {
      if (!stopped) errors.push(`${name}: ${(err as Error).message}`);
    }
  };
  const expect = (name: string, reply: Record<string, unknown>, type: string): void => {
    replies++;
    if (reply.type !== type) errors.push(`${name}: expected ${type}, got ${JSON.stringify(reply)}`);
  };
  const loops = [
    ...workers.map((c, i) =>
      loop(`load-${i}`, async (n) => {
        expect(`load-${i}`, await c.ping(), 'pong');
        expect(`load-${i}`, await c.echo({ client: i, n }), 'echo');
        if (n % 10 === 0) expect(`load-${i}`, await c.status(), 'status');
      }, PACE_MS)),
    loop('unknown-type', async () => {
      const reply = await bad.request({ type: 'no_such_type' });
      replies++;
      if (reply.type !== 'error' || reply.code !== 'unknown_type') errors.push(`unknown-type: expected error unknown_type, got ${JSON.stringify(reply)}`);
    }, 1000), // well under FugueErrorRatioHigh's 5% of the messages
  ];

  return {
    replies: () => replies,
    errors,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      await Promise.all(all.map((c) => c.detach()));
    },
  };
}

// ---------------------------------------------------------------------------
// Prometheus

/** Number of series (scalar/string: 1) and how many have a NaN value. */
function summarise(data: QueryData): { series: number; nan: number } {
  if (data.resultType === 'scalar' || data.resultType === 'string') {
    return { series: 1, nan: (data.result as [number, string])[1] === 'NaN' ? 1 : 0 };
  }
  const result = data.result as VectorSample[];
  const nan = data.resultType === 'vector' ? result.filter((s) => s.value[1] === 'NaN').length : 0;
  return { series: result.length, nan };
}

interface TargetsData {
  activeTargets: { labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[];
}
interface RulesData {
  groups: {
    name: string;
    file: string;
    lastEvaluation: string;
    rules: { type: 'alerting' | 'recording'; name: string; health: string; lastError?: string; state?: string; lastEvaluation: string; alerts?: unknown[] }[];
  }[];
}

// ---------------------------------------------------------------------------
// Tests

// promtool check rules and promtool test rules: see alert-rules.test.ts.

/**
 * Lint findings of `promtool check metrics` (exit code 3) accepted as-is, with why.
 * Everything else, and every finding about a fugue_* metric, fails the test.
 */

promTest('promtool check metrics passes on the sidecar /metrics after traffic', ['promtool'], async (t, { promtool }) => {
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const port = await waitFor(() => httpPortOf(s), { what: 'http sidecar port in the logs' });
  const load = await startLoad(t, sock, 2);
  // Every labelled family we create has a series once these are answered.
  await waitFor(() => load.replies() >= 20, { what: '20 replies', timeoutMs: 10_000 });
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const body = await res.text();
  await load.stop();
  t.deepEqual(load.errors, []);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  for (const family of ['fugue_messages_received_total{type="unknown"}', 'fugue_protocol_errors_total{code="unknown_type"}', 'fugue_connections_closed_total{reason="detach"}']) {
    t.true(body.includes(family), `/metrics has ${family}`);
  }

  const r = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 20_000 });
  const out = `${r.stdout}${r.stderr}`.trim();
  t.log(`promtool check metrics: exit ${r.status ?? r.signal}${out === '' ? '' : `\n${out}`}`);
  const findings = out === '' ? [] : out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  t.deepEqual(findings, [], `promtool check metrics reports problems:\n${out}`);
  t.is(r.status, 0, `promtool check metrics exited ${r.status ?? r.signal}:\n${out}`);

  s.child.kill('SIGTERM');
  t.deepEqual(await s.exited, { code: 0, signal: null });
});

interface ExemplarData {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
}

promTest('a real Prometheus scrapes the live server: target up, every rule healthy and quiet, every dashboard query, alert and recording rule evaluates, exemplars carry trace ids', ['prometheus'], async (t, { prometheus }) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  // Tracing on (a fifth of the root spans sampled), so the latency histogram carries exemplars.
  const otlp = await startOtlpReceiver();
  t.teardown(() => otlp.close());
  const s: Spawned = spawnServer(t, {
    env: { FUGUE_SOCKET_PATH: sock, FUGUE_TRACING_EXPORTER: 'otlp', FUGUE_TRACING_ENDPOINT: otlp.url, FUGUE_TRACING_SAMPLE_RATIO: '0.2' },
  });
  await s.ready();
  const sidecarPort = await waitFor(() => httpPortOf(s), { what: 'http sidecar port in the logs' });
  const load = await startLoad(t, sock, 5);

  // Scrapes every second, with alerts.yml loaded.
  const prom = await startPrometheus(t, prometheus, dir, documentedPrometheusConfig(sidecarPort));
  const promLog = (): string => `\n--- prometheus log ---\n${prom.output().slice(0, 2000)}`;

  // 1. The target is scraped.
  const target = await waitFor(async () => {
    const r = await apiGet<TargetsData>(`${prom.url}/api/v1/targets`);
    return r.data?.activeTargets.find((a) => a.labels.job === 'fugue-server' && a.health === 'up');
  }, { what: `target 127.0.0.1:${sidecarPort} (job fugue-server) health up${promLog()}`, timeoutMs: 30_000, intervalMs: 200 });
  const upAt = Date.now();
  t.is(target.scrapeUrl, `http://127.0.0.1:${sidecarPort}/metrics`);

  // 2. Enough samples for rate(...[1m]) (needs two) and histogram quantiles.
  await waitFor(async () => {
    const r = await query(prom, 'count_over_time(fugue_active_clients{job="fugue-server"}[1m])');
    const v = (r.data?.result as VectorSample[] | undefined)?.[0]?.value[1];
    return v !== undefined && Number(v) >= 4;
  }, { what: `4 scrapes of fugue_active_clients${promLog()}`, timeoutMs: 30_000, intervalMs: 250 });

  // 3. Every rule group has been evaluated (twice: the recorded 5m rates exist
  // before the rules that sum them over time) since the target came up.
  const parsed = parseRules();
  const groups = [...new Set(parsed.map((r) => r.group))];
  const rules = await waitFor(async () => {
    const r = await apiGet<RulesData>(`${prom.url}/api/v1/rules`);
    const ours = groups.map((name) => r.data?.groups.find((g) => g.name === name));
    if (ours.some((g) => g === undefined || Date.parse(g.lastEvaluation) < upAt + 2000)) return undefined;
    return ours.every((g) => g!.rules.every((rule) => rule.health !== 'unknown')) ? r.data : undefined;
  }, { what: `rule groups ${groups.join(', ')} evaluated after the target came up${promLog()}`, timeoutMs: 15_000, intervalMs: 200 });

  const failures: string[] = [];
  const report: string[] = [];

  const loadedRules = rules.groups.flatMap((g) => g.rules.map((r) => ({ ...r, group: g.name, file: g.file })));
  t.deepEqual(
    loadedRules.map((r) => `${r.group} ${r.type === 'alerting' ? 'alert' : 'record'} ${r.name}`).sort(),
    parsed.map((r) => `${r.group} ${r.kind} ${r.name}`).sort(),
    'rules Prometheus loaded = rules test/helpers/promql.ts found in alerts.yml',
  );
  for (const rule of loadedRules) {
    if (rule.health !== 'ok') failures.push(`rule ${rule.name} (group ${rule.group}): health ${rule.health}: ${rule.lastError ?? ''}`);
    if (rule.type === 'alerting' && rule.state !== 'inactive') failures.push(`alert ${rule.name} is ${rule.state ?? '?'} in a healthy run: ${JSON.stringify(rule.alerts)}`);
  }

  // 4. Every expression. Dashboard and recording rules: expectData true =>
  // non-empty (NaN samples count as data). Alerts: empty in a healthy run
  // (FugueServerAbsent is absent(up{...}), empty because up exists).
  const dashboard = dashboardExpressions();
  const records = recordingRuleExpressions();
  const recorded: PromExpr[] = parsed.filter((r) => r.kind === 'record').map((r) => ({ source: `recorded series ${r.name}`, expr: r.name, expectData: true }));
  const alerts = parsed.filter((r) => r.kind === 'alert').map((r) => ({ source: `alert ${r.name} (line ${r.line})`, expr: r.expr, expectData: false }));
  t.true(dashboard.length > 0, 'the dashboard has expressions');
  t.true(alerts.length > 0 && records.length > 0, 'alerts.yml has alerts and recording rules');
  const check = async (e: PromExpr, kind: 'dashboard' | 'record' | 'alert'): Promise<void> => {
    const r = await query(prom, e.expr);
    if (r.status !== 'success' || r.data === undefined) {
      failures.push(`${e.source}: query failed (${r.errorType ?? '?'}: ${r.error ?? '?'})\n    expr: ${e.expr}`);
      return;
    }
    const { series, nan } = summarise(r.data);
    report.push(`${series === 0 ? 'empty ' : `${series} series${nan > 0 ? ` (${nan} NaN)` : ''}`}  ${e.source}${kind === 'alert' ? ' [must be empty]' : e.expectData ? '' : ' [may be empty]'}`);
    if (r.warnings !== undefined && r.warnings.length > 0) report.push(`    warnings: ${r.warnings.join('; ')}`);
    if (kind !== 'alert' && e.expectData && series === 0) failures.push(`${e.source}: no data while the server runs with clients\n    expr: ${e.expr}`);
    if (kind === 'alert' && series > 0) failures.push(`${e.source}: fires in a healthy run: ${JSON.stringify(r.data.result)}\n    expr: ${e.expr}`);
  };
  for (const e of dashboard) await check(e, 'dashboard');
  for (const e of [...records, ...recorded]) await check(e, 'record');
  for (const e of alerts) await check(e, 'alert');
  const slow = await query(prom, 'fugue:message_latency_slow:ratio_rate5m');
  t.log(`${dashboard.length} dashboard, ${records.length} recording rule and ${alerts.length} alert expressions; slow-message ratio ${JSON.stringify((slow.data?.result as VectorSample[] | undefined)?.map((v) => v.value[1]))}:\n${report.join('\n')}`);
  t.deepEqual(failures, [], `${failures.length} problem(s):\n${failures.join('\n')}`);

  // 5. Exemplars: Prometheus scraped them (it asks for OpenMetrics) from the query
  // the latency panel marks with "exemplar": true, and each carries the trace_id
  // that datasource.yml's exemplarTraceIdDestinations links to a trace.
  const exemplarTargets = dashboardExemplarTargets();
  t.is(exemplarTargets.length, 1, 'the dashboard queries exemplars once');
  const exemplarExpr = exemplarTargets[0]!.expr;
  const exemplars = await waitFor(async () => {
    const r = await apiGet<ExemplarData[]>(`${prom.url}/api/v1/query_exemplars?query=${encodeURIComponent(exemplarExpr)}&start=${Math.floor(upAt / 1000) - 60}&end=${Math.ceil(Date.now() / 1000) + 1}`);
    const found = (r.data ?? []).flatMap((d) => d.exemplars);
    return found.length > 0 ? found : undefined;
  }, { what: `exemplars for ${exemplarExpr}${promLog()}`, timeoutMs: 15_000, intervalMs: 250 });
  for (const e of exemplars) t.regex(e.labels.trace_id ?? '', /^[0-9a-f]{32}$/, `exemplar labels ${JSON.stringify(e.labels)}`);

  // 6. Stop: clients detach, the server exits 0 on SIGTERM.
  await load.stop();
  t.deepEqual(load.errors, []);
  t.true(load.replies() > 0);
  s.child.kill('SIGTERM');
  t.deepEqual(await s.exited, { code: 0, signal: null }, `server stderr: ${s.stderr.slice(0, 1000)}`);
  // Spans flushed at exit: at least one exemplar's trace is in the receiver.
  const exported = new Set(otlp.spans.map((sp) => sp.traceId));
  t.true(exemplars.some((e) => exported.has(e.labels.trace_id ?? '')), 'an exemplar links to a trace the server exported');
});
