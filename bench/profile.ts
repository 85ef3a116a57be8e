// --cpu-prof: reading a V8 .cpuprofile into its top self-time functions, so
// that bare and fugue under the same load can be compared entry by entry.

import { readFileSync } from 'node:fs';
import { ROOT, SNAPSHOT } from './paths.js';

export interface SelfTime {
  fn: string;
  /** file:line, relative to the snapshot, the repository or node_modules. */
  where: string;
  ms: number;
  pct: number;
}

export interface Profile {
  server: string;
  rate: number;
  file: string;
  top: SelfTime[];
}

/** Top self-time functions of a .cpuprofile (V8 format). */
export function topSelfTime(file: string, n = 15): SelfTime[] {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const nd = byId.get(prof.samples[i] as number);
    const dt = (prof.timeDeltas[i] ?? 0) / 1000;
    if (nd === undefined) continue;
    const cf = nd.callFrame;
    const where = cf.url === '' ? '' : `${cf.url.replace(/^file:\/\//, '').replace(SNAPSHOT + '/', '').replace(ROOT, '').replace(/^.*node_modules\//, '')}:${cf.lineNumber + 1}`;
    const key = `${cf.functionName || '(anonymous)'}\t${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, ms]) => {
      const [fn, where] = key.split('\t') as [string, string];
      return { fn, where, ms: Math.round(ms), pct: Math.round((1000 * ms) / total) / 10 };
    });
}
