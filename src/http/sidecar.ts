// The HTTP sidecar: /metrics, /healthz, /readyz. Tiny and separate from the
// Unix-socket server; it knows only the two functions it is given.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { httpListen } from '../errors.js';

export interface Readiness {
  ready: boolean;
  /** Server state, e.g. "listening", "draining". */
  state: string;
  /** Why it is not ready. */
  reason?: string;
  /** While draining: time left until the drain deadline, in ms (a successor waits for the port that long). */
  drainRemainingMs?: number;
}

/** Why the sidecar closed a connection it did not serve: `limit` (no room), `idle` (idle longest when the cap was reached). */
export type SidecarRejectReason = 'limit' | 'idle';

/** How long a new connection may stay silent before it counts as idle, in ms. */
const FRESH_GRACE_MS = 1000;

export interface SidecarOptions {
  host: string;
  port: number;
  /** Connections held open at once; more are closed at accept and reported to `onReject`. Default: 16. */
  maxConnections?: number;
  /** Idle keep-alive connections are closed after this long, in ms. Default: 5000. */
  keepAliveTimeoutMs?: number;
  /** Time a client has to send its request headers, in ms (checked every second). Default: 5000. */
  headersTimeoutMs?: number;
  /** A connection was refused at the cap (`limit`), or closed while idle to make room (`idle`). */
  onReject?(reason: SidecarRejectReason): void;
  /** Connections open now changed by `delta` (+1 accepted, -1 closed). */
  onConnections?(delta: number): void;
  /** Render metrics; `openMetrics` when the scraper asked for OpenMetrics. */
  metrics(openMetrics: boolean): Promise<{ contentType: string; body: string }>;
  readiness(): Readiness;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export class HttpSidecar {
  #options: SidecarOptions;
  #server: Server;
  #closing: Promise<void> | undefined;

  constructor(options: SidecarOptions) {
    this.#options = options;
    const headersTimeout = options.headersTimeoutMs ?? 5000;
    // connectionsCheckingInterval: Node checks the two timeouts only this often (default 30 s).
    this.#server = createServer({
      requestTimeout: Math.max(10_000, headersTimeout),
      headersTimeout,
      connectionsCheckingInterval: 1_000,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
      maxHeaderSize: 16 * 1024,
    }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        // Never let one request take the sidecar down.
        if (!res.headersSent) send(res, 500, JSON_TYPE, JSON.stringify({ error: 'internal error', message: (err as Error).message }));
        else res.destroy();
      });
    });
    this.#limitConnections(options.maxConnections ?? 16);
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  // Any local user can reach this port: cap what it may hold open (its share of
  // the process's descriptors is reserved; see server/fd-budget.ts). A
  // connection that finds the cap reached makes room by closing the
  // connection idle longest, if one is idle (between keep-alive requests, or
  // silent for FRESH_GRACE_MS since accept); else it is closed itself. So idle
  // connections never keep a probe or a scrape out: only connections in the
  // middle of a request hold a place, and headersTimeoutMs bounds those. Node
  // closes anything beyond cap + 1 at accept ('drop'). Both are counted.
  #limitConnections(cap: number): void {
    const { onReject, onConnections } = this.#options;
    const server = this.#server;
    server.maxConnections = cap + 1;
    server.on('drop', () => onReject?.('limit'));
    const idle = new Map<Socket, { since: number; fresh: boolean }>(); // in accept or keep-alive order
    let open = 0;
    const shedOne = (now: number, except: Socket): boolean => {
      for (const [socket, e] of idle) {
        if (socket === except || (e.fresh && now - e.since < FRESH_GRACE_MS)) continue;
        idle.delete(socket);
        socket.destroy();
        onReject?.('idle');
        return true;
      }
      return false;
    };
    server.on('connection', (socket: Socket) => {
      open++;
      onConnections?.(1);
      socket.once('close', () => {
        open--;
        idle.delete(socket);
        onConnections?.(-1);
      });
      const now = performance.now();
      if (open > cap && !shedOne(now, socket)) {
        socket.destroy();
        onReject?.('limit');
        return;
      }
      idle.set(socket, { since: now, fresh: true });
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      idle.delete(socket);
      res.once('finish', () => {
        if (!socket.destroyed) idle.set(socket, { since: performance.now(), fresh: false });
      });
    });
  }

  /** Listen; rejects with FUGUE_ERR_HTTP_LISTEN (port in use, ...). May be called again after a rejection. */
  listen(): Promise<AddressInfo> {
    const { host, port } = this.#options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.#server.off('listening', onListening);
        reject(httpListen(host, port, err));
      };
      const onListening = () => {
        this.#server.off('error', onError);
        resolve(this.#server.address() as AddressInfo);
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      this.#server.listen(port, host);
    });
  }

  get address(): AddressInfo | undefined {
    return (this.#server.address() as AddressInfo | null) ?? undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    const route = path === '/metrics' || path === '/healthz' || path === '/readyz' ? path : undefined;
    if (route === undefined) {
      send(res, 404, JSON_TYPE, JSON.stringify({ error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, JSON_TYPE, JSON.stringify({ error: 'method not allowed', allow: ['GET', 'HEAD'] }));
      return;
    }
    if (route === '/healthz') {
      send(res, 200, JSON_TYPE, JSON.stringify({ status: 'ok' }), req.method === 'HEAD');
    } else if (route === '/readyz') {
      const r = this.#options.readiness();
      // `service` and `pid` let a successor recognise a draining predecessor (probe.ts).
      send(res, r.ready ? 200 : 503, JSON_TYPE, JSON.stringify({ ...r, service: 'fugue-server', pid: process.pid }), req.method === 'HEAD');
    } else {
      const accept = req.headers.accept ?? '';
      const { contentType, body } = await this.#options.metrics(accept.includes('application/openmetrics-text'));
      send(res, 200, contentType, body, req.method === 'HEAD');
    }
  }

  /** Stop now: close the listener and every connection. */
  destroy(): void {
    if (this.#server.listening) this.#server.close();
    this.#server.closeAllConnections();
  }

  /** Stop listening and close open connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      // Requests still in flight get a moment, then go.
      setTimeout(() => this.#server.closeAllConnections(), 1000).unref();
    });
    return this.#closing;
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(headOnly ? undefined : body);
}
