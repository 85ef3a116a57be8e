// The rules in dashboards/alerts.yml, checked as an SRE would (issue 10): promtool
// lints them and runs their unit tests (dashboards/alerts.test.yml,
// alerts-hours.test.yml and alerts-new-process.test.yml) against the real
// promtool; the tests below check that
// those unit tests cover every alert both ways, and that every alert carries what
// on-call needs (severity, summary, description, a runbook_url into
// docs/dashboards.md). test/observability/prometheus.test.ts evaluates the same
// rules against a live server.
//
// Without promtool on PATH the promtool tests are skipped, except in CI (CI set),
// where they fail: .ci/run installs the package.

import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ALERT_TEST_FILES, ALERTS_FILE, dashboardExpressions, parseRules, REPO_ROOT } from '../helpers/promql.js';
import { promTest } from '../helpers/prom-tools.js';
import { tmpDir } from '../helpers/tmp.js';

const DOCS = join(REPO_ROOT, 'docs', 'dashboards.md');
/** Where every runbook_url points: docs/dashboards.md on the main branch, plus the alert's anchor. */
const RUNBOOK_BASE = 'https://github.com/fugue/fugue-server/blob/main/docs/dashboards.md#';
const SEVERITIES = ['critical', 'warning', 'info'];
/** The quiet groups of the unit tests, by the first word of their name. */
const QUIET_SCENARIOS = ['healthy', 'restart', 'drain'] as const;

const alertNames = (): string[] => [...new Set(parseRules().filter((r) => r.kind === 'alert').map((r) => r.name))];

/** Run a command to its end (bounded), collecting its output. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

interface AlertCase {
  file: string;
  group: string;
  alertname: string;
  evalTime: string;
  fires: boolean;
}

/**
 * The alert_rule_test cases of a promtool test file written in the shape of
 * dashboards/alerts.test.yml: groups start at `  - name: "..."`; a case is a flow
 * map `- {eval_time: T, alertname: A, exp_alerts: []}` or a block starting at
 * `- eval_time: T` with `alertname:` and `exp_alerts:` (then `[]` or list items).
 */
function alertCases(file: string): AlertCase[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: AlertCase[] = [];
  let group = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const g = /^ {2}- name:\s*"(.*)"\s*$/.exec(line);
    if (g) {
      group = g[1]!;
      continue;
    }
    const flow = /^\s*-\s*\{(.*)\}\s*$/.exec(line);
    if (flow && /alertname:/.test(flow[1]!)) {
      const field = (k: string): string | undefined => new RegExp(`${k}:\\s*([^,]+?)\\s*(?:,|$)`).exec(flow[1]!)?.[1];
      out.push({ file, group, alertname: field('alertname')!, evalTime: field('eval_time')!, fires: field('exp_alerts') !== '[]' });
      continue;
    }
    const block = /^(\s*)-\s+eval_time:\s*(\S+)/.exec(line);
    if (!block) continue;
    const itemIndent = block[1]!.length;
    let alertname: string | undefined;
    let fires = false;
    let isExpr = false;
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > itemIndent)) {
      const next = lines[++i]!;
      const a = /^\s*alertname:\s*(\S+)/.exec(next);
      if (a) alertname = a[1];
      if (/^\s*expr:/.test(next)) isExpr = true;
      if (/^\s*exp_alerts:\s*$/.test(next)) fires = true;
    }
    if (!isExpr && alertname !== undefined) out.push({ file, group, alertname, evalTime: block[2]!, fires });
  }
  return out;
}

promTest('promtool check rules --lint-fatal accepts dashboards/alerts.yml', ['promtool'], async (t, { promtool }) => {
  const r = await run(promtool, ['check', 'rules', '--lint-fatal', ALERTS_FILE], 30_000);
  t.is(r.code, 0, `promtool check rules ${ALERTS_FILE} exited ${r.code}:\n${r.output}`);
  t.log(r.output.trim());
});

// Each file runs on its own, so a failure names its file; ~5-10 s each on one core.
for (const file of ALERT_TEST_FILES) {
  promTest(`promtool test rules passes dashboards/${basename(file)}`, ['promtool'], async (t, { promtool }) => {
    t.timeout(120_000);
    const r = await run(promtool, ['test', 'rules', file], 110_000);
    t.is(r.code, 0, `promtool test rules ${file} exited ${r.code}:\n${r.output}`);
    t.regex(r.output, /SUCCESS/);
    t.notRegex(r.output, /FAILED/);
  });
}

// Guards the two tests above: a wrong expectation must make promtool (and so them) fail.
promTest('promtool test rules fails when an alert expectation is wrong', ['promtool'], async (t, { promtool }) => {
  const file = join(tmpDir(t), 'wrong.test.yml');
  writeFileSync(file, [
    `rule_files: [${JSON.stringify(ALERTS_FILE)}]`,
    'evaluation_interval: 15s',
    'tests:',
    '  - name: "the server is down for 5 minutes, and the test wrongly expects silence"',
    '    interval: 15s',
    '    input_series:',
    `      - series: 'up{job="fugue-server", instance="host1:9464"}'`,
    "        values: '0x20'",
    '    alert_rule_test:',
    '      - {eval_time: 5m, alertname: FugueServerDown, exp_alerts: []}',
    '',
  ].join('\n'));
  const r = await run(promtool, ['test', 'rules', file], 30_000);
  t.is(r.code, 1, `promtool test rules exited ${r.code}:\n${r.output}`);
  t.regex(r.output, /FAILED/);
  t.regex(r.output, /alertname: FugueServerDown/);
});

// The dashboard's Socket re-creations panel counts over the last hour the way the
// counter alerts count over their window (docs/dashboards.md, "A new process"):
// its own query, as Grafana runs it, on a restart in place with the count
// unchanged (5 -> 5), a new instance born at 2 and an old process with old events.
promTest('the Socket re-creations panel counts what a new process re-created before its first scrape', ['promtool'], async (t, { promtool }) => {
  const panel = dashboardExpressions().filter((e) => e.source.startsWith('dashboard panel "Socket re-creations"'));
  t.is(panel.length, 1, 'the dashboard has one Socket re-creations query');
  const series = (instance: string, rebinds: string, start: string): string[] => [
    `      - series: 'fugue_socket_rebinds_total{job="fugue-server", instance="${instance}"}'`,
    `        values: '${rebinds}'`,
    `      - series: 'fugue_start_time_seconds{job="fugue-server", instance="${instance}"}'`,
    `        values: '${start}'`,
  ];
  const file = join(tmpDir(t), 'panel.test.yml');
  writeFileSync(file, [
    `rule_files: [${JSON.stringify(ALERTS_FILE)}]`,
    'evaluation_interval: 1m',
    'tests:',
    '  - interval: 1m',
    '    input_series:',
    // 1 m steps; the restarted and the new process start at 31m, first scraped at 32m.
    ...series('host1:9464', '5x30 stale 5x30', '-7200x30 stale 1860x30'),
    ...series('host2:9464', '_x32 2x30', '_x32 1860x30'),
    ...series('host3:9464', '4x62', '-7200x62'),
    '    promql_expr_test:',
    `      - expr: ${JSON.stringify(panel[0]!.expr)}`,
    '        eval_time: 40m',
    '        exp_samples:',
    `          - {labels: '{instance="host1:9464"}', value: 5}`,
    `          - {labels: '{instance="host2:9464"}', value: 2}`,
    `          - {labels: '{instance="host3:9464"}', value: 0}`,
    '',
  ].join('\n'));
  const r = await run(promtool, ['test', 'rules', file], 30_000);
  t.is(r.code, 0, `promtool test rules ${file} exited ${r.code}:\n${r.output}`);
});

test('the alert unit tests cover every alert: it fires in a "fires:" group and is asserted quiet in the healthy, restart and drain groups', (t) => {
  const cases = ALERT_TEST_FILES.flatMap(alertCases);
  t.true(cases.length > 0, 'the unit test files have alert_rule_test cases');
  const names = alertNames();
  const problems: string[] = [];
  for (const name of names) {
    if (!cases.some((c) => c.alertname === name && c.fires && c.group.startsWith('fires:'))) problems.push(`${name}: no "fires:" group expects it to fire`);
    for (const scenario of QUIET_SCENARIOS) {
      if (!cases.some((c) => c.alertname === name && !c.fires && c.group.startsWith(`${scenario}:`))) problems.push(`${name}: not asserted quiet in a "${scenario}:" group`);
    }
  }
  for (const c of cases) {
    if (!names.includes(c.alertname)) problems.push(`${basename(c.file)} group "${c.group}" tests ${c.alertname}, which alerts.yml does not define`);
    if (c.fires && !c.group.startsWith('fires:')) problems.push(`${basename(c.file)} group "${c.group}" expects ${c.alertname} to fire in a quiet group`);
  }
  t.deepEqual(problems, []);
});

test('every alert has a severity, a summary, a description and a runbook_url to its own section of docs/dashboards.md', (t) => {
  const docs = readFileSync(DOCS, 'utf8');
  const headings = new Set([...docs.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim()));
  const problems: string[] = [];
  for (const rule of parseRules().filter((r) => r.kind === 'alert')) {
    const at = `${rule.name} (alerts.yml:${rule.line})`;
    if (!SEVERITIES.includes(rule.labels.severity ?? '')) problems.push(`${at}: severity ${JSON.stringify(rule.labels.severity)} is not one of ${SEVERITIES.join(', ')}`);
    for (const key of ['summary', 'description', 'runbook_url']) if (!rule.annotations[key]) problems.push(`${at}: no ${key} annotation`);
    const extra = Object.keys(rule.annotations).filter((k) => !['summary', 'description', 'runbook_url'].includes(k));
    if (extra.length > 0) problems.push(`${at}: unexpected annotations ${extra.join(', ')} (the unit tests must list every annotation)`);
    const anchor = rule.name.toLowerCase();
    if (rule.annotations.runbook_url !== `${RUNBOOK_BASE}${anchor}`) problems.push(`${at}: runbook_url ${rule.annotations.runbook_url} is not ${RUNBOOK_BASE}${anchor}`);
    if (!headings.has(rule.name)) problems.push(`${at}: docs/dashboards.md has no "### ${rule.name}" section for its runbook_url`);
  }
  t.deepEqual(problems, []);
});

test('every metric the rules read is selected with job="fugue-server" (a Prometheus that scrapes other jobs does not mix them in)', (t) => {
  const problems: string[] = [];
  for (const rule of parseRules()) {
    for (const m of rule.expr.matchAll(/\b((?:fugue_|process_|nodejs_)[a-z_]+|up)\b(\{[^}]*\})?/g)) {
      if (!(m[2] ?? '').includes('job="fugue-server"')) problems.push(`${rule.kind} ${rule.name}: ${m[0]}`);
    }
  }
  t.deepEqual(problems, []);
});

test('the latency objective and its threshold are each set in one place (docs/dashboards.md "Objectives")', (t) => {
  const rules = parseRules();
  const objective = rules.filter((r) => r.kind === 'record' && r.name === 'fugue:message_latency:objective_ratio');
  t.is(objective.length, 1);
  t.regex(objective[0]!.expr, /^vector\(0\.\d+\)$/);
  // The threshold: the one `le` matcher in the file.
  const le = rules.flatMap((r) => [...r.expr.matchAll(/le="([^"]*)"/g)].map((m) => `${r.name} le=${m[1]}`));
  t.deepEqual(le, ['fugue:messages_fast:rate5m le=0.025'], 'one le="..." matcher, in fugue:messages_fast:rate5m');
  // Nothing else hard-codes the objective: the alerts compare with (1 - objective_ratio).
  const objectiveValue = /vector\((0\.\d+)\)/.exec(objective[0]!.expr)![1]!;
  const elsewhere = rules.filter((r) => r !== objective[0] && (r.expr.includes(objectiveValue) || r.expr.includes(String(Math.round((1 - Number(objectiveValue)) * 1e6) / 1e6))));
  t.deepEqual(elsewhere.map((r) => r.name), []);
  for (const burn of rules.filter((r) => r.name === 'FugueLatencyBudgetBurn')) t.regex(burn.expr, /1 - fugue:message_latency:objective_ratio/);
});
