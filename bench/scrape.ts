// Reading fugue's /metrics: a timed scrape, and the few values the harness
// needs out of the Prometheus text format.

import { get } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Scrape {
  ms: number;
  bytes: number;
  body: string;
}

/** GET /metrics on a fresh connection, timed from request to the last byte. */
export function scrape(port: number): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // agent:false: a fresh connection each time, like a Prometheus scrape after idle.
    const req = get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ ms: performance.now() - t0, bytes: body.length, body: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('scrape timed out')));
  });
}

/** Number of samples (non-comment lines) in an exposition. */
export const seriesCount = (body: string): number => body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

/** The value of the first sample of a metric (any labels); undefined if the server does not have it. */
export function metricValue(body: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}

/** The value of the sample of a metric whose label `label` is `value` (other labels may be there); undefined if there is none. */
export function metricSample(body: string, name: string, label: string, value: string): number | undefined {
  const m = new RegExp(`^${name}\\{(?:[^}]*,)?${label}="${value}"(?:,[^}]*)?\\} ([0-9.eE+-]+)`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}
