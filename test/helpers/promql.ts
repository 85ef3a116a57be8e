// Every PromQL expression in dashboards/fugue-server.json and dashboards/alerts.yml,
// as plain PromQL a Prometheus can evaluate (Grafana variables substituted).
//
// alerts.yml is parsed by a small line-based reader that understands only the shape
// that file is written in (there is no YAML library in the project): a rule starts
// at `- alert: Name`, and its `expr:` is either on one line or a `|` / `>` block of
// lines indented deeper than the `expr:` key.

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

// Compiled to dist/test/helpers/promql.js: three levels up is the repository root.
export const DASHBOARD_FILE = fileURLToPath(new URL('../../../dashboards/fugue-server.json', import.meta.url));
export const ALERTS_FILE = fileURLToPath(new URL('../../../dashboards/alerts.yml', import.meta.url));

/**
 * Dashboard queries that can be empty in a healthy run: series that only exist once
 * something went wrong (labelled counters are created on first increment), or a
 * quantile over a histogram nobody observed into yet (NaN). Keyed by panel title.
 */
const MAY_BE_EMPTY = new Set<string>([
  'Connection closes by reason', // no series until a connection closes
  'Accept errors by code', // no series until an accept fails
  'Connection duration p50 / p99', // NaN until a connection closes
  'Protocol errors by code', // no series until a protocol error is sent
]);

/** Replace Grafana variables with plain PromQL. */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$\{__rate_interval\}|\$__rate_interval\b/g, '1m')
    .replace(/\$\{__interval\}|\$__interval\b/g, '1m')
    .replace(/\$\{__range\}|\$__range\b/g, '1h')
    .replace(/\$\{instance(?::[a-z]+)?\}|\$instance\b/g, '.*')
    .replace(/\$\{datasource\}|\$datasource\b/g, '');
}

interface GrafanaTarget {
  refId?: string;
  expr?: string;
  hide?: boolean;
}

interface GrafanaPanel {
  title?: string;
  type?: string;
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

/** Every target expr of every panel (including panels nested in rows). */
export function dashboardExpressions(file: string = DASHBOARD_FILE): PromExpr[] {
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels?: GrafanaPanel[] };
  const out: PromExpr[] = [];
  const walk = (panels: GrafanaPanel[] | undefined): void => {
    for (const panel of panels ?? []) {
      const title = panel.title ?? '(untitled)';
      for (const target of panel.targets ?? []) {
        if (typeof target.expr !== 'string' || target.expr.trim() === '') continue;
        out.push({
          source: `dashboard panel ${JSON.stringify(title)} refId ${target.refId ?? '?'}`,
          expr: substituteGrafanaVariables(target.expr),
          expectData: !MAY_BE_EMPTY.has(title),
        });
      }
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

const indentOf = (line: string): number => line.length - line.trimStart().length;

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/''/g, "'");
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return JSON.parse(v) as string;
  return v;
}

/** Every alert rule's expr in alerts.yml. */
export function alertExpressions(file: string = ALERTS_FILE): PromExpr[] {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const out: PromExpr[] = [];
  let alert: string | undefined;
  let seenExpr = true;
  const finish = (): void => {
    if (alert !== undefined && !seenExpr) throw new Error(`${file}: alert ${alert} has no expr`);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const alertMatch = /^\s*-\s+alert:\s*(.+?)\s*$/.exec(line);
    if (alertMatch) {
      finish();
      alert = unquote(alertMatch[1]!);
      seenExpr = false;
      continue;
    }
    // A recording rule ends the current alert; its expr is not an alert expression.
    if (/^\s*-\s+record:/.test(line)) {
      finish();
      alert = undefined;
      seenExpr = true;
      continue;
    }
    const exprMatch = /^(\s*)expr:\s*(.*?)\s*$/.exec(line);
    if (!exprMatch || alert === undefined) continue;
    if (seenExpr) throw new Error(`${file}:${i + 1}: second expr for alert ${alert}`);
    const keyIndent = exprMatch[1]!.length;
    const value = exprMatch[2]!;
    let expr: string;
    if (/^[|>][+-]?$/.test(value)) {
      const block: string[] = [];
      while (i + 1 < lines.length) {
        const next = lines[i + 1]!;
        if (next.trim() !== '' && indentOf(next) <= keyIndent) break;
        block.push(next.trim());
        i++;
      }
      expr = block.filter((l) => l !== '').join(value.startsWith('>') ? ' ' : '\n');
    } else {
      expr = unquote(value);
    }
    if (expr.trim() === '') throw new Error(`${file}:${i + 1}: empty expr for alert ${alert}`);
    out.push({ source: `alert ${alert}`, expr, expectData: false });
    seenExpr = true;
  }
  finish();
  return out;
}
