// One sample from a running server's /metrics.

/**
 * The value of `series` (a metric name, with its labels if any, exactly as
 * exposed) in the server's /metrics on 127.0.0.1:port; NaN when absent, so a
 * comparison with it fails. The scrape gives up after `timeoutMs`.
 */
export async function scrapeSample(port: number, series: string, timeoutMs = 10_000): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}
