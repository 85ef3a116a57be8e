// Number formats and the plain-text table of the report.

export const fmtRate = (r: number): string => (r >= 1e6 ? `${(r / 1e6).toFixed(2)}M/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)}k/s` : `${r.toFixed(0)}/s`);
export const fmtUs = (us: number): string => (us >= 10_000 ? `${(us / 1000).toFixed(1)}ms` : us >= 1000 ? `${(us / 1000).toFixed(2)}ms` : `${us.toFixed(0)}us`);
/** A count or a per-second figure without its unit: 950, 12.3k, 4.1M. */
export const fmtSi = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0));
export const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;

/** Columns padded to their widest cell: the first two left-aligned, the rest right-aligned; a rule under the header. */
export function table(rows: string[][]): string {
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0] as string[]), sep, ...rows.slice(1).map(line)].join('\n');
}
