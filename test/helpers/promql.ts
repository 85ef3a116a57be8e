// Every PromQL expression in dashboards/fugue-server.json and dashboards/alerts.yml,
// as plain PromQL a Prometheus can evaluate (Grafana variables substituted), and
// the rules of alerts.yml with their labels and annotations.
//
// alerts.yml is parsed by a small line-based reader that understands only the shape
// that file is written in (there is no YAML library in the project): a group starts
// at `- name:`, a rule at `- alert: Name` or `- record: name`; its `expr:` is either
// on one line or a `|` / `>` block of lines indented deeper than the `expr:` key;
// `labels:` and `annotations:` hold one `key: value` per line, indented deeper.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface PromExpr {
  /** Where it came from, e.g. 'dashboard panel "Active clients" refId A' or 'alert FugueServerDown'. */
  source: string;
  /** Plain PromQL. */
  expr: string;
  /**
   * true: must return at least one series while the server runs with a few clients
   * sending ping/echo. false: may legitimately return nothing in a healthy run (and,
   * for alerts, must return nothing: a healthy server fires no alert).
   */
  expectData: boolean;
}

export interface Rule {
  kind: 'alert' | 'record';
  /** The alert name or the recorded series name. */
  name: string;
  group: string;
  expr: string;
  for: string | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** 1-based line of `- alert:` / `- record:`. */
  line: number;
}

// Compiled to dist/test/helpers/promql.js: three levels up is the repository root.
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DASHBOARD_FILE = fileURLToPath(new URL('../../../dashboards/fugue-server.json', import.meta.url));
export const ALERTS_FILE = fileURLToPath(new URL('../../../dashboards/alerts.yml', import.meta.url));
/** The promtool unit-test files for ALERTS_FILE. */
export const ALERT_TEST_FILES = ['alerts.test.yml', 'alerts-hours.test.yml', 'alerts-new-process.test.yml'].map((f) => fileURLToPath(new URL(`../../../dashboards/${f}`, import.meta.url)));

/** The scrape job the dashboard's `job` variable is set to in tests (the one the rules select). */
export const JOB = 'fugue-server';

/**
 * Dashboard queries that can be empty in a healthy run, keyed by panel title.
 * None today: every series a panel reads exists from startup (at 0), and the
 * panels on recorded series have data once the rules ran.
 */
const MAY_BE_EMPTY = new Set<string>([]);

/** Replace Grafana variables with plain PromQL. */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$\{__rate_interval\}|\$__rate_interval\b/g, '1m')
    .replace(/\$\{__interval\}|\$__interval\b/g, '1m')
    .replace(/\$\{__range\}|\$__range\b/g, '1h')
    .replace(/\$\{job(?::[a-z]+)?\}|\$job\b/g, JOB)
    .replace(/\$\{instance(?::[a-z]+)?\}|\$instance\b/g, '.*')
    .replace(/\$\{datasource\}|\$datasource\b/g, '');
}

export interface GrafanaTarget {
  refId?: string;
  expr?: string;
  hide?: boolean;
  exemplar?: boolean;
  datasource?: { type?: string; uid?: string };
}

export interface GrafanaPanel {
  id?: number;
  title?: string;
  type?: string;
  description?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

export interface GrafanaDashboard {
  schemaVersion?: number;
  panels?: GrafanaPanel[];
  templating?: { list?: Array<{ name: string; type: string; query?: unknown; definition?: string; datasource?: unknown }> };
}

export function readDashboard(file: string = DASHBOARD_FILE): GrafanaDashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as GrafanaDashboard;
}

/** Every panel, rows and the panels nested in collapsed rows included. */
export function dashboardPanels(dashboard: GrafanaDashboard = readDashboard()): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (panels: GrafanaPanel[] | undefined): void => {
    for (const panel of panels ?? []) {
      out.push(panel);
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** Every target expr of every panel (including panels nested in rows). */
export function dashboardExpressions(file: string = DASHBOARD_FILE): PromExpr[] {
  const out: PromExpr[] = [];
  for (const panel of dashboardPanels(readDashboard(file))) {
    const title = panel.title ?? '(untitled)';
    for (const target of panel.targets ?? []) {
      if (typeof target.expr !== 'string' || target.expr.trim() === '') continue;
      out.push({
        source: `dashboard panel ${JSON.stringify(title)} refId ${target.refId ?? '?'}`,
        expr: substituteGrafanaVariables(target.expr),
        expectData: !MAY_BE_EMPTY.has(title),
      });
    }
  }
  return out;
}

/** The targets that ask Grafana for exemplars, with their substituted expr. */
export function dashboardExemplarTargets(dashboard: GrafanaDashboard = readDashboard()): Array<{ panel: string; refId: string; expr: string }> {
  return dashboardPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).filter((tg) => tg.exemplar === true && typeof tg.expr === 'string').map((tg) => ({ panel: p.title ?? '', refId: tg.refId ?? '', expr: substituteGrafanaVariables(tg.expr!) })),
  );
}

const indentOf = (line: string): number => line.length - line.trimStart().length;

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/''/g, "'");
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return JSON.parse(v) as string;
  return v;
}

/** Every rule of a rule file in the shape alerts.yml is written in. */
export function parseRules(file: string = ALERTS_FILE): Rule[] {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const rules: Rule[] = [];
  let group = '';
  let rule: Rule | undefined;
  let ruleIndent = -1;
  /** The map (labels/annotations) being filled, and its key's indent. */
  let map: Record<string, string> | undefined;
  let mapIndent = -1;
  const where = (i: number): string => `${file}:${i + 1}`;
  const finish = (): void => {
    if (rule !== undefined && rule.expr.trim() === '') throw new Error(`${file}:${rule.line}: ${rule.kind} ${rule.name} has no expr`);
    rule = undefined;
    map = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const indent = indentOf(line);
    const ruleStart = /^(\s*)-\s+(alert|record):\s*(.+?)\s*$/.exec(line);
    if (ruleStart) {
      finish();
      rule = { kind: ruleStart[2] as 'alert' | 'record', name: unquote(ruleStart[3]!), group, expr: '', for: undefined, labels: {}, annotations: {}, line: i + 1 };
      ruleIndent = ruleStart[1]!.length + 2;
      rules.push(rule);
      continue;
    }
    const groupStart = /^\s*-\s+name:\s*(.+?)\s*$/.exec(line);
    if (groupStart) {
      finish();
      group = unquote(groupStart[1]!);
      continue;
    }
    if (rule === undefined) continue;
    if (indent < ruleIndent) {
      finish();
      continue;
    }
    if (map !== undefined && indent > mapIndent) {
      const kv = /^\s*([A-Za-z_][A-Za-z0-9_]*):\s*(.*?)\s*$/.exec(line);
      if (!kv) throw new Error(`${where(i)}: expected "key: value" in ${rule.kind} ${rule.name}`);
      map[kv[1]!] = unquote(kv[2]!);
      continue;
    }
    map = undefined;
    const field = /^(\s*)(expr|for|labels|annotations|keep_firing_for):\s*(.*?)\s*$/.exec(line);
    if (!field) throw new Error(`${where(i)}: unexpected line in ${rule.kind} ${rule.name}: ${line.trim()}`);
    const [, keyIndentText, key, value] = field as unknown as [string, string, string, string];
    if (key === 'labels' || key === 'annotations') {
      map = rule[key];
      mapIndent = keyIndentText.length;
    } else if (key === 'for' || key === 'keep_firing_for') {
      if (key === 'for') rule.for = unquote(value);
    } else {
      if (rule.expr !== '') throw new Error(`${where(i)}: second expr for ${rule.kind} ${rule.name}`);
      if (/^[|>][+-]?$/.test(value)) {
        const block: string[] = [];
        while (i + 1 < lines.length) {
          const next = lines[i + 1]!;
          if (next.trim() !== '' && indentOf(next) <= keyIndentText.length) break;
          block.push(next.trim());
          i++;
        }
        rule.expr = block.filter((l) => l !== '').join(value.startsWith('>') ? ' ' : '\n');
      } else {
        rule.expr = unquote(value);
      }
    }
  }
  finish();
  return rules;
}

/** Every alert rule's expr in alerts.yml (must be empty in a healthy run). */
export function alertExpressions(file: string = ALERTS_FILE): PromExpr[] {
  return parseRules(file)
    .filter((r) => r.kind === 'alert')
    .map((r) => ({ source: `alert ${r.name} (line ${r.line})`, expr: r.expr, expectData: false }));
}

/** Every recording rule's expr in alerts.yml (must have data while the server serves clients). */
export function recordingRuleExpressions(file: string = ALERTS_FILE): PromExpr[] {
  return parseRules(file)
    .filter((r) => r.kind === 'record')
    .map((r) => ({ source: `recording rule ${r.name}`, expr: r.expr, expectData: true }));
}
