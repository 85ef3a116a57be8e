// A real Prometheus (Debian package `prometheus`, >= 2.42) for tests that scrape
// a real fugue-server: the prometheus.yml docs/deployment.md gives operators,
// started on a free port, ready when /-/ready answers, stopped at teardown. Its
// HTTP API through apiGet/query.

import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { ALERTS_FILE } from './promql.js';
import { waitFor } from './wait-for.js';

/**
 * The prometheus.yml block of docs/deployment.md (after its `<!-- test: prometheus.yml -->`
 * marker), with its intervals shortened to 1 s and its rule file and target
 * pointed at this checkout's dashboards/alerts.yml and 127.0.0.1:`targetPort`.
 */
export function documentedPrometheusConfig(targetPort: number): string {
  const doc = readFileSync(new URL('../../../docs/deployment.md', import.meta.url), 'utf8');
  const block = /<!-- test: prometheus\.yml -->\n```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  if (block === undefined) throw new Error('docs/deployment.md has no prometheus.yml block after <!-- test: prometheus.yml -->');
  for (const needle of ['scrape_interval: 15s', 'evaluation_interval: 15s', '/etc/prometheus/rules/fugue-server-alerts.yml', "'127.0.0.1:9464'", 'job_name: fugue-server']) {
    if (!block.includes(needle)) throw new Error(`the documented prometheus.yml no longer has ${needle}: update test/helpers/prometheus-server.ts with the docs`);
  }
  return block
    .replace(/scrape_interval: 15s/, 'scrape_interval: 1s\n  scrape_timeout: 1s')
    .replace(/evaluation_interval: 15s/, 'evaluation_interval: 1s')
    .replace(/- \/etc\/prometheus\/rules\/fugue-server-alerts\.yml.*$/m, `- ${JSON.stringify(ALERTS_FILE)}`)
    .replace("'127.0.0.1:9464'", `'127.0.0.1:${targetPort}'`);
}

export interface PromProcess {
  url: string;
  child: ChildProcess;
  /** Its log output (stderr), for failure messages. */
  output(): string;
}

/**
 * Start `prometheus` with `config` (the text of prometheus.yml) and its data in
 * `dir`; resolves once it is ready, and stops it (SIGTERM, then SIGKILL after
 * 5 s) at teardown. Exemplar storage is on, as docs/dashboards.md advises.
 */
export async function startPrometheus(t: ExecutionContext, prometheus: string, dir: string, config: string): Promise<PromProcess> {
  const configFile = join(dir, 'prometheus.yml');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  writeFileSync(configFile, config);
  const port = await freePort();
  const child = spawn(prometheus, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${dataDir}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--enable-feature=exemplar-storage',
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer): void => {
    if (output.length < 64 * 1024) output += d.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000)))]);
    clearTimeout(timer);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const died = exited.then(() => {
    throw new Error(`prometheus exited early (${child.exitCode ?? child.signalCode}): ${output.slice(0, 2000)}`);
  });
  died.catch(() => {}); // only observed while waiting for readiness
  await Promise.race([
    died,
    waitFor(async () => {
      try {
        return (await fetch(`${url}/-/ready`)).ok;
      } catch {
        return false;
      }
    }, { what: `prometheus ready on ${url}`, timeoutMs: 20_000, intervalMs: 100 }),
  ]);
  return { url, child, output: () => output };
}

export interface ApiResponse<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
  warnings?: string[];
}

/** GET a Prometheus API URL; a body that is not JSON becomes an error response. */
export async function apiGet<T>(url: string): Promise<ApiResponse<T>> {
  const res = await fetch(url);
  const text = await res.text();
  try {
    return JSON.parse(text) as ApiResponse<T>;
  } catch {
    return { status: 'error', errorType: `http ${res.status}`, error: text.slice(0, 500) };
  }
}

export interface QueryData {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: unknown;
}

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query at the current time. */
export function query(prom: PromProcess, expr: string): Promise<ApiResponse<QueryData>> {
  return apiGet<QueryData>(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
}
