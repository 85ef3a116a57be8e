// An OTLP/HTTP receiver that accepts exports and only counts them: the cost
// measured is fugue's (span creation, batching, serialisation, HTTP), not a
// collector's. It runs inside the harness, on core 1.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class OtlpSink {
  /** POST /v1/traces requests received so far. */
  requests = 0;
  /** Their body bytes. */
  bytes = 0;
  #server: Server | undefined;
  #port = 0;

  /** The base URL to give fugue as its OTLP endpoint. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  start(): Promise<void> {
    const server = createServer((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces') {
          this.requests++;
          this.bytes += n;
        }
        // An empty body is a valid (empty) ExportTraceServiceResponse.
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf', 'content-length': 0 });
        res.end();
      });
    });
    this.#server = server;
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => {
        this.#port = (server.address() as AddressInfo).port;
        resolve();
      }),
    );
  }

  /** What was received since `since` (a snapshot taken with snapshot()). */
  since(since: { requests: number; bytes: number }): { requests: number; bytes: number } {
    return { requests: this.requests - since.requests, bytes: this.bytes - since.bytes };
  }

  snapshot(): { requests: number; bytes: number } {
    return { requests: this.requests, bytes: this.bytes };
  }

  close(): void {
    this.#server?.close();
  }
}
