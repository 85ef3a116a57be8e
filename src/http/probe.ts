// Asks whoever holds the sidecar's port whether it is a fugue-server that is
// draining. A rolling restart starts the successor while its predecessor
// drains (docs/operations.md, "Rolling restart"); the predecessor gave up the
// socket path at once but keeps the HTTP port until it exits, so that its drain
// stays observable. The successor recognises it by its /readyz answer and takes
// the port over when it is released, instead of failing.

import { request } from 'node:http';

/** What a draining fugue-server says about itself on /readyz. */
export interface DrainingPeer {
  pid: number | undefined;
  /** Time left until its drain deadline, in ms (then it flushes spans and exits). */
  drainRemainingMs: number;
}

/** The peer at host:port if it is a draining fugue-server, else undefined. Never rejects. */
export function probeDrainingPeer(host: string, port: number, timeoutMs = 1000): Promise<DrainingPeer | undefined> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/readyz', method: 'GET', timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > 4096) req.destroy(); // not our small JSON
      });
      res.on('end', () => resolve(parsePeer(body)));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

function parsePeer(body: string): DrainingPeer | undefined {
  let r: unknown;
  try {
    r = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (r === null || typeof r !== 'object') return undefined;
  const o = r as Record<string, unknown>;
  if (o.service !== 'fugue-server' || o.state !== 'draining') return undefined;
  const remaining = typeof o.drainRemainingMs === 'number' && Number.isFinite(o.drainRemainingMs) ? Math.max(0, o.drainRemainingMs) : 0;
  return { pid: typeof o.pid === 'number' ? o.pid : undefined, drainRemainingMs: remaining };
}
