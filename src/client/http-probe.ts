// One bounded HTTP GET for `fuguectl health --http URL`: a container
// HEALTHCHECK needs no curl. Only the status and the start of the body are
// kept; the whole exchange is bounded by `timeoutMs`.

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FugueError } from '../errors.js';

/** Default of {@link HttpProbeOptions.maxBodyBytes}: 4096 bytes (what Docker keeps of a health check's output). */
export const DEFAULT_PROBE_BODY_BYTES = 4096;

/** Options of {@link httpGet}. */
export interface HttpProbeOptions {
  /** Give up after this long, in ms (connect, headers and body together). */
  timeoutMs: number;
  /** Bytes of the body kept; the rest is not read. Default: 4096. */
  maxBodyBytes?: number;
}

/** What {@link httpGet} got back. */
export interface HttpProbeResult {
  status: number;
  /** The start of the body, as UTF-8 text. */
  body: string;
}

/**
 * GET `url` (http: or https:). Resolves with the status and the start of the
 * body, whatever the status; rejects with FUGUE_ERR_CLIENT_CONNECT (nothing
 * answered) or FUGUE_ERR_CLIENT_TIMEOUT.
 */
export function httpGet(url: URL, options: HttpProbeOptions): Promise<HttpProbeResult> {
  const max = options.maxBodyBytes ?? DEFAULT_PROBE_BODY_BYTES;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: FugueError | undefined, result?: HttpProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      if (err) reject(err);
      else resolve(result as HttpProbeResult);
    };
    // agent: false: no keep-alive socket keeps the process alive afterwards.
    const req = request(url, { method: 'GET', agent: false, headers: { 'user-agent': 'fuguectl', accept: 'application/json' } }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < max) chunks.push(chunk.subarray(0, max - size));
        size += chunk.length;
        if (size >= max) finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish(new FugueError('FUGUE_ERR_CLIENT_CLOSED', `${url.href} closed the connection while answering (${err.message})`, { cause: err })));
    });
    const timer = setTimeout(() => finish(new FugueError('FUGUE_ERR_CLIENT_TIMEOUT', `no answer from ${url.href} within ${options.timeoutMs} ms; check that the HTTP sidecar is enabled (http.enabled) and listening there, or raise --timeout`, { details: { url: url.href } })), options.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish(new FugueError('FUGUE_ERR_CLIENT_CONNECT', `cannot reach ${url.href} (${err.code ?? 'error'}): ${err.code === 'ECONNREFUSED' ? 'nothing listens there; is the HTTP sidecar enabled (http.enabled) on that host and port (http.host, http.port)?' : err.message}`, { cause: err, details: { url: url.href, errno: err.code } })));
    req.end();
  });
}

// probePeer asks whoever holds the sidecar's port whether it is a fugue-server,
// and in what state. A rolling restart starts the successor while its
// predecessor drains (docs/operations.md, "Rolling restart"), and a takeover
// starts it while the predecessor still serves ("Upgrades"); the predecessor
// keeps the HTTP port until it exits, so that its drain stays observable. The
// successor recognises it by its /readyz answer and takes the port over when
// it is released, instead of failing.

/** What a fugue-server says about itself on /readyz. */
export interface FuguePeer {
  pid: number | undefined;
  /** Its state: listening, draining, ... */
  state: string;
  /** While draining: time left until its drain deadline, in ms (then it flushes spans and exits); else 0. */
  drainRemainingMs: number;
}

/** The peer at host:port if it is a fugue-server, else undefined. Never rejects. */
export async function probePeer(host: string, port: number, timeoutMs = 1000): Promise<FuguePeer | undefined> {
  const held = await portHolder(host, port, timeoutMs);
  return typeof held === 'object' ? held : undefined;
}

/** Who holds host:port: nobody ('free', the connection was refused), a fugue-server, or something else ('other'). Never rejects. */
export async function portHolder(host: string, port: number, timeoutMs = 1000): Promise<FuguePeer | 'free' | 'other'> {
  const url = new URL(`http://${host.includes(':') ? `[${host}]` : host}:${port}/readyz`);
  try {
    return parsePeer((await httpGet(url, { timeoutMs })).body) ?? 'other';
  } catch (err) {
    return (err as { details?: { errno?: string } }).details?.errno === 'ECONNREFUSED' ? 'free' : 'other';
  }
}

function parsePeer(body: string): FuguePeer | undefined {
  let r: unknown;
  try {
    r = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (r === null || typeof r !== 'object') return undefined;
  const o = r as Record<string, unknown>;
  if (o.service !== 'fugue-server' || typeof o.state !== 'string') return undefined;
  const remaining = typeof o.drainRemainingMs === 'number' && Number.isFinite(o.drainRemainingMs) ? Math.max(0, o.drainRemainingMs) : 0;
  return { pid: typeof o.pid === 'number' ? o.pid : undefined, state: o.state, drainRemainingMs: remaining };
}
